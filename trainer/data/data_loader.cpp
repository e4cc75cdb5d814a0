// Deterministic shuffling, packing per epoch, rank sharding and the saveable cursor (see
// data_loader.h).
#include "trainer/data/data_loader.h"

#include <fmt/format.h>

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

void DataLoader::plan(int64_t epoch) {
  if (planned_epoch_ == epoch) return;
  std::vector<std::vector<int64_t>> rows = epoch_rows(data_, opt_, epoch);
  const std::vector<int64_t> mine = shard_rows(static_cast<int64_t>(rows.size()), opt_.rank, opt_.world_size);
  if (mine.empty())
    throw Error(fmt::format("data loader: epoch {} packs into {} rows, fewer than the world size {}", epoch,
                            rows.size(), opt_.world_size));
  my_rows_.clear();
  for (int64_t r : mine) my_rows_.push_back(std::move(rows[static_cast<size_t>(r)]));
  planned_epoch_ = epoch;
}

int64_t DataLoader::steps_per_epoch() {
  plan(cursor_.epoch);
  const auto rows = static_cast<int64_t>(my_rows_.size());
  return (rows + opt_.batch_size - 1) / opt_.batch_size;
}

PackedBatch DataLoader::next() {
  if (cursor_.step >= steps_per_epoch()) cursor_ = {cursor_.epoch + 1, 0};
  plan(cursor_.epoch);
  const auto begin = static_cast<size_t>(cursor_.step * opt_.batch_size);
  const size_t end = std::min(my_rows_.size(), begin + static_cast<size_t>(opt_.batch_size));
  const std::vector<std::vector<int64_t>> rows(my_rows_.begin() + static_cast<std::ptrdiff_t>(begin),
                                               my_rows_.begin() + static_cast<std::ptrdiff_t>(end));
  ++cursor_.step;
  return opt_.padding_free ? make_flat_batch(data_, rows) : make_padded_batch(data_, rows, opt_.seq_len, opt_.pad_id);
}

json DataLoader::state() const {
  return json{{"epoch", cursor_.epoch},
              {"step", cursor_.step},
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
  for (auto it = mine.begin(); it != mine.end(); ++it) {
    if (!s.contains(it.key())) throw Error(fmt::format("data cursor: missing field '{}'", it.key()));
    if (it.key() == "epoch" || it.key() == "step") continue;
    if (s[it.key()] != it.value())
      throw Error(fmt::format("data cursor: '{}' was {} when saved, this run has {}; the batch sequence cannot be "
                              "resumed exactly",
                              it.key(), s[it.key()].dump(), it.value().dump()));
  }
  for (const char* k : {"epoch", "step"})
    if (!s[k].is_number_integer() || s[k].get<int64_t>() < 0)
      throw Error(fmt::format("data cursor: '{}' must be a non-negative integer, got {}", k, s[k].dump()));
  cursor_ = {s["epoch"].get<int64_t>(), s["step"].get<int64_t>()};
  if (cursor_.step > steps_per_epoch())
    throw Error(fmt::format("data cursor: step {} is past the {} steps of epoch {}", cursor_.step, steps_per_epoch(),
                            cursor_.epoch));
}

}  // namespace mt
