// Tokenized-dataset cache (see token_cache.h). Layout of cache_root/KEY/:
//   data.bin    uint32 tokens[T] then uint8 masks[T], little-endian
//   index.bin   uint64 offsets[N + 1]
//   header.json format, version, key, counts, XXH64 checksums, build stats, key material
#include "trainer/data/token_cache.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "models/atomic_file.h"
#include "models/error.h"
#include "models/json_read.h"
#include "trainer/base/file_lock.h"
#include "models/read_file.h"
#include "models/tokenizer.h"
#include "trainer/base/hash.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the token cache and XXH64 code assume a little-endian host"
#endif

namespace mt {

using json = nlohmann::json;
namespace fs = std::filesystem;

// ------------------------------------------------------------------------------------------------
// Files: mapping, atomic writing, locking

namespace {

std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

struct Mapping {
  void* ptr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (ptr) munmap(ptr, size);
  }
};

// Maps a whole file read-only; `expected` bytes must match its size.
std::shared_ptr<Mapping> map_file(const fs::path& file, uint64_t expected) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", file.string(), std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(fmt::format("{}: cannot stat: {}", file.string(), std::strerror(errno)));
  }
  if (static_cast<uint64_t>(st.st_size) != expected) {
    ::close(fd);
    throw Error(fmt::format("{}: {} bytes, the header says {}", file.string(), st.st_size, expected));
  }
  auto m = std::make_shared<Mapping>();
  if (expected > 0) {
    void* p = mmap(nullptr, expected, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error(fmt::format("{}: mmap failed: {}", file.string(), std::strerror(errno)));
    }
    m->ptr = p;
    m->size = expected;
  }
  ::close(fd);
  return m;
}

// Writes parts to a new file and fsyncs it; errors (disk full...) name the file.
void write_file_synced(const fs::path& file, const std::vector<std::pair<const void*, size_t>>& parts) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "wb"), &std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot create: {}", file.string(), std::strerror(errno)));
  for (const auto& [data, size] : parts)
    if (size && std::fwrite(data, 1, size, f.get()) != size)
      throw Error(fmt::format("{}: write failed: {}", file.string(), std::strerror(errno)));
  if (std::fflush(f.get()) != 0) throw Error(fmt::format("{}: write failed: {}", file.string(), std::strerror(errno)));
  if (::fsync(fileno(f.get())) != 0)
    throw Error(fmt::format("{}: fsync failed: {}", file.string(), std::strerror(errno)));
  if (std::fclose(f.release()) != 0)  // some filesystems (NFS) report a failed write only here
    throw Error(fmt::format("{}: close failed: {}", file.string(), std::strerror(errno)));
}

std::string random_suffix() {
  static std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{}-{:x}", ::getpid(), rng());
}

int64_t header_int(const json& h, const char* key, const fs::path& file) {
  if (!h.contains(key) || !h[key].is_number_integer() || h[key].get<int64_t>() < 0)
    throw Error(fmt::format("{}: field '{}' must be a non-negative integer", file.string(), key));
  return h[key].get<int64_t>();
}

std::string header_string(const json& h, const char* key, const fs::path& file) {
  if (!h.contains(key) || !h[key].is_string())
    throw Error(fmt::format("{}: field '{}' must be a string", file.string(), key));
  return h[key].get<std::string>();
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// The cache


TokenCache open_token_cache(const fs::path& dir, const std::string& expected_key, bool verify_data) {
  const fs::path header_file = dir / "header.json";
  std::error_code ec;
  if (!fs::exists(header_file, ec)) throw Error(fmt::format("{}: missing", header_file.string()));
  const json h = read_json_file(header_file, "token cache header");
  if (!h.is_object() || h.value("format", "") != "maintune-token-cache")
    throw Error(fmt::format("{}: not a maintune token cache header", header_file.string()));
  if (header_int(h, "version", header_file) != kTokenCacheVersion)
    throw Error(fmt::format("{}: cache version {}, this build reads {}", header_file.string(), h["version"].dump(),
                            kTokenCacheVersion));
  const std::string key = header_string(h, "key", header_file);
  if (key != expected_key)
    throw Error(fmt::format("{}: key {} does not match {}", header_file.string(), key, expected_key));
  const int64_t n = header_int(h, "num_examples", header_file);
  const int64_t T = header_int(h, "num_tokens", header_file);
  if (n == 0) throw Error(fmt::format("{}: holds no examples", header_file.string()));
  const std::string index_sum = header_string(h, "index_xxh64", header_file);
  const std::string data_sum = header_string(h, "data_xxh64", header_file);

  auto index = map_file(dir / "index.bin", static_cast<uint64_t>(n + 1) * 8);
  auto data = map_file(dir / "data.bin", static_cast<uint64_t>(T) * 5);
  if (hex64(xxh64(index->ptr, index->size)) != index_sum)
    throw Error(fmt::format("{}: checksum does not match the header", (dir / "index.bin").string()));
  const auto* offsets = static_cast<const uint64_t*>(index->ptr);
  if (offsets[0] != 0 || offsets[n] != static_cast<uint64_t>(T))
    throw Error(fmt::format("{}: offsets do not span the {} tokens", (dir / "index.bin").string(), T));
  for (int64_t i = 0; i < n; ++i)
    if (offsets[i + 1] <= offsets[i])
      throw Error(fmt::format("{}: example {} is empty or out of order", (dir / "index.bin").string(), i));
  if (verify_data && hex64(xxh64(data->ptr, data->size)) != data_sum)
    throw Error(fmt::format("{}: checksum does not match the header", (dir / "data.bin").string()));

  TokenCache c;
  c.dir = dir;
  c.key = key;
  c.header = h;
  if (h.contains("stats")) c.stats = DataStats::from_json(h["stats"]);
  const auto* base = static_cast<const unsigned char*>(data->ptr);
  c.view_ = {reinterpret_cast<const uint32_t*>(base), base + 4 * T, offsets, n};
  c.keep_alive_ = std::make_shared<std::pair<std::shared_ptr<Mapping>, std::shared_ptr<Mapping>>>(index, data);
  return c;
}

void write_token_cache(const fs::path& dir, const std::string& key, const json& key_material,
                       const TokenizedDataset& data, const DataStats& stats) {
  if (data.size() == 0) throw Error(fmt::format("{}: refusing to cache a dataset with no examples", dir.string()));
  const fs::path tmp = dir.parent_path() / (dir.filename().string() + ".tmp-" + random_suffix());
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) throw Error(fmt::format("{}: cannot create: {}", tmp.string(), ec.message()));
  try {
    const size_t T = data.tokens.size();
    write_file_synced(tmp / "data.bin", {{data.tokens.data(), T * 4}, {data.masks.data(), T}});
    write_file_synced(tmp / "index.bin", {{data.offsets.data(), data.offsets.size() * 8}});
    Xxh64 dh;
    dh.update(data.tokens.data(), T * 4);
    dh.update(data.masks.data(), T);
    const json header = {{"format", "maintune-token-cache"},
                         {"version", kTokenCacheVersion},
                         {"key", key},
                         {"num_examples", data.size()},
                         {"num_tokens", static_cast<int64_t>(T)},
                         {"index_xxh64", hex64(xxh64(data.offsets.data(), data.offsets.size() * 8))},
                         {"data_xxh64", hex64(dh.digest())},
                         {"stats", stats.to_json()},
                         {"key_material", key_material}};
    const std::string text = header.dump(2) + "\n";
    write_file_synced(tmp / "header.json", {{text.data(), text.size()}});
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  publish_directory(tmp, dir, IfPublished::kKeepExisting);  // another process finished first: keep theirs
}

TokenCache load_or_build_token_cache(const fs::path& cache_root, const json& key_material,
                                     const std::function<TokenizedDataset(DataStats&)>& build, const LogFn& log) {
  auto say = [&](const std::string& m) {
    if (log)
      log(m);
    else
      std::fprintf(stderr, "%s\n", m.c_str());
  };
  std::error_code ec;
  fs::create_directories(cache_root, ec);
  if (ec) throw Error(fmt::format("{}: cannot create the cache directory: {}", cache_root.string(), ec.message()));
  const std::string key = cache_key(key_material);
  const fs::path dir = cache_root / key;
  FileLock lock(cache_root / (key + ".lock"));
  // Holding the lock, any KEY.tmp-* is a leftover of a crashed build.
  for (const auto& entry : fs::directory_iterator(cache_root, ec))
    if (entry.path().filename().string().rfind(key + ".tmp-", 0) == 0) fs::remove_all(entry.path(), ec);
  if (fs::exists(dir)) {
    try {
      // The data checksum too (one pass over the file, far cheaper than a training step's reading of
      // it): a flipped token passes every other check and would train silently on wrong tokens.
      TokenCache c = open_token_cache(dir, key, /*verify_data=*/true);
      say(fmt::format("token cache: loaded {} ({} examples, {} tokens)", dir.string(), c.view().num_examples,
                      c.view().num_tokens()));
      return c;
    } catch (const Error& e) {
      say(fmt::format("token cache: {} is damaged ({}); rebuilding", dir.string(), e.what()));
      const fs::path bad = cache_root / (key + ".bad-" + random_suffix());
      if (::rename(dir.c_str(), bad.c_str()) != 0)
        throw Error(fmt::format("{}: cannot move the damaged cache aside: {}", dir.string(), std::strerror(errno)));
      fs::remove_all(bad, ec);
    }
  }
  DataStats stats;
  const TokenizedDataset data = build(stats);
  write_token_cache(dir, key, key_material, data, stats);
  TokenCache c = open_token_cache(dir, key);
  c.built_now = true;
  say(fmt::format("token cache: built {} ({} examples, {} tokens)", dir.string(), data.size(), data.tokens.size()));
  return c;
}

// ------------------------------------------------------------------------------------------------
// The pipeline: sources -> conversations -> examples -> cache

namespace {

json file_identity(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(file, ec)) || !fs::exists(file, ec))
    throw Error(fmt::format("{}: no such file", file.string()));
  check_regular_file(file, "data file");  // a directory or a FIFO is said as it is
  return json{{"bytes", static_cast<int64_t>(fs::file_size(file))}, {"xxh64", hex64(xxh64_file(file))}};
}

json source_material(const DataSourceConfig& c) {
  json j = {{"format", c.format},
            {"file", file_identity(c.path)},
            {"instruction_field", c.instruction_field},
            {"input_field", c.input_field},
            {"output_field", c.output_field},
            {"prompt_field", c.prompt_field},
            {"response_field", c.response_field},
            {"completion_field", c.completion_field},
            {"messages_field", c.messages_field},
            {"role_field", c.role_field},
            {"content_field", c.content_field},
            {"sharegpt_field", c.sharegpt_field},
            {"sharegpt_role_field", c.sharegpt_role_field},
            {"sharegpt_content_field", c.sharegpt_content_field},
            {"system_field", c.system_field},
            {"turns_field", c.turns_field},
            {"instances_field", c.instances_field},
            {"text_field", c.text_field},
            {"system_prompt", c.system_prompt},
            {"min_chars", c.min_chars},
            {"max_chars", c.max_chars},
            {"on_malformed", c.on_malformed},
            {"max_line_bytes", c.max_line_bytes},
            {"max_file_bytes", c.max_file_bytes}};
  if (!c.answers_path.empty()) j["answers"] = file_identity(c.answers_path);
  // Only when set: the masks of a real source are what they were before the flag existed, so
  // their caches stay valid; a synthetic source's masks (value 2) get a key of their own.
  if (c.synthetic) j["synthetic"] = true;
  return j;
}

// The files a tokenizer is loaded from: the path itself, or the tokenizer files of a model dir.
json tokenizer_material(const fs::path& path) {
  std::error_code ec;
  json files = json::object();
  if (fs::is_directory(path, ec)) {
    for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                             "added_tokens.json"})
      if (fs::exists(path / name, ec)) files[name] = file_identity(path / name);
    if (files.empty()) throw Error(fmt::format("{}: no tokenizer files in this directory", path.string()));
  } else {
    files[path.filename().string()] = file_identity(path);
  }
  return files;
}

}  // namespace

json dataset_key_material(const DatasetSpec& spec) {
  const ExampleOptions& o = spec.example;
  json sources = json::array();
  for (const auto& s : spec.sources) sources.push_back(source_material(s));
  return json{{"cache_version", kTokenCacheVersion},
              {"pipeline_version", kDataPipelineVersion},
              {"sources", sources},
              {"tokenizer", tokenizer_material(spec.tokenizer)},
              {"template", o.template_name},
              {"max_len", o.max_len},
              {"train_on_prompt", o.train_on_prompt},
              {"too_long", o.too_long},
              {"on_malformed", o.on_malformed}};
}

TokenCache load_tokenized_dataset(const DatasetSpec& spec, const LogFn& log_fn) {
  if (spec.sources.empty()) throw Error("data: no sources given");
  check_example_options(spec.example);
  // Never silent: the per-source report (warnings above all) goes to stderr when there is no log.
  const LogFn log = log_fn ? log_fn : LogFn([](const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); });
  auto build = [&](DataStats& stats) {
    const Tokenizer tok = Tokenizer::load(spec.tokenizer);
    TokenizedDataset all;
    for (const auto& source : spec.sources) {
      DataStats s;
      const auto convs = read_conversations(source, &s);
      TokenizedDataset part = tokenize_conversations(tok, convs, spec.example, &s);
      if (source.synthetic) mark_synthetic_targets(part);
      for (int64_t i = 0; i < part.size(); ++i) {
        const auto b = static_cast<std::ptrdiff_t>(part.offsets[static_cast<size_t>(i)]);
        const auto e = static_cast<std::ptrdiff_t>(part.offsets[static_cast<size_t>(i) + 1]);
        all.tokens.insert(all.tokens.end(), part.tokens.begin() + b, part.tokens.begin() + e);
        all.masks.insert(all.masks.end(), part.masks.begin() + b, part.masks.begin() + e);
        all.offsets.push_back(all.tokens.size());
      }
      log(fmt::format("data: {}: {}", source.path.string(), s.summary()));
      for (const auto& shape : s.shapes) log("data: " + shape.report());
      stats.merge(s);
    }
    if (all.size() == 0) throw Error(fmt::format("data: no training examples left ({})", stats.summary()));
    return all;
  };
  if (spec.cache_dir.empty()) {
    DataStats stats;
    auto data = std::make_shared<TokenizedDataset>(build(stats));
    TokenCache c;
    c.key = cache_key(dataset_key_material(spec));
    c.stats = stats;
    c.built_now = true;
    c.view_ = data->view();
    c.keep_alive_ = data;
    return c;
  }
  TokenCache c = load_or_build_token_cache(spec.cache_dir, dataset_key_material(spec), build, log);
  if (!c.built_now)  // the build's warnings still hold for the cached examples: say them again
    for (const auto& shape : c.stats.shapes)
      if (!shape.all_trained()) log("data: " + shape.report());
  return c;
}

}  // namespace mt
