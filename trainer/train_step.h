// One optimizer step's forward and backward passes over an accumulation window of micro-batches.
// The loss is the mean over every unmasked target token of the whole window (and, with several
// ranks, of all ranks' windows): each micro-batch backpropagates its token-loss sum divided by the
// window's total, so 1 micro-batch of 8 and 8 micro-batches of 1 give the same gradients.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "models/transformer.h"
#include "trainer/packing.h"

namespace mt {

struct StepOptions {
  at::ScalarType compute_dtype = at::kFloat;
  bool activation_checkpointing = false;
  int64_t loss_chunk_tokens = 4096;
  // Rows are single full documents without padding (benchmarks): causal attention without a mask.
  bool plain_causal = false;
};

// Sum of the token losses of one batch (fp32 0-dim tensor) through the chunked linear +
// cross-entropy; differentiable when grad mode is on. `model` is the compute view.
at::Tensor batch_loss_sum(const Transformer& model, const PackedBatch& batch, const StepOptions& options);

struct WindowResult {
  double loss_sum = 0;      // this rank's summed token losses
  int64_t valid_tokens = 0; // this rank's non-padding input tokens (for tokens/s)
};

// Forward + backward of every micro-batch of the window; gradients accumulate into the master
// weights' .grad (not cleared here). `global_target_tokens` is the window's target count over all ranks.
WindowResult forward_backward(const Transformer& master, const std::vector<PackedBatch>& micro_batches,
                              int64_t global_target_tokens, const StepOptions& options);

}  // namespace mt
