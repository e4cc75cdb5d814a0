// Parser and validator of the safetensors header: 8-byte little-endian length, then a JSON table
// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}. As strict as the reference Rust
// implementation (tensor ranges tile the data section exactly), plus duplicate-key detection
// (through json_read, which a plain nlohmann parse would hide by keeping the last value).
#include "models/safetensors_header.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <tuple>

#include "models/error.h"
#include "models/json_read.h"

namespace mt {
namespace {

using nlohmann::json;

struct DtypeInfo {
  StDtype dtype;
  const char* name;
  size_t size;
};

// Indexed by the enum's value (checked in st_dtype_info).
constexpr DtypeInfo kDtypes[] = {
    {StDtype::BOOL, "BOOL", 1}, {StDtype::U8, "U8", 1},           {StDtype::I8, "I8", 1},
    {StDtype::I16, "I16", 2},   {StDtype::U16, "U16", 2},         {StDtype::I32, "I32", 4},
    {StDtype::U32, "U32", 4},   {StDtype::I64, "I64", 8},         {StDtype::U64, "U64", 8},
    {StDtype::F16, "F16", 2},   {StDtype::BF16, "BF16", 2},       {StDtype::F32, "F32", 4},
    {StDtype::F64, "F64", 8},   {StDtype::F8_E4M3, "F8_E4M3", 1}, {StDtype::F8_E5M2, "F8_E5M2", 1},
};
constexpr size_t kNumDtypes = sizeof(kDtypes) / sizeof(kDtypes[0]);

const DtypeInfo& st_dtype_info(StDtype dtype) {
  const size_t i = static_cast<size_t>(dtype);
  if (i >= kNumDtypes || kDtypes[i].dtype != dtype) throw Error("invalid StDtype value " + std::to_string(i));
  return kDtypes[i];
}

// Names come from untrusted files: quote them and escape control bytes so messages stay one line.
std::string quote(const std::string& s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string range_str(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

// The message for a duplicate key (json_read refuses them all; nlohmann alone would keep the last
// value), worded in the header's own terms.
std::string describe_duplicate(const std::vector<std::string>& path) {
  const std::string& key = path.back();
  if (path.size() == 1) {
    return key == "__metadata__" ? "duplicate key '__metadata__'" : "duplicate tensor name " + quote(key);
  }
  const std::string& parent = path[0];
  if (path.size() == 2 && parent == "__metadata__") return "__metadata__: duplicate key " + quote(key);
  if (path.size() == 2) return "tensor " + quote(parent) + ": duplicate field " + quote(key);
  return "duplicate JSON key " + quote(key) + " under " + quote(parent);
}

[[noreturn]] void fail(const std::string& file, const std::string& msg) { throw Error(file + ": " + msg); }

// Reads a JSON value that must be a non-negative integer; `what` names it in errors.
uint64_t get_uint(const json& v, const std::string& file, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) fail(file, what + " is negative (" + std::to_string(v.get<int64_t>()) + ")");
  // Integers beyond 2^64 parse as floats: too large rather than fractional.
  fail(file, what + " must be a non-negative integer below 2^64, got " + v.dump());
}

StTensorInfo parse_tensor(const std::string& name, const json& v, uint64_t data_size,
                          const std::string& file) {
  const std::string where = "tensor " + quote(name);
  if (!v.is_object()) {
    fail(file, where + ": entry must be an object with dtype, shape and data_offsets, got " + v.type_name());
  }
  for (const auto& item : v.items()) {
    const std::string& k = item.key();
    if (k != "dtype" && k != "shape" && k != "data_offsets")
      fail(file, where + ": unknown field " + quote(k));
  }
  StTensorInfo t;
  t.name = name;

  auto dt = v.find("dtype");
  if (dt == v.end()) fail(file, where + ": missing field 'dtype'");
  if (!dt->is_string()) fail(file, where + ": dtype must be a string, got " + dt->dump());
  if (!st_dtype_from_name(dt->get_ref<const std::string&>(), &t.dtype)) {
    fail(file, where + ": unknown dtype " + quote(dt->get_ref<const std::string&>()));
  }

  auto sh = v.find("shape");
  if (sh == v.end()) fail(file, where + ": missing field 'shape'");
  if (!sh->is_array()) fail(file, where + ": shape must be an array, got " + sh->type_name());
  uint64_t numel = 1;
  bool numel_overflow = false;
  for (size_t i = 0; i < sh->size(); ++i) {
    const uint64_t d = get_uint((*sh)[i], file, where + ": shape[" + std::to_string(i) + "]");
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(file,
           where + ": shape[" + std::to_string(i) + "] = " + std::to_string(d) + " does not fit in int64");
    }
    t.shape.push_back(static_cast<int64_t>(d));
    numel_overflow |= __builtin_mul_overflow(numel, d, &numel);
  }
  // A zero dimension makes the product 0 even if a partial product overflowed.
  const bool has_zero = std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end();
  if (has_zero) numel = 0;
  uint64_t nbytes = 0;
  if ((numel_overflow && !has_zero) || __builtin_mul_overflow(numel, st_dtype_size(t.dtype), &nbytes)) {
    fail(file,
         where + ": shape " + shape_str(t.shape) + " x " + st_dtype_name(t.dtype) + " overflows 64 bits");
  }

  auto off = v.find("data_offsets");
  if (off == v.end()) fail(file, where + ": missing field 'data_offsets'");
  if (!off->is_array() || off->size() != 2) {
    fail(file, where + ": data_offsets must be an array of 2 integers, got " + off->dump());
  }
  t.begin = get_uint((*off)[0], file, where + ": data_offsets[0]");
  t.end = get_uint((*off)[1], file, where + ": data_offsets[1]");
  if (t.begin > t.end) fail(file, where + ": data_offsets " + range_str(t.begin, t.end) + " has begin > end");
  if (t.end - t.begin != nbytes) {
    fail(file, where + ": data_offsets " + range_str(t.begin, t.end) + " hold " +
                   std::to_string(t.end - t.begin) + " bytes but shape " + shape_str(t.shape) + " x " +
                   st_dtype_name(t.dtype) + " needs " + std::to_string(nbytes));
  }
  if (t.end > data_size) {
    fail(file, where + ": data_offsets " + range_str(t.begin, t.end) +
                   " run past the end of the data section (" + std::to_string(data_size) + " bytes)");
  }
  return t;
}

void parse_metadata(const json& v, const std::string& file, std::map<std::string, std::string>* out) {
  if (!v.is_object())
    fail(file, std::string("__metadata__ must be an object of string -> string, got ") + v.type_name());
  for (const auto& item : v.items()) {
    if (!item.value().is_string()) {
      fail(file,
           "__metadata__ key " + quote(item.key()) + ": value must be a string, got " + item.value().dump());
    }
    (*out)[item.key()] = item.value().get<std::string>();
  }
}

// The reference implementation's rule: sorted by offsets, the ranges must tile [0, data_size)
// with no gap and no overlap, so every byte of the file belongs to exactly one tensor.
void check_tiling(const std::vector<StTensorInfo>& tensors, uint64_t data_size, const std::string& file) {
  uint64_t expected = 0;
  const StTensorInfo* prev = nullptr;
  for (const StTensorInfo& t : tensors) {
    if (t.begin < expected) {
      fail(file, "tensors " + quote(prev->name) + " " + range_str(prev->begin, prev->end) + " and " +
                     quote(t.name) + " " + range_str(t.begin, t.end) + " overlap");
    }
    if (t.begin > expected) {
      if (!prev) {
        fail(file, std::to_string(t.begin) + " bytes before the first tensor " + quote(t.name) +
                       " belong to no tensor (data must start at offset 0)");
      }
      fail(file, "gap of " + std::to_string(t.begin - expected) + " bytes between tensor " +
                     quote(prev->name) + " (ends at " + std::to_string(expected) + ") and tensor " +
                     quote(t.name) + " (begins at " + std::to_string(t.begin) + ")");
    }
    expected = t.end;
    prev = &t;
  }
  if (expected != data_size) {  // expected < data_size: every end was checked against data_size
    if (!prev)
      fail(file,
           "data section holds " + std::to_string(data_size) + " bytes but the header lists no tensors");
    fail(file, std::to_string(data_size - expected) + " trailing bytes after the last tensor " +
                   quote(prev->name) + " (tensors end at " + std::to_string(expected) + ", data section is " +
                   std::to_string(data_size) + " bytes)");
  }
}

StHeader parse_checked(const uint8_t* data, size_t size, const std::string& file) {
  if (size < 8) {
    fail(file, "file is " + std::to_string(size) +
                   " bytes, too short for a safetensors file (8-byte header length)");
  }
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(data[i]) << (8 * i);  // little-endian on any host
  if (n == 0) fail(file, "header length is 0 (the smallest header is \"{}\")");
  if (n > kMaxSafetensorsHeaderBytes) {
    fail(file, "header length " + std::to_string(n) + " exceeds the limit of " +
                   std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  }
  if (n > size - 8) {
    fail(file, "header length " + std::to_string(n) + " runs past the end of the file (" +
                   std::to_string(size) + " bytes, leaving at most " + std::to_string(size - 8) +
                   " for the header)");
  }

  const char* text = reinterpret_cast<const char*>(data + 8);
  JsonLimits limits;
  limits.describe_duplicate = describe_duplicate;
  // Errors read "FILE: header: invalid JSON at byte N ..." (N counted from the header's start); the
  // parse also rejects invalid UTF-8, nesting deeper than the limit and numbers beyond double.
  const json j = parse_json(std::string_view(text, n), file + ": header", limits);
  if (!j.is_object()) fail(file, std::string("header JSON must be an object, got ") + j.type_name());

  StHeader h;
  h.header_len = n;
  h.data_start = 8 + n;
  const uint64_t data_size = size - h.data_start;
  for (const auto& item : j.items()) {
    if (item.key() == "__metadata__") {
      parse_metadata(item.value(), file, &h.metadata);
    } else {
      h.tensors.push_back(parse_tensor(item.key(), item.value(), data_size, file));
    }
  }
  // File order; ties (zero-size tensors) broken by end, then name, so the result is deterministic.
  std::sort(h.tensors.begin(), h.tensors.end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  check_tiling(h.tensors, data_size, file);
  return h;
}

}  // namespace

size_t st_dtype_size(StDtype dtype) { return st_dtype_info(dtype).size; }

const char* st_dtype_name(StDtype dtype) { return st_dtype_info(dtype).name; }

bool st_dtype_from_name(const std::string& name, StDtype* out) {
  for (const DtypeInfo& d : kDtypes) {
    if (name == d.name) {
      *out = d.dtype;
      return true;
    }
  }
  return false;
}

StHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& file_name) {
  try {
    return parse_checked(data, size, file_name);
  } catch (const json::exception& e) {
    // Every access above is type-checked first; this only keeps a missed case an mt::Error.
    fail(file_name, std::string("malformed header: ") + e.what());
  }
}

}  // namespace mt
