// Packing tokenized examples into fixed-length rows (first-fit, sequential, or one per row), then
// batch tensors: positions restarting at 0 per document, document ids for document-aware attention,
// next-token targets that never cross a document, padding at row ends (valid = false, ignored);
// or the padding-free flat layout with cu_seqlens for varlen attention.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/examples.h"

namespace mt {

constexpr int64_t kIgnoreIndex = -100;  // target of a token that is not trained on (as in cross_entropy)

// Targets of one document of len tokens: out[t] = ids[t+1] when mask[t+1] is non-zero, else
// kIgnoreIndex; out[len-1] = kIgnoreIndex (no next token in this document). When `synthetic` is
// given, synthetic[t] = (mask[t+1] == kMaskSyntheticTarget), false where out[t] is ignored.
void document_targets(const uint32_t* ids, const uint8_t* mask, int64_t len, int64_t* out, bool* synthetic = nullptr);

// Groups examples, given in order by their lengths, into rows of at most max_len tokens; returns
// for each row the positions in `lengths` it holds, in order. Modes: "first_fit" (each example into
// the first row with room, O(n log n)), "sequential" (a new row when the next example does not fit),
// "none" (one example per row). An example longer than max_len (or empty) is an mt::Error: the
// length policy runs before packing.
std::vector<std::vector<int64_t>> pack_rows(const std::vector<int64_t>& lengths, int64_t max_len,
                                            const std::string& mode);

// A batch ready for transformer_hidden(model, input_ids, positions, valid, nullptr, doc_ids).
struct PackedBatch {
  at::Tensor input_ids;  // [B, S] int64 (padding: pad_id)
  at::Tensor positions;  // [B, S] int64, 0.. per document (padding: 0)
  at::Tensor doc_ids;    // [B, S] int64, 0.. per row (padded layout) or per batch (flat); padding -1
  at::Tensor valid;      // [B, S] bool, false on padding
  at::Tensor targets;    // [B, S] int64, kIgnoreIndex where not trained on
  // [B, S] bool: the target at this position is a synthetic source's (loss mask 2 at t + 1); the
  // source-weighted loss splits targets by it. Undefined (hand-made batches) reads as all false.
  at::Tensor synthetic;
  // Flat (padding-free) layout only: B = 1, S = tokens in the batch, documents back to back.
  at::Tensor cu_seqlens;  // [documents + 1] int32, document start offsets then the total
  int64_t max_seqlen = 0;
  int64_t target_tokens = 0;                  // targets != kIgnoreIndex
  int64_t synthetic_target_tokens = 0;        // of which synthetic (synthetic == true)
  std::vector<std::vector<int64_t>> examples;  // example indices of each row
};

// Rows of example indices into a [rows, seq_len] batch padded at the end of each row.
PackedBatch make_padded_batch(const DatasetView& data, const std::vector<std::vector<int64_t>>& rows,
                              int64_t seq_len, int64_t pad_id = 0);

// The same examples as one flat [1, T] row without padding, with cu_seqlens.
PackedBatch make_flat_batch(const DatasetView& data, const std::vector<std::vector<int64_t>>& rows);

}  // namespace mt
