// Deterministic shuffling, packing per epoch, rank sharding and the saveable cursor, remapped on
// restore at another world size or batch size (see data_loader.h).
#include "trainer/data/data_loader.h"

#include <fmt/format.h>

#include <set>

#include "models/error.h"

namespace mt {

using json = nlohmann::json;

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch, uint64_t stream) {
  // Mix the three inputs through splitmix64 so that nearby seeds/epochs give unrelated streams.
  uint64_t s = seed;
  uint64_t state = splitmix64(s);
  state ^= static_cast<uint64_t>(epoch) * 0xD1B54A32D192ED03ull;
  state = splitmix64(state);
  state ^= stream * 0x8CB92BA72F3D8DD7ull;
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(bounded_draw(state, static_cast<uint64_t>(i + 1)));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  return perm;
}

std::vector<std::vector<int64_t>> epoch_rows(const DatasetView& data, const LoaderOptions& o, int64_t epoch) {
  const int64_t n = data.num_examples;
  std::vector<int64_t> order(static_cast<size_t>(n));
  if (o.shuffle) {
    order = epoch_permutation(n, o.seed, epoch, 0);
  } else {
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  }
  std::vector<int64_t> lengths(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lengths[static_cast<size_t>(i)] = data.length(order[static_cast<size_t>(i)]);
  std::vector<std::vector<int64_t>> rows = pack_rows(lengths, o.seq_len, o.packing);
  for (auto& row : rows)
    for (auto& e : row) e = order[static_cast<size_t>(e)];
  if (o.shuffle && o.packing == "first_fit") {
    // First-fit fills early rows with early examples' neighbours; deal the rows in a fresh order.
    const auto perm = epoch_permutation(static_cast<int64_t>(rows.size()), o.seed, epoch, 1);
    std::vector<std::vector<int64_t>> shuffled;
    shuffled.reserve(rows.size());
    for (int64_t p : perm) shuffled.push_back(std::move(rows[static_cast<size_t>(p)]));
    rows = std::move(shuffled);
  }
  return rows;
}

std::vector<int64_t> shard_rows(int64_t num_rows, int64_t rank, int64_t world_size) {
  if (world_size < 1 || rank < 0 || rank >= world_size)
    throw Error(fmt::format("data loader: rank {} outside world size {}", rank, world_size));
  std::vector<int64_t> mine;
  const int64_t per_rank = num_rows / world_size;
  for (int64_t k = 0; k < per_rank; ++k) mine.push_back(k * world_size + rank);
  return mine;
}

DataLoader::DataLoader(DatasetView data, LoaderOptions options, std::string dataset_key)
    : data_(data), opt_(std::move(options)), key_(std::move(dataset_key)) {
  if (data_.num_examples <= 0) throw Error("data loader: the dataset has no examples");
  if (opt_.seq_len < 2) throw Error(fmt::format("data loader: seq_len must be at least 2, got {}", opt_.seq_len));
  if (opt_.batch_size < 1)
    throw Error(fmt::format("data loader: batch_size must be at least 1, got {}", opt_.batch_size));
  shard_rows(0, opt_.rank, opt_.world_size);  // checks rank / world size
  pack_rows({}, opt_.seq_len, opt_.packing);  // checks the packing mode
}

void DataLoader::plan() {
  const int64_t epoch = cursor_.epoch, base = cursor_.row_base;
  if (planned_epoch_ == epoch && planned_base_ == base) return;
  std::vector<std::vector<int64_t>> rows = epoch_rows(data_, opt_, epoch);
  const auto num_rows = static_cast<int64_t>(rows.size());
  if (base > num_rows)
    throw Error(fmt::format("data cursor: row_base {} is past the {} rows of epoch {}", base, num_rows, epoch));
  const std::vector<int64_t> mine = shard_rows(num_rows - base, opt_.rank, opt_.world_size);
  if (mine.empty() && base == 0)
    throw Error(fmt::format("data loader: epoch {} packs into {} rows, fewer than the world size {}", epoch,
                            rows.size(), opt_.world_size));
  my_rows_.clear();
  for (int64_t r : mine) my_rows_.push_back(std::move(rows[static_cast<size_t>(base + r)]));
  planned_epoch_ = epoch;
  planned_base_ = base;
}

int64_t DataLoader::steps_per_epoch() {
  plan();
  const auto rows = static_cast<int64_t>(my_rows_.size());
  return (rows + opt_.batch_size - 1) / opt_.batch_size;
}

PackedBatch DataLoader::next() {
  if (cursor_.step >= steps_per_epoch()) cursor_ = {cursor_.epoch + 1, 0, 0};
  plan();
  const auto begin = static_cast<size_t>(cursor_.step * opt_.batch_size);
  const size_t end = std::min(my_rows_.size(), begin + static_cast<size_t>(opt_.batch_size));
  const std::vector<std::vector<int64_t>> rows(my_rows_.begin() + static_cast<std::ptrdiff_t>(begin),
                                               my_rows_.begin() + static_cast<std::ptrdiff_t>(end));
  ++cursor_.step;
  return opt_.padding_free ? make_flat_batch(data_, rows) : make_padded_batch(data_, rows, opt_.seq_len, opt_.pad_id);
}

int64_t rows_consumed(const DataCursor& c, int64_t num_rows, int64_t batch_size, int64_t world_size) {
  if (c.row_base < 0 || c.row_base > num_rows)
    throw Error(fmt::format("data cursor: row_base {} is outside the {} rows of epoch {}", c.row_base, num_rows,
                            c.epoch));
  const int64_t per_rank = (num_rows - c.row_base) / world_size;  // shard_rows drops the rest
  const int64_t steps = (per_rank + batch_size - 1) / batch_size;
  if (c.step < 0 || c.step > steps)
    throw Error(fmt::format("data cursor: step {} is past the {} steps of epoch {}", c.step, steps, c.epoch));
  return c.row_base + std::min(c.step * batch_size, per_rank) * world_size;
}

DataCursor remap_cursor(int64_t epoch, int64_t consumed, bool done, int64_t num_rows, int64_t batch_size,
                        int64_t world_size) {
  // Nothing left for world_size ranks (the rest is this world size's dropped remainder): the
  // epoch is over, as it is for the old cursor when `done` (its own remainder was dropped).
  if (done || (num_rows - consumed) / world_size == 0) return {epoch + 1, 0, 0};
  const int64_t rows_per_step = batch_size * world_size;
  if (consumed % rows_per_step == 0) return {epoch, consumed / rows_per_step, 0};
  return {epoch, 0, consumed};
}

json DataLoader::state() const {
  return json{{"epoch", cursor_.epoch},
              {"step", cursor_.step},
              {"row_base", cursor_.row_base},
              {"seed", opt_.seed},
              {"shuffle", opt_.shuffle},
              {"world_size", opt_.world_size},
              {"batch_size", opt_.batch_size},
              {"seq_len", opt_.seq_len},
              {"packing", opt_.packing},
              {"padding_free", opt_.padding_free},
              {"num_examples", data_.num_examples},
              {"dataset_key", key_}};
}

void DataLoader::restore(const json& s) {
  if (!s.is_object()) throw Error("data cursor: expected a JSON object");
  const json mine = state();
  // The cursor itself, and the geometry a different resumed run may change (remapped below).
  const std::set<std::string> cursor_fields = {"epoch", "step", "row_base", "world_size", "batch_size"};
  for (auto it = mine.begin(); it != mine.end(); ++it) {
    if (it.key() == "row_base") continue;  // absent from cursors saved before it existed: 0
    if (!s.contains(it.key())) throw Error(fmt::format("data cursor: missing field '{}'", it.key()));
    if (cursor_fields.count(it.key()) != 0) continue;
    if (s[it.key()] != it.value())
      throw Error(fmt::format("data cursor: '{}' was {} when saved, this run has {}; the batch sequence cannot be "
                              "resumed exactly",
                              it.key(), s[it.key()].dump(), it.value().dump()));
  }
  auto integer = [&](const char* k, int64_t least, int64_t fallback) {
    if (!s.contains(k)) return fallback;
    if (!s[k].is_number_integer() || s[k].get<int64_t>() < least)
      throw Error(fmt::format("data cursor: '{}' must be a {} integer, got {}", k, least > 0 ? "positive" : "non-negative",
                              s[k].dump()));
    return s[k].get<int64_t>();
  };
  const DataCursor saved{integer("epoch", 0, 0), integer("step", 0, 0), integer("row_base", 0, 0)};
  const int64_t world = integer("world_size", 1, 1), batch = integer("batch_size", 1, 1);
  if (world == opt_.world_size && batch == opt_.batch_size) {
    // The same geometry: exactly the saved cursor.
    cursor_ = saved;
    planned_epoch_ = -1;
    if (cursor_.step > steps_per_epoch())
      throw Error(fmt::format("data cursor: step {} is past the {} steps of epoch {}", cursor_.step,
                              steps_per_epoch(), cursor_.epoch));
    return;
  }
  // Another world size or micro-batch size: the epoch's order does not depend on either, and the
  // rows consumed so far are a prefix of it; continue after that prefix.
  const auto num_rows = static_cast<int64_t>(epoch_rows(data_, opt_, saved.epoch).size());
  const int64_t consumed = rows_consumed(saved, num_rows, batch, world);
  const bool done = consumed == saved.row_base + (num_rows - saved.row_base) / world * world;
  cursor_ = remap_cursor(saved.epoch, consumed, done, num_rows, opt_.batch_size, opt_.world_size);
  planned_epoch_ = -1;
}

}  // namespace mt
