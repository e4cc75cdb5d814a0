// One optimizer step's forward and backward passes over an accumulation window of micro-batches.
// The loss is the mean over every unmasked target token of the whole window (and, with several
// ranks, of all ranks' windows): each micro-batch backpropagates its token-loss sum divided by the
// window's total, so 1 micro-batch of 8 and 8 micro-batches of 1 give the same gradients.
// With source weights (the MAIN method's alpha, training.synthetic_weight) the loss is instead
// alpha * mean CE of the synthetic-source targets + (1 - alpha) * mean CE of the real targets, each
// mean over the whole window: micro-batches backpropagate their two sums scaled by the window's
// per-kind counts, which keeps the same accumulation invariance.
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

// The source-weighted loss of one window: alpha and the window's target counts per kind over all
// ranks (PackedBatch::synthetic tells the kinds apart). alpha < 0 (the default) is off: the plain
// token mean, computed exactly as without this option.
struct SourceWeights {
  double alpha = -1.0;
  int64_t real_target_tokens = 0;       // the window's, over all ranks
  int64_t synthetic_target_tokens = 0;  // the window's, over all ranks
  bool enabled() const { return alpha >= 0; }
};

// Per-token factors of the weighted loss: loss = real * (sum of real token losses) + synthetic *
// (sum of synthetic token losses), i.e. (1 - alpha) / n_real and alpha / n_synthetic. A window with
// targets of only one kind gives that kind weight 1; with none, both are 0. Throws mt::Error for an
// alpha outside [0, 1] or negative counts.
struct SourceScales {
  double real = 0, synthetic = 0;
};
SourceScales source_loss_scales(const SourceWeights& weights);

// Sum of the token losses of one batch (fp32 0-dim tensor) through the chunked linear +
// cross-entropy; differentiable when grad mode is on. `model` is the compute view.
at::Tensor batch_loss_sum(const Transformer& model, const PackedBatch& batch, const StepOptions& options);

// The same sum split by source kind: real targets and synthetic ones (batch.synthetic), from one
// forward pass and two chunked cross-entropy calls over the two row subsets.
struct SourceLossSums {
  at::Tensor real, synthetic;  // fp32 0-dim each
};
SourceLossSums batch_loss_sums_by_source(const Transformer& model, const PackedBatch& batch,
                                         const StepOptions& options);

struct WindowResult {
  double loss_sum = 0;      // this rank's summed token losses
  int64_t valid_tokens = 0; // this rank's non-padding input tokens (for tokens/s)
  // This rank's target counts by kind (always), and summed token losses by kind (only with source
  // weights on; the plain path computes the total alone).
  int64_t real_target_tokens = 0, synthetic_target_tokens = 0;
  double loss_sum_real = 0, loss_sum_synthetic = 0;
};

// Forward + backward of every micro-batch of the window; gradients accumulate into the master
// weights' .grad (not cleared here). `global_target_tokens` is the window's target count over all
// ranks; `weights`, when enabled, switches to the source-weighted loss (see SourceWeights).
WindowResult forward_backward(const Transformer& master, const std::vector<PackedBatch>& micro_batches,
                              int64_t global_target_tokens, const StepOptions& options,
                              const SourceWeights& weights = {});

}  // namespace mt
