// TensorBoard event files (see tensorboard.h): table-driven CRC-32C, TFRecord framing, a hand-written
// protobuf encoder for the few tensorflow.Event fields we emit, and a reader that validates the
// framing and decodes Events with a generic protobuf field walker (unknown fields are skipped).
#include "trainer/report/tensorboard.h"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>

#include "models/read_file.h"
#include "models/error.h"

namespace mt {
namespace fs = std::filesystem;

// ------------------------------------------------------------------------------------------------
// CRC-32C

namespace {

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  // `crc` is a previous result, so calls chain: crc32c(b, nb, crc32c(a, na)) == crc32c(a + b).
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = kCrc32cTable[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// ------------------------------------------------------------------------------------------------
// Protobuf encoding (only what Event needs)

namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, uint32_t field, WireType wire) { put_varint(out, (uint64_t{field} << 3) | wire); }

// Explicit little-endian bytes so the file format does not depend on the host.
void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  put_key(out, field, kFixed64);
  put_le(out, bits, 8);
}

void put_float(std::string& out, uint32_t field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  put_key(out, field, kFixed32);
  put_le(out, bits, 4);
}

void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// tensorflow.Event field numbers, and those of Summary / Summary.Value.
constexpr uint32_t kEventWallTime = 1, kEventStep = 2, kEventFileVersion = 3, kEventSummary = 5;
constexpr uint32_t kSummaryValue = 1;
constexpr uint32_t kValueTag = 1, kValueSimpleValue = 2;

std::string event_header(double wall_time, int64_t step) {
  std::string ev;
  put_double(ev, kEventWallTime, wall_time);
  put_key(ev, kEventStep, kVarint);
  put_varint(ev, static_cast<uint64_t>(step));  // int64: negatives are 10-byte two's complement
  return ev;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string h(buf);
  for (char& c : h)
    if (c == '/') c = '_';  // it becomes part of a file name
  return h;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Writer

TensorBoardWriter::TensorBoardWriter(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(fmt::format("{}: cannot create TensorBoard log directory: {}", dir.string(), ec.message()));
  // The counter tells apart writers that this process opens within the same second; "x" (O_EXCL)
  // guards against anything else that picked the same name.
  static std::atomic<uint64_t> counter{0};
  const auto seconds = static_cast<long long>(std::time(nullptr));
  const std::string host = host_name();
  const long pid = static_cast<long>(::getpid());
  for (int attempt = 0;; ++attempt) {
    path_ = dir / fmt::format("events.out.tfevents.{}.{}.{}.{}", seconds, host, pid, counter.fetch_add(1));
    file_ = std::fopen(path_.string().c_str(), "wbx");
    if (file_ != nullptr) break;
    if (errno != EEXIST || attempt >= 1000)
      throw Error(fmt::format("{}: cannot create TensorBoard event file: {}", path_.string(), std::strerror(errno)));
  }
  std::string ev = event_header(now_seconds(), 0);
  put_bytes(ev, kEventFileVersion, "brain.Event:2");
  try {
    write_record(ev);
    flush();  // the file is recognisable as an event file from the start
  } catch (...) {
    std::fclose(file_);
    file_ = nullptr;
    throw;
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  // A destructor cannot throw; callers that care about the last records call flush() first.
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  std::string val;
  put_bytes(val, kValueTag, tag);
  put_float(val, kValueSimpleValue, static_cast<float>(value));
  std::string summary;
  put_bytes(summary, kSummaryValue, val);
  std::string ev = event_header(wall_time < 0 ? now_seconds() : wall_time, step);
  put_bytes(ev, kEventSummary, summary);
  write_record(ev);
}

void TensorBoardWriter::flush() {
  if (std::fflush(file_) != 0)
    throw Error(fmt::format("{}: write failed: {}", path_.string(), std::strerror(errno)));
}

void TensorBoardWriter::write_record(const std::string& payload) {
  std::string rec;
  rec.reserve(payload.size() + 16);
  put_le(rec, payload.size(), 8);
  put_le(rec, masked_crc32c(rec.data(), 8), 4);
  rec += payload;
  put_le(rec, masked_crc32c(payload.data(), payload.size()), 4);
  if (std::fwrite(rec.data(), 1, rec.size(), file_) != rec.size())
    throw Error(fmt::format("{}: write failed: {}", path_.string(), std::strerror(errno)));
}

// ------------------------------------------------------------------------------------------------
// Reader

namespace {

uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// Walks the fields of one protobuf message held in [pos, end) of the file's bytes. Offsets in
// errors are absolute byte offsets in the file.
class ProtoReader {
 public:
  struct Field {
    uint32_t number = 0;
    uint32_t wire = 0;
    uint64_t value = 0;       // varint / fixed32 / fixed64 value
    size_t data = 0, size = 0;  // length-delimited payload (absolute offset, byte count)
  };

  ProtoReader(const std::string& file, const unsigned char* bytes, size_t pos, size_t end)
      : file_(file), bytes_(bytes), pos_(pos), end_(end) {}

  // Reads the next field into f; false at the end of the message.
  bool next(Field& f) {
    if (pos_ >= end_) return false;
    const size_t key_at = pos_;
    const uint64_t key = varint();
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire = static_cast<uint32_t>(key & 7);
    if ((key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) fail(key_at, fmt::format("invalid field number {}", key >> 3));
    f.value = 0;
    f.data = f.size = 0;
    switch (f.wire) {
      case kVarint:
        f.value = varint();
        break;
      case kFixed64:
        f.value = fixed(8);
        break;
      case kFixed32:
        f.value = fixed(4);
        break;
      case kLengthDelimited: {
        const size_t len_at = pos_;
        const uint64_t len = varint();
        if (len > end_ - pos_)
          fail(len_at, fmt::format("field {} length {} exceeds the {} bytes left in the message", f.number, len,
                                   end_ - pos_));
        f.data = pos_;
        f.size = static_cast<size_t>(len);
        pos_ += f.size;
        break;
      }
      case kStartGroup:
        skip_group(f.number, key_at, 0);
        break;
      case kEndGroup:
        fail(key_at, fmt::format("unmatched end-group for field {}", f.number));
      default:
        fail(key_at, fmt::format("invalid wire type {} for field {}", f.wire, f.number));
    }
    return true;
  }

  [[noreturn]] void fail(size_t at, const std::string& what) const {
    throw Error(fmt::format("{}: byte offset {}: malformed event protobuf: {}", file_, at, what));
  }

 private:
  uint64_t varint() {
    const size_t start = pos_;
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (pos_ >= end_) fail(start, "truncated varint");
      const unsigned char b = bytes_[pos_++];
      if (i == 9 && b > 1) fail(start, "varint longer than 64 bits");
      v |= uint64_t{b & 0x7Fu} << (7 * i);
      if ((b & 0x80) == 0) return v;
    }
    fail(start, "varint longer than 10 bytes");
  }

  uint64_t fixed(int bytes) {
    if (end_ - pos_ < static_cast<size_t>(bytes)) fail(pos_, fmt::format("truncated fixed{} value", 8 * bytes));
    const uint64_t v = get_le(bytes_ + pos_, bytes);
    pos_ += bytes;
    return v;
  }

  // Skips a (deprecated) group up to its matching end-group key; groups may nest.
  void skip_group(uint32_t number, size_t start, int depth) {
    if (depth > 64) fail(start, "groups nested too deeply");
    Field f;
    while (true) {
      if (pos_ >= end_) fail(start, fmt::format("unterminated group for field {}", number));
      const size_t key_at = pos_;
      const uint64_t key = varint();
      const auto wire = static_cast<uint32_t>(key & 7);
      const auto num = static_cast<uint32_t>(key >> 3);
      if (wire == kEndGroup) {
        if (num != number) fail(key_at, fmt::format("end-group for field {} inside group {}", num, number));
        return;
      }
      if (wire == kStartGroup) {
        if (num == 0) fail(key_at, "invalid field number 0");
        skip_group(num, key_at, depth + 1);
        continue;
      }
      pos_ = key_at;  // let next() decode (and validate) this field
      next(f);
    }
  }

  const std::string& file_;
  const unsigned char* bytes_;
  size_t pos_, end_;
};

float bits_to_float(uint64_t v) {
  const auto bits = static_cast<uint32_t>(v);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

double bits_to_double(uint64_t v) {
  double d;
  std::memcpy(&d, &v, 8);
  return d;
}

// Summary { repeated Value value = 1; }, Value { string tag = 1; float simple_value = 2; ... }.
// Values without a simple_value (images, histograms, tensors) are not scalars and are left out.
void decode_summary(const std::string& file, const unsigned char* bytes, size_t pos, size_t end,
                    TensorBoardEvent& ev) {
  ProtoReader summary(file, bytes, pos, end);
  ProtoReader::Field f;
  while (summary.next(f)) {
    if (f.number != kSummaryValue || f.wire != kLengthDelimited) continue;
    ProtoReader value(file, bytes, f.data, f.data + f.size);
    ProtoReader::Field v;
    std::string tag;
    bool has_simple = false;
    float simple = 0;
    while (value.next(v)) {
      if (v.number == kValueTag && v.wire == kLengthDelimited) {
        tag.assign(reinterpret_cast<const char*>(bytes + v.data), v.size);
      } else if (v.number == kValueSimpleValue && v.wire == kFixed32) {
        simple = bits_to_float(v.value);
        has_simple = true;
      }
    }
    if (has_simple) ev.scalars.emplace_back(std::move(tag), simple);
  }
}

// Fields of the wrong wire type are treated as unknown, as protobuf parsers do.
TensorBoardEvent decode_event(const std::string& file, const unsigned char* bytes, size_t pos, size_t end) {
  TensorBoardEvent ev;
  ProtoReader event(file, bytes, pos, end);
  ProtoReader::Field f;
  while (event.next(f)) {
    if (f.number == kEventWallTime && f.wire == kFixed64) {
      ev.wall_time = bits_to_double(f.value);
    } else if (f.number == kEventStep && f.wire == kVarint) {
      ev.step = static_cast<int64_t>(f.value);
    } else if (f.number == kEventFileVersion && f.wire == kLengthDelimited) {
      ev.file_version.assign(reinterpret_cast<const char*>(bytes + f.data), f.size);
    } else if (f.number == kEventSummary && f.wire == kLengthDelimited) {
      decode_summary(file, bytes, f.data, f.data + f.size, ev);  // repeated occurrences merge
    }
  }
  return ev;
}

}  // namespace

std::vector<TensorBoardEvent> read_tensorboard_events(const fs::path& file) {
  const std::string name = file.string();
  const std::string data = read_file(file, "TensorBoard event file");
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();

  std::vector<TensorBoardEvent> events;
  size_t pos = 0;
  while (pos < n) {
    const size_t rec = pos;
    if (n - pos < 12)
      throw Error(fmt::format("{}: byte offset {}: truncated record header ({} bytes left, 12 needed)", name, rec,
                              n - pos));
    const uint64_t len = get_le(bytes + pos, 8);
    const auto len_crc = static_cast<uint32_t>(get_le(bytes + pos + 8, 4));
    if (len_crc != masked_crc32c(bytes + pos, 8))
      throw Error(fmt::format("{}: byte offset {}: record length CRC mismatch (stored {:#010x}, computed {:#010x})",
                              name, rec, len_crc, masked_crc32c(bytes + pos, 8)));
    pos += 12;
    // Checked after the length CRC, so a length that passes it but runs past the end is a truncated file.
    if (len > n - pos || n - pos - len < 4)
      throw Error(fmt::format("{}: byte offset {}: record length {} exceeds the {} bytes remaining (truncated file?)",
                              name, rec, len, n - pos));
    const auto size = static_cast<size_t>(len);
    const auto stored = static_cast<uint32_t>(get_le(bytes + pos + size, 4));
    const uint32_t computed = masked_crc32c(bytes + pos, size);
    if (stored != computed)
      throw Error(fmt::format("{}: byte offset {}: record payload CRC mismatch (stored {:#010x}, computed {:#010x})",
                              name, rec, stored, computed));
    events.push_back(decode_event(name, bytes, pos, pos + size));
    pos += size + 4;
  }
  return events;
}

}  // namespace mt
