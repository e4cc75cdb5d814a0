// safetensors with torch: SafetensorsFile (mmap + validated header; tensors are copied out),
// write_safetensors (deterministic bytes, tmp + fsync + rename), HF-style sharding with an index,
// and a checkpoint-directory loader that cross-checks the index against its shards.
#include "models/safetensors.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>

#include "models/atomic_file.h"
#include "models/json_read.h"
#include "models/read_file.h"
#include "models/error.h"

// safetensors is little-endian; we memcpy tensor bytes as they are.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace mt {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

std::optional<at::ScalarType> to_scalar_type(StDtype dtype) {
  switch (dtype) {
    case StDtype::BOOL: return at::kBool;
    case StDtype::U8: return at::kByte;
    case StDtype::I8: return at::kChar;
    case StDtype::I16: return at::kShort;
    case StDtype::U16: return at::kUInt16;
    case StDtype::I32: return at::kInt;
    case StDtype::U32: return at::kUInt32;
    case StDtype::I64: return at::kLong;
    case StDtype::U64: return at::kUInt64;
    case StDtype::F16: return at::kHalf;
    case StDtype::BF16: return at::kBFloat16;
    case StDtype::F32: return at::kFloat;
    case StDtype::F64: return at::kDouble;
    case StDtype::F8_E4M3: return at::kFloat8_e4m3fn;
    case StDtype::F8_E5M2: return at::kFloat8_e5m2;
  }
  return std::nullopt;
}

std::optional<StDtype> from_scalar_type(at::ScalarType t) {
  switch (t) {
    case at::kBool: return StDtype::BOOL;
    case at::kByte: return StDtype::U8;
    case at::kChar: return StDtype::I8;
    case at::kShort: return StDtype::I16;
    case at::kUInt16: return StDtype::U16;
    case at::kInt: return StDtype::I32;
    case at::kUInt32: return StDtype::U32;
    case at::kLong: return StDtype::I64;
    case at::kUInt64: return StDtype::U64;
    case at::kHalf: return StDtype::F16;
    case at::kBFloat16: return StDtype::BF16;
    case at::kFloat: return StDtype::F32;
    case at::kDouble: return StDtype::F64;
    case at::kFloat8_e4m3fn: return StDtype::F8_E4M3;
    case at::kFloat8_e5m2: return StDtype::F8_E5M2;
    default: return std::nullopt;
  }
}

// Shard file names from an index come from an untrusted file: plain names inside the directory only.
bool is_plain_file_name(const std::string& s) {
  return !s.empty() && s.find('/') == std::string::npos && s.find('\\') == std::string::npos &&
         s.find("..") == std::string::npos && s.find('\0') == std::string::npos && s != ".";
}

std::map<std::string, at::Tensor> load_indexed(const fs::path& dir, const fs::path& index_path,
                                               const c10::TensorOptions& options, bool require_finite) {
  const std::string idx = index_path.string();
  const nlohmann::json j = read_json_file(index_path, "safetensors index");
  if (!j.is_object()) throw Error(idx + ": index must be a JSON object, got " + j.type_name());
  auto wm = j.find("weight_map");
  if (wm == j.end()) throw Error(idx + ": missing \"weight_map\"");
  if (!wm->is_object()) throw Error(idx + ": \"weight_map\" must be an object, got " + wm->type_name());

  std::map<std::string, std::string> name_to_shard;
  std::map<std::string, std::vector<std::string>> shard_to_names;  // shard file -> names, index order
  for (const auto& item : wm->items()) {
    const std::string& name = item.key();
    if (!item.value().is_string()) {
      throw Error(idx + ": weight_map['" + name + "']: shard file name must be a string, got " +
                  item.value().dump());
    }
    const std::string& file = item.value().get_ref<const std::string&>();
    if (!is_plain_file_name(file)) {
      throw Error(idx + ": weight_map['" + name + "']: shard file name '" + file +
                  "' must be a plain file name inside " + dir.string());
    }
    name_to_shard[name] = file;
    shard_to_names[file].push_back(name);
  }

  std::map<std::string, at::Tensor> out;
  for (const auto& [file, names] : shard_to_names) {  // each shard opened once
    const fs::path shard_path = dir / file;
    std::error_code ec;
    if (!fs::exists(shard_path, ec)) {
      throw Error(idx + ": shard '" + file + "' (named for tensor '" + names.front() +
                  "') does not exist in " + dir.string());
    }
    SafetensorsFile shard(shard_path);
    for (const std::string& name : names) {
      if (!shard.contains(name)) {
        throw Error("missing tensor '" + name + "' in shard " + shard_path.string() + " (named by index " +
                    idx + ")");
      }
    }
    for (const StTensorInfo& t : shard.header().tensors) {
      auto it = name_to_shard.find(t.name);
      if (it == name_to_shard.end()) {
        throw Error(shard_path.string() + ": tensor '" + t.name + "' is not listed in index " + idx);
      }
      if (it->second != file) {
        throw Error(shard_path.string() + ": tensor '" + t.name + "' is listed in index " + idx +
                    " under shard '" + it->second + "'");
      }
    }
    for (const StTensorInfo& t : shard.header().tensors)
      out[t.name] = shard.load(t.name, options, require_finite);  // file order
  }
  return out;
}

}  // namespace

// --- reader --------------------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  const std::string name = path.string();
  const int fd = open_regular_file(path);  // a FIFO or directory is refused, never waited on
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(name + ": cannot stat: " + errno_text(err));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {  // mmap of 0 bytes fails; the parser reports a short file from its size alone
    ::close(fd);
    const uint8_t none[8] = {};
    parse_safetensors_header(none, size, name);
    throw Error(name + ": file too short");  // not reached: the parser throws
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) throw Error(name + ": mmap failed: " + errno_text(err));
  data_ = static_cast<const uint8_t*>(p);
  size_ = size;
  try {
    header_ = parse_safetensors_header(data_, size_, name);
    for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
  } catch (...) {
    ::munmap(p, size_);  // the destructor does not run for a throwing constructor
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

const StTensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

at::Tensor SafetensorsFile::load(const std::string& name, const c10::TensorOptions& options,
                                 bool require_finite) const {
  const StTensorInfo* info = find(name);
  if (!info) throw Error(path_.string() + ": no tensor '" + name + "'");
  const std::optional<at::ScalarType> stored = to_scalar_type(info->dtype);
  if (!stored)
    throw Error(path_.string() + ": tensor '" + name + "': no torch dtype for " + st_dtype_name(info->dtype));
  at::Tensor t = at::empty(info->shape, at::TensorOptions().dtype(*stored).device(at::kCPU));
  const uint8_t* src = data_ + header_.data_start + info->begin;
  const size_t nbytes = info->end - info->begin;           // == t.nbytes(), checked by the header parser
  if (nbytes > 0) std::memcpy(t.data_ptr(), src, nbytes);  // memcpy: mmap offsets need not be aligned
  if (info->dtype == StDtype::BOOL) {
    // A bool byte other than 0/1 is undefined behaviour in torch kernels; refuse it here.
    for (size_t i = 0; i < nbytes; ++i) {
      if (src[i] > 1) {
        throw Error(path_.string() + ": tensor '" + name + "': BOOL element " + std::to_string(i) + " is " +
                    std::to_string(src[i]) + ", not 0 or 1");
      }
    }
  }
  const at::ScalarType want = options.has_dtype() ? options.dtype().toScalarType() : *stored;
  const c10::Device device = options.has_device() ? options.device() : c10::Device(at::kCPU);
  if (want != *stored || device != t.device()) t = t.to(device, want);
  if (require_finite) check_finite(t, name, *stored);
  return t;
}

// One pass per tensor: a NaN or Inf weight (or optimizer moment) would run to garbage outputs with
// exit 0. Checked after the conversion, so a float32 value beyond float16's range is caught too.
void SafetensorsFile::check_finite(const at::Tensor& t, const std::string& name, at::ScalarType stored) const {
  if (!at::isFloatingType(t.scalar_type()) || t.numel() == 0) return;
  const bool is_f8 = t.scalar_type() == at::kFloat8_e4m3fn || t.scalar_type() == at::kFloat8_e5m2;
  const at::Tensor bad = at::logical_not(at::isfinite(is_f8 ? t.to(at::kFloat) : t));
  const int64_t count = bad.sum().item<int64_t>();
  if (count == 0) return;
  const int64_t first = bad.flatten().nonzero()[0][0].item<int64_t>();
  const std::string after = t.scalar_type() == stored
                                ? std::string()
                                : std::string(" after conversion to ") + c10::toString(t.scalar_type());
  throw Error(path_.string() + ": tensor '" + name + "': " + std::to_string(count) +
              " non-finite value(s) (NaN or Inf)" + after + ", the first at flat index " + std::to_string(first));
}

// --- writer --------------------------------------------------------------------------------------

void write_safetensors(const fs::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string pname = path.string();
  // ordered_json: "__metadata__" first, then tensors in the caller's order (= data order).
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::set<std::string> seen;
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const std::string where = pname + ": tensor '" + name + "'";
    if (name == "__metadata__") throw Error(where + ": the name is reserved for metadata");
    if (!seen.insert(name).second) throw Error(pname + ": duplicate tensor name '" + name + "'");
    if (!t.defined()) throw Error(where + ": undefined tensor");
    if (t.layout() != at::kStrided) throw Error(where + ": only dense (strided) tensors can be saved");
    const std::optional<StDtype> dt = from_scalar_type(t.scalar_type());
    if (!dt)
      throw Error(where + ": dtype " + std::string(c10::toString(t.scalar_type())) +
                  " has no safetensors equivalent");
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * st_dtype_size(*dt);
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = st_dtype_name(*dt);
    e["shape"] = t.sizes().vec();
    e["data_offsets"] = nlohmann::ordered_json::array({offset, offset + nbytes});
    header[name] = std::move(e);
    sizes.push_back(nbytes);
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();  // compact, like the reference writer
  } catch (const nlohmann::json::exception& e) {
    throw Error(pname + ": tensor names and metadata must be valid UTF-8: " + e.what());
  }
  // Pad with spaces so the data section starts 8-byte aligned (as the reference writer does).
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  write_file_atomically(path, [&](int fd, const std::string& tmp) {
    write_all(fd, len, sizeof(len), tmp);
    write_all(fd, text.data(), text.size(), tmp);
    for (size_t i = 0; i < tensors.size(); ++i) {
      // One tensor at a time on the host, so saving a GPU model needs no second full copy.
      const at::Tensor c = tensors[i].second.to(at::kCPU).contiguous();
      if (static_cast<uint64_t>(c.nbytes()) != sizes[i]) {
        throw Error(pname + ": tensor '" + tensors[i].first + "' changed size while being written");
      }
      if (sizes[i] > 0) write_all(fd, c.data_ptr(), sizes[i], tmp);
    }
  });
}

// Existing files in `dir` are never deleted: our names are overwritten, anything else is left.
// Caveat: an index + shards from an earlier sharded save into the same directory survive a later
// single-file save, and load_safetensors_dir prefers the index; save into a fresh directory.
std::vector<fs::path> write_sharded_safetensors(const fs::path& dir, const NamedTensors& tensors,
                                                uint64_t max_shard_bytes) {
  std::set<std::string> seen;
  std::vector<std::vector<size_t>> shards(1);
  uint64_t shard_bytes = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    if (!seen.insert(name).second) throw Error(dir.string() + ": duplicate tensor name '" + name + "'");
    if (!t.defined()) throw Error(dir.string() + ": tensor '" + name + "': undefined tensor");
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * static_cast<uint64_t>(t.element_size());
    // Greedy in order, as HF: a tensor that would overflow a non-empty shard starts the next one,
    // so a tensor above the limit ends up alone.
    if (!shards.back().empty() && shard_bytes + nbytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += nbytes;
    total += nbytes;
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create directory: " + ec.message());
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  if (shards.size() == 1) {
    const fs::path p = dir / kSingleFile;
    write_safetensors(p, tensors, meta);
    return {p};
  }

  std::vector<fs::path> written;
  nlohmann::json weight_map = nlohmann::json::object();  // std::map: keys sorted, like HF's sort_keys
  for (size_t s = 0; s < shards.size(); ++s) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string file = buf;
    NamedTensors part;
    for (size_t i : shards[s]) {
      part.push_back(tensors[i]);
      weight_map[tensors[i].first] = file;
    }
    written.push_back(dir / file);
    write_safetensors(written.back(), part, meta);
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", std::move(weight_map)}};
  std::string text;
  try {
    text = index.dump(2) + "\n";  // HF: json.dumps(index, indent=2, sort_keys=True) + "\n"
  } catch (const nlohmann::json::exception& e) {
    throw Error(dir.string() + ": tensor names must be valid UTF-8: " + e.what());
  }
  written.push_back(dir / kIndexFile);
  write_file_atomically(written.back(),
                   [&](int fd, const std::string& tmp) { write_all(fd, text.data(), text.size(), tmp); });
  return written;
}

// --- checkpoint directories ----------------------------------------------------------------------

std::map<std::string, at::Tensor> load_safetensors_dir(const fs::path& dir, const c10::TensorOptions& options,
                                                       bool require_finite) {
  std::error_code ec;
  const fs::path index_path = dir / kIndexFile;
  if (fs::exists(index_path, ec)) return load_indexed(dir, index_path, options, require_finite);
  const fs::path single = dir / kSingleFile;
  if (fs::exists(single, ec)) {
    SafetensorsFile f(single);
    std::map<std::string, at::Tensor> out;
    for (const StTensorInfo& t : f.header().tensors) out[t.name] = f.load(t.name, options, require_finite);
    return out;
  }
  throw Error(std::string("no ") + kSingleFile + " or " + kIndexFile + " in " + dir.string());
}

}  // namespace mt
