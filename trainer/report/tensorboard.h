// TensorBoard event files written directly: TFRecord framing (length, masked CRC-32C of the length,
// payload, masked CRC-32C of the payload) around hand-encoded tensorflow.Event protobufs
// (wall_time, step, file_version or a Summary of simple_value scalars). No protobuf dependency.
// A reader of the same spec checks what we write.
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace mt {

// CRC-32C (Castagnoli), and TFRecord's mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
uint32_t masked_crc32c(const void* data, size_t n);

class TensorBoardWriter {
 public:
  // Creates `dir` and dir/events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n> with its
  // "brain.Event:2" file_version record. Errors are mt::Error naming the file.
  explicit TensorBoardWriter(const std::filesystem::path& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One Event with one scalar (wall_time < 0: now).
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time = -1.0);
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& payload);
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

struct TensorBoardEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;                            // set on the first record
  std::vector<std::pair<std::string, float>> scalars;  // (tag, simple_value)
};

// Reads an event file; checks both CRCs of every record. Errors name the file and byte offset.
std::vector<TensorBoardEvent> read_tensorboard_events(const std::filesystem::path& file);

}  // namespace mt
