// Resumable chunked work (trainer/method/chunk_progress.h): finished chunks are never recomputed, a
// damaged chunk is, rank sharding plus the merge equals one rank's result, and chunks of another
// plan are refused.
#include <fstream>

#include "trainer/method/chunk_progress.h"
#include "tests/test_util.h"

namespace {

using nlohmann::json;

// Item i's record: a function of i only, as generation with per-chunk seeds is.
mt::ChunkFn square_records(int64_t* calls) {
  return [calls](int64_t begin, int64_t end, int64_t) {
    ++*calls;
    std::vector<json> out;
    for (int64_t i = begin; i < end; ++i) out.push_back({{"i", i}, {"sq", i * i}, {"x", 0.1 * static_cast<double>(i)}});
    return out;
  };
}

}  // namespace

TEST_CASE("chunks: computed once, merged in item order, skipped on a rerun", "[chunk_progress]") {
  const auto dir = mt::test::temp_dir("chunks") / "work";
  const mt::ChunkPlan plan{10, 3, "k"};
  REQUIRE(plan.chunks() == 4);
  REQUIRE(plan.range(3) == std::make_pair<int64_t, int64_t>(9, 10));
  int64_t calls = 0;
  REQUIRE(mt::run_chunks(dir, plan, 0, 1, square_records(&calls)) == 4);
  REQUIRE(calls == 4);
  const auto all = mt::read_chunks(dir, plan);
  REQUIRE(all.size() == 10);
  for (int64_t i = 0; i < 10; ++i) {
    REQUIRE(all[static_cast<size_t>(i)]["sq"] == i * i);
    REQUIRE(all[static_cast<size_t>(i)]["x"].get<double>() == 0.1 * static_cast<double>(i));  // doubles round-trip exactly
  }
  REQUIRE(mt::run_chunks(dir, plan, 0, 1, square_records(&calls)) == 0);
  REQUIRE(calls == 4);
}

TEST_CASE("chunks: a kill loses only the chunk in flight - the result equals an uninterrupted run", "[chunk_progress]") {
  const auto root = mt::test::temp_dir("chunks_kill");
  const mt::ChunkPlan plan{25, 4, "k"};
  int64_t calls = 0;
  mt::run_chunks(root / "straight", plan, 0, 1, square_records(&calls));
  // A run that dies in its third chunk (an exception stands in for the kill).
  int64_t n = 0;
  auto dying = [&](int64_t b, int64_t e, int64_t c) -> std::vector<json> {
    if (++n == 3) throw std::runtime_error("killed");
    return square_records(&calls)(b, e, c);
  };
  REQUIRE_THROWS(mt::run_chunks(root / "killed", plan, 0, 1, dying));
  int64_t resumed_calls = 0;
  REQUIRE(mt::run_chunks(root / "killed", plan, 0, 1, square_records(&resumed_calls)) == plan.chunks() - 2);
  REQUIRE(mt::read_chunks(root / "killed", plan) == mt::read_chunks(root / "straight", plan));
}

TEST_CASE("chunks: rank-sharded work merges to the one-rank result", "[chunk_progress]") {
  const auto root = mt::test::temp_dir("chunks_ranks");
  const mt::ChunkPlan plan{23, 4, "k"};
  int64_t calls = 0;
  mt::run_chunks(root / "one", plan, 0, 1, square_records(&calls));
  int64_t c0 = 0, c1 = 0, c2 = 0;
  // Rank 1 runs first: its chunks do not depend on rank 0's plan file.
  REQUIRE(mt::run_chunks(root / "three", plan, 1, 3, square_records(&c1)) == 2);  // chunks 1, 4
  // Before every rank is done, the merge names the missing chunk and its rank.
  mt::test::require_error([&] { mt::read_chunks(root / "three", plan, 3); }, {"chunk 0 of 6", "rank 0", "missing"});
  REQUIRE(mt::run_chunks(root / "three", plan, 0, 3, square_records(&c0)) == 2);  // 0, 3
  REQUIRE(mt::run_chunks(root / "three", plan, 2, 3, square_records(&c2)) == 2);  // 2, 5
  REQUIRE(mt::read_chunks(root / "three", plan, 3) == mt::read_chunks(root / "one", plan));
}

TEST_CASE("chunks: damaged chunk files are recomputed, never trusted", "[chunk_progress]") {
  const auto dir = mt::test::temp_dir("chunks_damaged") / "w";
  const mt::ChunkPlan plan{8, 4, "k"};
  int64_t calls = 0;
  mt::run_chunks(dir, plan, 0, 1, square_records(&calls));
  const auto good = mt::read_chunks(dir, plan);
  const auto file = dir / "chunk_000001.jsonl";
  const std::string text = mt::test::read_file(file);
  SECTION("truncated (no trailer)") { mt::test::write_file(file, text.substr(0, text.size() / 2)); }
  SECTION("a record changed to garbage") { mt::test::write_file(file, "{oops\n" + text.substr(text.find('\n') + 1)); }
  SECTION("empty") { mt::test::write_file(file, ""); }
  mt::test::require_error([&] { mt::read_chunks(dir, plan); }, {"chunk_000001.jsonl", "chunk 1 of 2"});
  calls = 0;
  REQUIRE(mt::run_chunks(dir, plan, 0, 1, square_records(&calls)) == 1);
  REQUIRE(mt::read_chunks(dir, plan) == good);
}

TEST_CASE("chunks: a folder made under another plan is refused", "[chunk_progress]") {
  const auto dir = mt::test::temp_dir("chunks_plan") / "w";
  int64_t calls = 0;
  mt::run_chunks(dir, {8, 4, "model-a"}, 0, 1, square_records(&calls));
  mt::test::require_error([&] { mt::run_chunks(dir, {8, 4, "model-b"}, 0, 1, square_records(&calls)); },
                          {"plan.json", "other inputs", "remove the folder"});
  mt::test::require_error([&] { mt::run_chunks(dir, {8, 2, "model-a"}, 0, 1, square_records(&calls)); },
                          {"plan.json"});
  mt::test::write_file(dir / "plan.json", "not json");
  mt::test::require_error([&] { mt::read_chunks(dir, {8, 4, "model-a"}); }, {"plan.json", "not valid JSON"});
  mt::test::require_error([&] { mt::run_chunks(dir, {8, 4, "k"}, 2, 2, square_records(&calls)); }, {"rank 2 of world size 2"});
}
