// Resumable chunked work for the pipeline's generation and scoring: items are cut into fixed
// chunks, chunk c belongs to rank c % world_size, and each finished chunk is written atomically
// as one JSONL file, so a kill loses at most the chunk in flight and a rerun skips finished ones.
// Merging reads the chunks in item order, so the result does not depend on ranks or restarts.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace mt {

struct ChunkPlan {
  int64_t items = 0;
  int64_t chunk_size = 256;
  // What the chunks are a function of (inputs, model, decoding settings); chunks made under another
  // key are refused rather than mixed in.
  std::string key;
  int64_t chunks() const { return chunk_size > 0 ? (items + chunk_size - 1) / chunk_size : 0; }
  std::pair<int64_t, int64_t> range(int64_t chunk) const;  // [begin, end) items of a chunk
};

using ChunkFn = std::function<std::vector<nlohmann::json>(int64_t begin, int64_t end, int64_t chunk)>;
using ChunkProgressFn = std::function<void(int64_t chunks_done, int64_t chunks_total, int64_t computed_now)>;

// Computes this rank's missing chunks with fn (which must return end - begin records) and writes
// each as dir/chunk_NNNNNN.jsonl. A damaged chunk file (wrong record count, bad JSON, no trailer) is
// computed again. Returns the number of chunks computed by this call. Throws mt::Error when dir
// holds chunks of a different plan (items, chunk size or key).
int64_t run_chunks(const std::filesystem::path& dir, const ChunkPlan& plan, int64_t rank, int64_t world_size,
                   const ChunkFn& fn, const ChunkProgressFn& progress = {});

// Every chunk's records, in item order. Throws mt::Error naming the first chunk that is missing
// (and the rank that owes it) or damaged.
std::vector<nlohmann::json> read_chunks(const std::filesystem::path& dir, const ChunkPlan& plan, int64_t world_size = 1);

}  // namespace mt
