// The tokenized-dataset cache: uint32 tokens + uint8 loss masks in one flat mmap'd file, an offsets
// index and a JSON header, keyed by XXH64 content hashes of data and tokenizer files plus every
// option that changes the tokens. Written atomically (temp dir, fsync, rename); a damaged cache is
// detected (sizes, index checksum, offsets) and rebuilt, never trusted. Layout: docs/data.md.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trainer/base/hash.h"
#include "trainer/data/data_formats.h"
#include "trainer/data/examples.h"

namespace mt {

constexpr int kTokenCacheVersion = 1;  // the on-disk layout
// Bumped whenever readers, examples or the chat templates change the tokens they produce, so that
// old caches are not reused.
constexpr int kDataPipelineVersion = 3;  // 2: TRL prompt_completion, shape report; 3: its multi-turn prompts

// A tokenized dataset, memory-mapped from a cache or held in memory.
struct TokenCache {
  std::filesystem::path dir;  // empty when in memory
  std::string key;            // 32 hex digits
  nlohmann::json header;
  DataStats stats;            // of the build that made it (stored in the header)
  bool built_now = false;     // true when this call tokenized (a cache miss or a rebuild)
  DatasetView view() const { return view_; }

  DatasetView view_;
  std::shared_ptr<const void> keep_alive_;  // the mappings or the in-memory dataset
};

// Opens and validates a cache directory: header fields and version, `expected_key`, file sizes
// against the header, the index checksum and offsets; with verify_data also the token/mask checksum.
// Throws mt::Error saying what is wrong.
TokenCache open_token_cache(const std::filesystem::path& dir, const std::string& expected_key,
                            bool verify_data = false);

// Writes a cache directory atomically: files into DIR.tmp-PID-RANDOM, fsync, rename to DIR. If DIR
// appeared meanwhile (another process won), the temporary copy is removed and DIR is kept.
void write_token_cache(const std::filesystem::path& dir, const std::string& key, const nlohmann::json& key_material,
                       const TokenizedDataset& data, const DataStats& stats);

using LogFn = std::function<void(const std::string&)>;

// Loads cache_root/KEY or, on a miss or a damaged cache, calls build() and writes it. Processes
// sharing cache_root serialize on an flock'd KEY.lock, so concurrent ranks tokenize once.
TokenCache load_or_build_token_cache(const std::filesystem::path& cache_root, const nlohmann::json& key_material,
                                     const std::function<TokenizedDataset(DataStats&)>& build,
                                     const LogFn& log = {});

// What a training run asks for: sources, tokenizer, example options, cache location.
struct DatasetSpec {
  std::vector<DataSourceConfig> sources;
  std::filesystem::path tokenizer;   // as for Tokenizer::load
  ExampleOptions example;
  std::filesystem::path cache_dir;   // "" = no cache: tokenize in memory every time
};

// The key material: versions, each source's options with its file's size and XXH64 (not its path,
// so a moved file keeps its cache; `synthetic` only when set, since it changes the masks), the
// tokenizer files' sizes and XXH64, and the example options.
nlohmann::json dataset_key_material(const DatasetSpec& spec);

// Reads every source, tokenizes and caches (see load_or_build_token_cache). The tokenizer is only
// loaded on a cache miss. Throws mt::Error when no training example is left.
TokenCache load_tokenized_dataset(const DatasetSpec& spec, const LogFn& log = {});

}  // namespace mt
