// Batches for training: each epoch the examples are shuffled by a permutation that is a pure
// function of (seed, epoch) — splitmix64 and unbiased bounded draws, never std::shuffle — packed
// into rows, the rows shuffled again and dealt to ranks; a cursor (epoch, step) saved as JSON
// restores the exact batch sequence, or, at another world size or micro-batch size, continues the
// same epoch after the rows already consumed. Every rank computes the same plan and keeps its own rows.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/base/random.h"
#include "trainer/data/packing.h"

namespace mt {

struct LoaderOptions {
  int64_t seq_len = 2048;      // row length S (examples are at most this long: ExampleOptions::max_len)
  int64_t batch_size = 1;      // rows per batch (a micro-batch) B
  uint64_t seed = 0;
  bool shuffle = true;
  std::string packing = "first_fit";  // "first_fit" | "sequential" | "none" (one example per row)
  bool padding_free = false;   // flat [1, T] batches with cu_seqlens instead of padded [B, S]
  int64_t rank = 0, world_size = 1;
  int64_t pad_id = 0;          // input id of padding (never attended to, never a target)
};

// Where the loader stands: `step` batches of `epoch` have been handed out. The epoch's rows from
// position `row_base` on are the ones dealt to the ranks (0, except in the epoch a resume at
// another world size or micro-batch size landed in: there the rows before it were consumed before).
struct DataCursor {
  int64_t epoch = 0, step = 0, row_base = 0;
  bool operator==(const DataCursor& o) const { return epoch == o.epoch && step == o.step && row_base == o.row_base; }
};

// A permutation of 0..n-1 from (seed, epoch, stream) by Fisher-Yates with Lemire's unbiased
// bounded draws.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch, uint64_t stream);

// All rows of an epoch (example indices), in the order they are dealt, before sharding.
std::vector<std::vector<int64_t>> epoch_rows(const DatasetView& data, const LoaderOptions& options, int64_t epoch);

// Row positions of rank `rank`: rank, rank + W, ...; the last rows % W rows of the epoch are
// dropped so that every rank has the same number of rows and steps (as DistributedSampler with
// drop_last). With shuffling, which rows are dropped changes every epoch. Batch s of every rank
// holds rows k*W + r for k in [s*B, s*B + B): after s full batches on all ranks the rows consumed
// are the first s*B*W of the epoch, whatever W and B are (what resuming at another W or B uses).
std::vector<int64_t> shard_rows(int64_t num_rows, int64_t rank, int64_t world_size);

// The rows of an epoch that batches up to `cursor` consumed over all ranks, counted from the
// epoch's first row: row_base + min(step * B * W, the rows dealt), with `num_rows` rows in the
// epoch. mt::Error when the cursor does not fit the epoch.
int64_t rows_consumed(const DataCursor& cursor, int64_t num_rows, int64_t batch_size, int64_t world_size);

// The cursor at batch size B' and world size W' that continues after `consumed` rows of an epoch of
// `num_rows` rows (done: the old cursor had finished the epoch): the next epoch when nothing is
// left for W' ranks; (epoch, consumed / (B'W'), 0) when B'W' divides `consumed` (the cursor a run at
// B', W' would have had); else (epoch, 0, consumed): the rest of the epoch dealt to W' ranks.
DataCursor remap_cursor(int64_t epoch, int64_t consumed, bool done, int64_t num_rows, int64_t batch_size,
                        int64_t world_size);

class DataLoader {
 public:
  // `dataset_key` (the cache key) is saved with the cursor so that a different dataset is refused.
  // The memory behind `data` (a TokenCache or TokenizedDataset) must outlive the loader.
  DataLoader(DatasetView data, LoaderOptions options, std::string dataset_key = "");

  // The batch at the cursor; the cursor advances, rolling into the next epoch after the last step.
  // The last batch of an epoch may hold fewer rows (B' < B, the same B' on every rank).
  PackedBatch next();

  int64_t steps_per_epoch();  // batches per epoch per rank (this epoch's: packing varies slightly)
  DataCursor cursor() const { return cursor_; }

  // The cursor plus what it is only valid with (seed, world size, batch geometry, packing, dataset).
  // Rank-independent: rank 0 saves it, every rank restores the same.
  nlohmann::json state() const;
  // Restores state(); throws mt::Error naming the field that differs from this loader's setup. A
  // state saved at another world size or batch size continues the same epoch after the rows it had
  // consumed (remap_cursor): no row of the epoch twice, none skipped but the dropped remainder.
  void restore(const nlohmann::json& state);

 private:
  void plan();  // this rank's rows of the cursor's epoch, from its row_base
  DatasetView data_;
  LoaderOptions opt_;
  std::string key_;
  DataCursor cursor_;
  int64_t planned_epoch_ = -1, planned_base_ = 0;
  std::vector<std::vector<int64_t>> my_rows_;  // this rank's rows of planned_epoch_
};

}  // namespace mt
