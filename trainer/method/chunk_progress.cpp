// Resumable chunked work (see chunk_progress.h). A chunk file is its records, one JSON object per
// line, then a trailer {"_chunk": c, "_records": n}; it is written to a temporary name and renamed,
// so it either exists whole or not at all.
#include "trainer/method/chunk_progress.h"

#include <fmt/format.h>

#include <fstream>
#include <optional>

#include "models/atomic_file.h"
#include "models/error.h"
#include "models/json_read.h"
#include "models/read_file.h"

namespace mt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path chunk_file(const fs::path& dir, int64_t chunk) { return dir / fmt::format("chunk_{:06d}.jsonl", chunk); }

json plan_json(const ChunkPlan& plan) {
  return json{{"items", plan.items}, {"chunk_size", plan.chunk_size}, {"key", plan.key}};
}

// The plan the folder was started with must be this one: chunks of other inputs are never mixed in.
void check_or_write_plan(const fs::path& dir, const ChunkPlan& plan, bool write) {
  const fs::path file = dir / "plan.json";
  if (fs::exists(file)) {
    json saved = parse_json_or_discarded(read_file(file, "chunk plan"));
    if (saved.is_discarded())
      throw Error(fmt::format("{}: not valid JSON; remove the folder {} to redo this work", file.string(),
                              dir.string()));
    if (saved != plan_json(plan))
      throw Error(fmt::format("{}: this folder's chunks were made for other inputs or settings ({} here, {} now); "
                              "remove the folder {} to redo this work",
                              file.string(), saved.dump(), plan_json(plan).dump(), dir.string()));
    return;
  }
  if (write) write_text_file_atomically(file, plan_json(plan).dump() + "\n");
}

// The records of a chunk file, or nullopt (with the reason) when it is missing or damaged.
std::optional<std::vector<json>> load_chunk(const fs::path& file, int64_t chunk, int64_t expected, std::string* why) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    *why = "missing";
    return std::nullopt;
  }
  std::vector<json> records;
  std::string line;
  int64_t line_no = 0;
  bool trailer = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (trailer) {
      *why = fmt::format("line {}: text after the trailer", line_no);
      return std::nullopt;
    }
    json j = parse_json_or_discarded(line);
    if (j.is_discarded() || !j.is_object()) {
      *why = fmt::format("line {}: not a JSON object", line_no);
      return std::nullopt;
    }
    if (j.contains("_chunk") && j.contains("_records") && j.size() == 2) {
      trailer = true;
      if (j["_chunk"] != chunk || j["_records"] != expected || static_cast<int64_t>(records.size()) != expected) {
        *why = fmt::format("trailer {} does not match chunk {} of {} records ({} read)", j.dump(), chunk, expected,
                           records.size());
        return std::nullopt;
      }
      continue;
    }
    records.push_back(std::move(j));
  }
  if (!trailer) {
    *why = "no trailer (truncated)";
    return std::nullopt;
  }
  return records;
}

}  // namespace

std::pair<int64_t, int64_t> ChunkPlan::range(int64_t chunk) const {
  const int64_t begin = chunk * chunk_size;
  return {begin, std::min(items, begin + chunk_size)};
}

int64_t run_chunks(const fs::path& dir, const ChunkPlan& plan, int64_t rank, int64_t world_size, const ChunkFn& fn,
                   const ChunkProgressFn& progress) {
  if (plan.chunk_size <= 0) throw Error("chunked work: chunk_size must be positive");
  if (world_size <= 0 || rank < 0 || rank >= world_size)
    throw Error(fmt::format("chunked work: rank {} of world size {}", rank, world_size));
  fs::create_directories(dir);
  check_or_write_plan(dir, plan, rank == 0);
  const int64_t total = plan.chunks();
  int64_t done = 0, computed = 0;
  for (int64_t c = 0; c < total; ++c) {
    if (c % world_size != rank) continue;
    const auto [begin, end] = plan.range(c);
    const fs::path file = chunk_file(dir, c);
    std::string why;
    if (load_chunk(file, c, end - begin, &why)) {
      ++done;
      continue;
    }
    std::vector<json> records = fn(begin, end, c);
    if (static_cast<int64_t>(records.size()) != end - begin)
      throw std::logic_error(fmt::format("chunk {}: {} records for {} items", c, records.size(), end - begin));
    std::string text;
    for (const auto& r : records) text += r.dump() + "\n";
    text += json{{"_chunk", c}, {"_records", end - begin}}.dump() + "\n";
    write_text_file_atomically(file, text);
    ++done;
    ++computed;
    if (progress) progress(done, (total - rank + world_size - 1) / world_size, computed);
  }
  return computed;
}

std::vector<json> read_chunks(const fs::path& dir, const ChunkPlan& plan, int64_t world_size) {
  check_or_write_plan(dir, plan, false);
  std::vector<json> all;
  all.reserve(static_cast<size_t>(plan.items));
  for (int64_t c = 0; c < plan.chunks(); ++c) {
    const auto [begin, end] = plan.range(c);
    std::string why;
    auto records = load_chunk(chunk_file(dir, c), c, end - begin, &why);
    if (!records)
      throw Error(fmt::format("{}: chunk {} of {} (rank {}'s) is {}", chunk_file(dir, c).string(), c, plan.chunks(),
                              c % std::max<int64_t>(world_size, 1), why));
    for (auto& r : *records) all.push_back(std::move(r));
  }
  return all;
}

}  // namespace mt
