// The eval split and the evaluation pass of a training run (see evaluation.h).
#include "trainer/loop/evaluation.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>

#include "trainer/engine/mixed_precision.h"

namespace mt {

std::pair<TokenizedDataset, TokenizedDataset> split_eval(const DatasetView& data, double fraction, uint64_t seed) {
  TokenizedDataset train, eval;
  for (int64_t i = 0; i < data.num_examples; ++i) {
    uint64_t state = seed ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(i + 1));
    const double u = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
    TokenizedExample e;
    const uint64_t a = data.offsets[i], b = data.offsets[i + 1];
    e.ids.assign(data.tokens + a, data.tokens + b);
    e.loss_mask.assign(data.masks + a, data.masks + b);
    (u < fraction ? eval : train).add(e);
  }
  return {std::move(train), std::move(eval)};
}

EvalResult evaluate(const Transformer& master, const DatasetView& data, LoaderOptions options, int64_t max_batches,
                    const StepOptions& step_options, const DistEnv& dist, const AlignmentScorer* scorer) {
  c10::NoGradGuard no_grad;
  options.shuffle = false;
  DataLoader loader(data, options);
  const Transformer model = compute_view(master, step_options.compute_dtype);
  int64_t batches = loader.steps_per_epoch();
  if (max_batches > 0) batches = std::min(batches, max_batches);
  at::Tensor sums = at::zeros({5}, at::kDouble);
  for (int64_t i = 0; i < batches; ++i) {
    PackedBatch b = loader.next();
    if (b.target_tokens == 0) continue;
    sums[0] += batch_loss_sum(model, b, step_options).item<double>();
    sums[1] += static_cast<double>(b.target_tokens);
    if (scorer == nullptr) continue;
    const AlignmentDocs docs = alignment_docs_from_batch(b);
    if (docs.pairs < 2) continue;
    const PairEncoding e = encode_pairs(model, *scorer, docs);
    const InBatchStats stats = in_batch_stats(alignment_logits(e.instruction, e.response, scorer->logit_scale));
    const auto n = static_cast<double>(docs.pairs);
    sums[2] += n;
    sums[3] += stats.retrieval_hits;
    sums[4] += stats.score_gap * n;
  }
  all_reduce_sum(dist, sums, "the evaluation sums");
  EvalResult r;
  r.tokens = static_cast<int64_t>(sums[1].item<double>());
  r.loss = r.tokens > 0 ? sums[0].item<double>() / static_cast<double>(r.tokens) : std::nan("");
  if (sums[2].item<double>() > 0) {
    r.align_acc = sums[3].item<double>() / sums[2].item<double>();
    r.score_gap = sums[4].item<double>() / sums[2].item<double>();
  }
  return r;
}

}  // namespace mt
