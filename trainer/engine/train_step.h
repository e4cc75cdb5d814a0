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

#include <string>
#include <vector>

#include "models/transformer.h"
#include "trainer/engine/alignment.h"
#include "trainer/data/packing.h"

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

// The alignment scorer's terms (trainer/engine/alignment.h): lambda_align * L_infonce + lambda_cons *
// L_consistency, each micro-batch's terms over its own pairs (in-batch negatives) and weighted by
// its share of the window's pairs. Off (nothing computed, exactly the plain loss) unless a scorer
// is given and a weight is positive.
struct AlignmentTerms {
  const AlignmentScorer* scorer = nullptr;  // fp32 leaves beside the master weights
  double lambda_align = 0, lambda_cons = 0;
  std::string signal = "pmi";  // the consistency target: "pmi" | "forward" (docs/method.md)
  bool enabled() const { return scorer != nullptr && scorer->defined() && (lambda_align > 0 || lambda_cons > 0); }
};

// The per-pair likelihood signal of a micro-batch's pairs (no gradient): "forward" is the mean
// log-likelihood of the response given the instruction; "pmi" is the pointwise mutual information
// per token, (log p(R | I) - log p(R)) / (|R| - 1) over the response's tokens after its first, with
// log p(R) from the response encoded alone (NaN for one-token responses). `target_nll` holds the
// batch's per-row NLLs at docs.target_rows; `response_hidden` the response documents' states.
at::Tensor alignment_signal(const Transformer& model, const AlignmentDocs& docs, const at::Tensor& target_nll,
                            const at::Tensor& response_hidden, const std::string& signal, int64_t chunk_rows);

struct WindowResult {
  double loss_sum = 0;      // this rank's summed token losses
  int64_t valid_tokens = 0; // this rank's non-padding input tokens (for tokens/s)
  // This rank's target counts by kind (always), and summed token losses by kind (only with source
  // weights on; the plain path computes the total alone).
  int64_t real_target_tokens = 0, synthetic_target_tokens = 0;
  double loss_sum_real = 0, loss_sum_synthetic = 0;
  // Alignment terms (when on): pairs with in-batch negatives, and pair-weighted sums of the terms,
  // of in-batch top-1 retrieval hits (instruction -> response) and of the score gap (mean score of
  // the true pairs minus the mean over the other pairs).
  int64_t align_pairs = 0;
  double infonce_sum = 0, consistency_sum = 0, retrieval_hits = 0, score_gap_sum = 0;
};

// Forward + backward of every micro-batch of the window; gradients accumulate into the master
// weights' .grad (not cleared here). `global_target_tokens` is the window's target count over all
// ranks; `weights`, when enabled, switches to the source-weighted loss (see SourceWeights).
WindowResult forward_backward(const Transformer& master, const std::vector<PackedBatch>& micro_batches,
                              int64_t global_target_tokens, const StepOptions& options,
                              const SourceWeights& weights = {}, const AlignmentTerms& alignment = {});

}  // namespace mt
