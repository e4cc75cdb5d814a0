// safetensors files with torch tensors: a memory-mapped reader that loads tensors to a requested
// device and dtype, and a writer of HF-named (optionally sharded) files with a
// model.safetensors.index.json, loadable by the `safetensors` Python package and `transformers`.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/safetensors_header.h"

namespace mt {

// A read-only memory map of one safetensors file with its validated header.
class SafetensorsFile {
 public:
  // Opens, maps and validates; throws mt::Error naming the file on any problem.
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const StHeader& header() const { return header_; }
  const StTensorInfo* find(const std::string& name) const;  // nullptr if absent
  bool contains(const std::string& name) const { return find(name) != nullptr; }

  // Copies tensor `name` out of the map into a new tensor with `options` (device + dtype);
  // options without a dtype keep the stored one. Throws if absent, the dtype has no torch type, or,
  // with require_finite (model weights, optimizer state), a floating tensor holds NaN or Inf after
  // the conversion. The format itself allows them, so a plain read keeps them.
  at::Tensor load(const std::string& name, const c10::TensorOptions& options = {}, bool require_finite = false) const;

 private:
  // Throws mt::Error naming the file and tensor when a floating tensor holds NaN or Inf.
  void check_finite(const at::Tensor& t, const std::string& name, at::ScalarType stored) const;

  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  StHeader header_;
  std::map<std::string, size_t> index_;  // name -> position in header_.tensors
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes one safetensors file: tensors in the given order, header padded with spaces to a multiple
// of 8, `metadata` as "__metadata__" (transformers wants {"format": "pt"}). Written to a temporary
// name, fsynced and renamed, so a crash never leaves a half-written file under `path`.
// Deterministic: the same tensors give the same bytes.
void write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes `tensors` into `dir` as HF does: one `model.safetensors` when the total fits in
// `max_shard_bytes`, else `model-00001-of-0000N.safetensors`... plus `model.safetensors.index.json`
// ({"metadata": {"total_size": bytes}, "weight_map": {name: file}}). Returns the files written.
std::vector<std::filesystem::path> write_sharded_safetensors(const std::filesystem::path& dir,
                                                             const NamedTensors& tensors,
                                                             uint64_t max_shard_bytes);

// Reads every tensor of a checkpoint directory: `model.safetensors.index.json` if present (each
// shard named there must exist and hold exactly the tensors the index assigns to it), else
// `model.safetensors`. Tensors keep their stored dtype unless `options` names one.
// require_finite as SafetensorsFile::load.
std::map<std::string, at::Tensor> load_safetensors_dir(const std::filesystem::path& dir,
                                                       const c10::TensorOptions& options = {},
                                                       bool require_finite = false);

}  // namespace mt
