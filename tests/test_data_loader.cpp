// The data loader (trainer/data/data_loader.h): the epoch permutation is a fixed function of (seed,
// epoch) pinned by golden values; ranks get disjoint rows and equal step counts; a cursor saved
// after N batches and restored in a fresh loader continues with exactly the batches of an
// uninterrupted loader; a cursor restored at another world size or batch size continues the same
// epoch after the rows consumed (none twice, none skipped); mismatched cursors are refused; batch
// tensors have the documented types.
#include <ATen/ATen.h>

#include <map>
#include <numeric>
#include <random>
#include <set>

#include "trainer/data/data_loader.h"
#include "tests/test_util.h"

namespace {

mt::TokenizedDataset dataset(int n, int64_t max_len, uint64_t seed) {
  std::mt19937_64 rng(seed);  // only the test's data: any fixed values do
  mt::TokenizedDataset ds;
  for (int i = 0; i < n; ++i) {
    mt::TokenizedExample e;
    const int64_t len = 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(max_len - 1));
    for (int64_t t = 0; t < len; ++t) {
      e.ids.push_back(static_cast<uint32_t>(rng() % 1000));
      e.loss_mask.push_back(t >= len / 2 ? 1 : 0);
    }
    ds.add(e);
  }
  return ds;
}

bool same_batch(const mt::PackedBatch& a, const mt::PackedBatch& b) {
  return a.examples == b.examples && a.target_tokens == b.target_tokens && a.input_ids.equal(b.input_ids) &&
         a.positions.equal(b.positions) && a.doc_ids.equal(b.doc_ids) && a.valid.equal(b.valid) &&
         a.targets.equal(b.targets) && (a.cu_seqlens.defined() == b.cu_seqlens.defined()) &&
         (!a.cu_seqlens.defined() || a.cu_seqlens.equal(b.cu_seqlens));
}

}  // namespace

TEST_CASE("data: the epoch permutation is a fixed function of seed and epoch", "[data]") {
  // Golden values (also computed by an independent Python transcription of the same recipe):
  // splitmix64 + Lemire draws + Fisher-Yates give these on every machine and compiler.
  uint64_t s = 0;
  CHECK(mt::splitmix64(s) == 0xE220A8397B1DCDAFull);  // the published first output for seed 0
  CHECK(mt::epoch_permutation(10, 1234, 0, 0) == std::vector<int64_t>{4, 7, 0, 6, 5, 1, 9, 8, 2, 3});
  CHECK(mt::epoch_permutation(10, 1234, 1, 0) == std::vector<int64_t>{0, 9, 2, 5, 8, 6, 1, 4, 3, 7});
  CHECK(mt::epoch_permutation(10, 1235, 0, 0) != mt::epoch_permutation(10, 1234, 0, 0));
  CHECK(mt::epoch_permutation(10, 1234, 0, 1) != mt::epoch_permutation(10, 1234, 0, 0));
  auto p = mt::epoch_permutation(1000, 7, 3, 0);
  CHECK(std::set<int64_t>(p.begin(), p.end()).size() == 1000);
  CHECK(*std::min_element(p.begin(), p.end()) == 0);
  CHECK(*std::max_element(p.begin(), p.end()) == 999);
  CHECK(mt::epoch_permutation(0, 1, 0, 0).empty());
  CHECK(mt::epoch_permutation(1, 1, 0, 0) == std::vector<int64_t>{0});
}

TEST_CASE("data: ranks get disjoint rows and equal steps, the remainder rows are dropped", "[data]") {
  CHECK(mt::shard_rows(10, 0, 3) == std::vector<int64_t>{0, 3, 6});
  CHECK(mt::shard_rows(10, 2, 3) == std::vector<int64_t>{2, 5, 8});  // row 9 dropped
  mt::test::require_error([] { mt::shard_rows(10, 3, 3); }, {"rank 3 outside world size 3"});

  const auto ds = dataset(101, 64, 1);
  mt::LoaderOptions o;
  o.seq_len = 64;
  o.batch_size = 4;
  o.seed = 11;
  o.world_size = 3;
  const auto rows = mt::epoch_rows(ds.view(), o, 0);
  const auto R = static_cast<int64_t>(rows.size());
  std::multiset<int64_t> seen;
  std::vector<int64_t> steps;
  for (int64_t rank = 0; rank < 3; ++rank) {
    o.rank = rank;
    mt::DataLoader loader(ds.view(), o);
    steps.push_back(loader.steps_per_epoch());
    for (int64_t s = 0; s < steps.back(); ++s) {
      const auto b = loader.next();
      CHECK(b.input_ids.size(0) <= 4);
      for (const auto& row : b.examples) seen.insert(row.begin(), row.end());
    }
    CHECK(loader.cursor() == mt::DataCursor{0, steps.back()});
  }
  CHECK(steps[0] == steps[1]);
  CHECK(steps[1] == steps[2]);
  // Every example of the first R - R % 3 rows exactly once, those of the dropped rows never.
  std::multiset<int64_t> expected;
  for (int64_t r = 0; r < R - R % 3; ++r) expected.insert(rows[static_cast<size_t>(r)].begin(), rows[static_cast<size_t>(r)].end());
  CHECK(seen == expected);
  CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == seen.size());
}

TEST_CASE("data: a restored cursor continues with exactly the batches of an uninterrupted loader", "[data]") {
  const auto ds = dataset(57, 40, 2);
  for (const char* packing : {"first_fit", "sequential", "none"})
    for (bool flat : {false, true}) {
      INFO(packing << (flat ? " padding-free" : " padded"));
      mt::LoaderOptions o;
      o.seq_len = 48;
      o.batch_size = 3;
      o.seed = 99;
      o.packing = packing;
      o.padding_free = flat;
      o.world_size = 2;
      o.rank = 1;
      mt::DataLoader straight(ds.view(), o, "key-1");
      const int64_t per_epoch = straight.steps_per_epoch();
      const int64_t total = 3 * per_epoch + 2;  // crosses two epoch boundaries
      std::vector<mt::PackedBatch> want;
      for (int64_t i = 0; i < total; ++i) want.push_back(straight.next());
      // Epochs differ (reshuffled) but each is a full pass.
      CHECK(!same_batch(want[0], want[static_cast<size_t>(per_epoch)]));
      for (int64_t n : {int64_t{0}, int64_t{1}, per_epoch - 1, per_epoch, per_epoch + 1, 2 * per_epoch + 3}) {
        INFO("resume after " << n);
        mt::DataLoader first(ds.view(), o, "key-1");
        for (int64_t i = 0; i < n; ++i) first.next();
        const std::string saved = first.state().dump();  // through text, as a checkpoint stores it
        mt::DataLoader resumed(ds.view(), o, "key-1");
        resumed.restore(nlohmann::json::parse(saved));
        CHECK(resumed.cursor() == first.cursor());
        bool all_same = true;
        for (int64_t i = n; i < total; ++i) all_same = all_same && same_batch(resumed.next(), want[static_cast<size_t>(i)]);
        CHECK(all_same);
      }
    }
}

TEST_CASE("data: a cursor from another setup is refused with the field named", "[data]") {
  const auto ds = dataset(20, 16, 3);
  mt::LoaderOptions o;
  o.seq_len = 16;
  o.seed = 5;
  mt::DataLoader a(ds.view(), o, "key-a");
  a.next();
  const nlohmann::json state = a.state();
  CHECK(state["epoch"] == 0);
  CHECK(state["step"] == 1);
  auto refused = [&](mt::LoaderOptions other, const std::string& key, const std::string& field) {
    mt::DataLoader b(ds.view(), other, key);
    mt::test::require_error([&] { b.restore(state); }, {"data cursor: '" + field + "'", "cannot be resumed"});
  };
  mt::LoaderOptions other = o;
  other.seed = 6;
  refused(other, "key-a", "seed");
  other = o;
  other.packing = "none";
  refused(other, "key-a", "packing");
  refused(o, "key-b", "dataset_key");
  // The rank is not part of the cursor: every rank restores rank 0's.
  other = o;
  other.world_size = 1;
  mt::DataLoader b(ds.view(), other, "key-a");
  CHECK_NOTHROW(b.restore(state));

  nlohmann::json bad = state;
  bad.erase("seed");
  mt::test::require_error([&] { b.restore(bad); }, {"missing field 'seed'"});
  bad = state;
  bad["step"] = -1;
  mt::test::require_error([&] { b.restore(bad); }, {"'step' must be a non-negative integer"});
  bad = state;
  bad["step"] = 100000;
  mt::test::require_error([&] { b.restore(bad); }, {"past the"});
  mt::test::require_error([&] { b.restore(nlohmann::json::array()); }, {"expected a JSON object"});
  // Another world size or batch size: remapped (the next test), but the cursor must still fit.
  other = o;
  other.world_size = 2;
  mt::DataLoader two(ds.view(), other, "key-a");
  CHECK_NOTHROW(two.restore(state));
  mt::test::require_error([&] { two.restore(bad); }, {"data cursor: step 100000 is past the"});
  bad = state;
  bad["row_base"] = 100000;
  mt::test::require_error([&] { two.restore(bad); }, {"row_base 100000 is outside the"});
  bad["row_base"] = -2;
  mt::test::require_error([&] { two.restore(bad); }, {"'row_base' must be a non-negative integer"});
  bad = state;
  bad["world_size"] = 0;
  mt::test::require_error([&] { two.restore(bad); }, {"'world_size' must be a positive integer"});
  // A cursor saved before row_base existed restores as row_base 0.
  bad = state;
  bad.erase("row_base");
  mt::DataLoader one(ds.view(), o, "key-a");
  one.restore(bad);
  CHECK(one.cursor() == mt::DataCursor{0, 1, 0});
}

TEST_CASE("data: rows_consumed and remap_cursor map a cursor to another world size and batch size", "[data]") {
  // 10 rows, 2 ranks x 1: 5 steps; after 2 steps rows 0..3 are consumed.
  CHECK(mt::rows_consumed({0, 2, 0}, 10, 1, 2) == 4);
  CHECK(mt::rows_consumed({0, 5, 0}, 10, 1, 2) == 10);
  // 11 rows, 2 ranks x 2: 5 rows per rank (row 10 dropped), 3 steps, the last one partial.
  CHECK(mt::rows_consumed({0, 3, 0}, 11, 2, 2) == 10);
  CHECK(mt::rows_consumed({0, 2, 0}, 11, 2, 2) == 8);
  // From row_base 3: 7 rows left, 3 per rank at 2 ranks.
  CHECK(mt::rows_consumed({0, 1, 3}, 10, 2, 2) == 7);
  CHECK(mt::rows_consumed({0, 2, 3}, 10, 2, 2) == 9);
  mt::test::require_error([] { mt::rows_consumed({0, 6, 0}, 10, 1, 2); }, {"step 6 is past the 5 steps of epoch 0"});
  mt::test::require_error([] { mt::rows_consumed({0, 0, 11}, 10, 1, 2); }, {"row_base 11 is outside the 10 rows"});

  // B'W' divides the rows consumed: the cursor a run at B', W' has there.
  CHECK(mt::remap_cursor(0, 4, false, 10, 2, 1) == mt::DataCursor{0, 2, 0});
  CHECK(mt::remap_cursor(0, 4, false, 10, 1, 4) == mt::DataCursor{0, 1, 0});
  // It does not: the rest of the epoch from row 2, dealt to the new ranks.
  CHECK(mt::remap_cursor(0, 2, false, 10, 2, 2) == mt::DataCursor{0, 0, 2});
  // Nothing left for W' ranks (9 of 10 consumed, 2 ranks), or the old cursor finished its epoch.
  CHECK(mt::remap_cursor(0, 9, false, 10, 1, 2) == mt::DataCursor{1, 0, 0});
  CHECK(mt::remap_cursor(3, 8, true, 10, 1, 1) == mt::DataCursor{4, 0, 0});
  CHECK(mt::remap_cursor(0, 0, false, 10, 3, 3) == mt::DataCursor{0, 0, 0});
}

namespace {

// The position in epoch `epoch`'s order of every row (rows are disjoint: keyed by their first example).
std::map<int64_t, int64_t> row_positions(const mt::DatasetView& data, const mt::LoaderOptions& o, int64_t epoch) {
  std::map<int64_t, int64_t> at;
  const auto rows = mt::epoch_rows(data, o, epoch);
  for (size_t i = 0; i < rows.size(); ++i) at[rows[i].front()] = static_cast<int64_t>(i);
  return at;
}

// What the `world` ranks of a loader (restored from `state` unless it is null) consume in epoch
// `epoch`: per batch step, the sorted positions of the rows all ranks took; `steps` batches each,
// or (steps < 0) up to the end of the epoch. Also the state after (every rank's is the same).
struct Consumed {
  std::vector<std::vector<int64_t>> per_step;
  nlohmann::json state;
};

Consumed consume(const mt::DatasetView& data, mt::LoaderOptions o, int64_t world, int64_t batch,
                 const nlohmann::json& state, int64_t epoch, int64_t steps) {
  o.world_size = world;
  o.batch_size = batch;
  const auto at = row_positions(data, o, epoch);
  Consumed c;
  for (int64_t rank = 0; rank < world; ++rank) {
    o.rank = rank;
    mt::DataLoader loader(data, o, "key");
    if (!state.is_null()) loader.restore(state);
    const int64_t n = steps >= 0 ? steps
                      : loader.cursor().epoch == epoch ? loader.steps_per_epoch() - loader.cursor().step
                                                       : 0;
    for (int64_t s = 0; s < n; ++s) {
      const mt::PackedBatch b = loader.next();
      if (loader.cursor().epoch != epoch) continue;
      if (c.per_step.size() <= static_cast<size_t>(s)) c.per_step.resize(static_cast<size_t>(s) + 1);
      for (const auto& row : b.examples) c.per_step[static_cast<size_t>(s)].push_back(at.at(row.front()));
    }
    const nlohmann::json mine = loader.state();
    if (rank == 0) c.state = mine;
    CHECK(mine == c.state);
  }
  for (auto& step : c.per_step) std::sort(step.begin(), step.end());
  return c;
}

std::vector<int64_t> iota(int64_t from, int64_t to) {
  std::vector<int64_t> v(static_cast<size_t>(std::max<int64_t>(0, to - from)));
  std::iota(v.begin(), v.end(), from);
  return v;
}

}  // namespace

TEST_CASE("data: a cursor resumed at another world size or batch size consumes each row of the epoch once", "[data]") {
  const auto ds = dataset(57, 40, 5);
  mt::LoaderOptions o;
  o.seq_len = 48;
  o.seed = 21;
  const auto R = static_cast<int64_t>(mt::epoch_rows(ds.view(), o, 0).size());
  // The epoch's order does not depend on the world size, the rank or the batch size.
  for (int64_t w : {1, 2, 3})
    for (int64_t b : {1, 4}) {
      mt::LoaderOptions other = o;
      other.world_size = w;
      other.batch_size = b;
      other.rank = w - 1;
      CHECK(mt::epoch_rows(ds.view(), other, 0) == mt::epoch_rows(ds.view(), o, 0));
    }
  int64_t cases = 0, offset_cases = 0;
  for (int64_t w : {1, 2, 3})
    for (int64_t b : {1, 2, 3}) {
      const int64_t per_rank = R / w, steps = (per_rank + b - 1) / b;
      for (int64_t n : {int64_t{0}, int64_t{1}, steps / 2, steps - 1, steps})
        for (int64_t w2 : {1, 2, 4})
          for (int64_t b2 : {1, 2}) {
            INFO(w << " ranks x " << b << ", " << n << " of " << steps << " steps, resumed at " << w2 << " x " << b2);
            const Consumed before = consume(ds.view(), o, w, b, nullptr, 0, n);
            // Before: the first p rows of the epoch, in order, one block of B*W rows per step.
            std::vector<int64_t> flat;
            for (const auto& step : before.per_step) flat.insert(flat.end(), step.begin(), step.end());
            const int64_t p = static_cast<int64_t>(flat.size());
            CHECK(flat == iota(0, p));
            CHECK(p == std::min(n * b, per_rank) * w);
            const Consumed after = consume(ds.view(), o, w2, b2, before.state, 0, -1);
            // After: the rest of the epoch, in order, each step one block of B'*W' rows (the
            // last may be partial); what W' ranks cannot share equally is dropped, as a run at
            // W' drops it. Nothing when the old run had finished the epoch.
            const int64_t end = n == steps ? p : p + (R - p) / w2 * w2;
            int64_t next = p;
            for (const auto& step : after.per_step) {
              CHECK(step == iota(next, std::min(next + b2 * w2, end)));
              next += static_cast<int64_t>(step.size());
            }
            CHECK(next == end);
            // When B'W' divides p, the resumed loader is the one a run at W' x B' has there: its
            // state after the epoch is that of a never-interrupted run at W' x B'.
            const mt::DataCursor cursor{after.state["epoch"].get<int64_t>(), after.state["step"].get<int64_t>(),
                                        after.state["row_base"].get<int64_t>()};
            if (w2 == w && b2 == b) {
              CHECK(cursor == mt::DataCursor{0, steps, 0});  // the same geometry: the saved cursor as it was
            } else if (n == steps || (R - p) / w2 == 0) {
              CHECK(cursor == mt::DataCursor{1, 0, 0});
            } else if (p % (b2 * w2) == 0) {
              const Consumed straight = consume(ds.view(), o, w2, b2, nullptr, 0, -1);
              CHECK(after.state == straight.state);
            } else {
              CHECK(cursor.row_base == p);
              ++offset_cases;
            }
            ++cases;
          }
    }
  CHECK(cases == 3 * 3 * 5 * 3 * 2);
  CHECK(offset_cases > 0);
}

TEST_CASE("data: a resume at another world size after an epoch boundary, and one in the epoch it started", "[data]") {
  // 10 rows, no packing: 2 ranks x 1 row, accumulation 2 (4 rows per optimizer step). Step 3 takes
  // rows 8, 9 of epoch 0 and rows 0, 1 of epoch 1; resumed at 4 ranks x 1 (the same 4 rows per step),
  // step 4 takes rows 2..5 of epoch 1, as the 2-rank run does.
  const auto ds = dataset(10, 8, 6);
  mt::LoaderOptions o;
  o.seq_len = 8;
  o.packing = "none";
  o.seed = 4;
  const Consumed before = consume(ds.view(), o, 2, 1, nullptr, 1, 6);
  CHECK(before.state["epoch"] == 1);
  CHECK(before.state["step"] == 1);
  CHECK(before.per_step == std::vector<std::vector<int64_t>>{{}, {}, {}, {}, {}, {0, 1}});
  const Consumed four = consume(ds.view(), o, 4, 1, before.state, 1, 1);
  CHECK(four.per_step == std::vector<std::vector<int64_t>>{{2, 3, 4, 5}});
  CHECK(four.state["row_base"] == 2);
  CHECK(four.state["step"] == 1);
  // That cursor resumed again at 4 ranks continues exactly; at 2 ranks it maps back to step 3.
  const Consumed again = consume(ds.view(), o, 4, 1, four.state, 1, 1);
  CHECK(again.per_step == std::vector<std::vector<int64_t>>{{6, 7, 8, 9}});
  const Consumed two = consume(ds.view(), o, 2, 1, four.state, 1, -1);
  CHECK(two.per_step == std::vector<std::vector<int64_t>>{{6, 7}, {8, 9}});
  CHECK(two.state["row_base"] == 0);
  CHECK(two.state["step"] == 5);
}

TEST_CASE("data: batches carry the documented tensors, unshuffled order is the dataset order", "[data]") {
  const auto ds = dataset(10, 8, 4);
  mt::LoaderOptions o;
  o.seq_len = 8;
  o.batch_size = 4;
  o.shuffle = false;
  o.packing = "none";
  o.pad_id = 7;
  mt::DataLoader loader(ds.view(), o);
  CHECK(loader.steps_per_epoch() == 3);  // 4 + 4 + 2: the last batch is partial
  auto b = loader.next();
  CHECK(b.input_ids.sizes() == at::IntArrayRef({4, 8}));
  CHECK(b.input_ids.scalar_type() == at::kLong);
  CHECK(b.positions.scalar_type() == at::kLong);
  CHECK(b.doc_ids.scalar_type() == at::kLong);
  CHECK(b.valid.scalar_type() == at::kBool);
  CHECK(b.targets.scalar_type() == at::kLong);
  CHECK(b.examples == std::vector<std::vector<int64_t>>{{0}, {1}, {2}, {3}});
  CHECK(b.target_tokens == b.targets.ne(mt::kIgnoreIndex).sum().item<int64_t>());
  CHECK(b.input_ids.masked_select(b.valid.logical_not()).eq(7).all().item<bool>());
  loader.next();
  b = loader.next();
  CHECK(b.input_ids.size(0) == 2);
  CHECK(b.examples == std::vector<std::vector<int64_t>>{{8}, {9}});
  b = loader.next();  // the next epoch, same order without shuffling
  CHECK(loader.cursor() == mt::DataCursor{1, 1});
  CHECK(b.examples == std::vector<std::vector<int64_t>>{{0}, {1}, {2}, {3}});

  mt::test::require_error([&] { mt::DataLoader(mt::DatasetView{}, o); }, {"no examples"});
  o.packing = "greedy";
  mt::test::require_error([&] { mt::DataLoader(ds.view(), o); }, {"\"greedy\""});
  o.packing = "none";
  o.world_size = 20;  // 10 rows cannot feed 20 ranks
  mt::DataLoader starved(ds.view(), o);
  mt::test::require_error([&] { starved.next(); }, {"fewer than the world size 20"});
}
