// Parser and validator of the safetensors header (8-byte little-endian length + JSON table).
// No torch here, so a libFuzzer target can build it alone. Checks every bound: header length,
// JSON shape, dtype names, shape x dtype size == byte range, ranges contiguous and inside the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mt {

enum class StDtype { BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2 };

// Bytes per element; names as the format spells them ("BF16", "F32", ...).
size_t st_dtype_size(StDtype dtype);
const char* st_dtype_name(StDtype dtype);
bool st_dtype_from_name(const std::string& name, StDtype* out);

struct StTensorInfo {
  std::string name;
  StDtype dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
};

struct StHeader {
  uint64_t header_len = 0;       // length of the JSON text
  uint64_t data_start = 0;       // 8 + header_len
  std::vector<StTensorInfo> tensors;  // sorted by begin offset (file order)
  std::map<std::string, std::string> metadata;  // "__metadata__", string -> string
};

// Parses and validates the header of a whole safetensors file held in [data, data + size).
// `file_name` is used in error messages only. Throws mt::Error naming the file and, where one is
// involved, the tensor. Never reads outside the buffer.
StHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& file_name);

// Largest accepted JSON header (the reference implementation's limit is 100 MB).
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull * 1000 * 1000;

}  // namespace mt
