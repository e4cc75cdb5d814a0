// Negative log-likelihood of target tokens given a prompt, in fp32: the signal the mutual filter
// and outside parity checks build on (`maintune score`).
#pragma once
#include <cstdint>
#include <vector>

#include "models/transformer.h"

namespace mt {

struct NllResult {
  double nll_sum = 0;
  int64_t n_tokens = 0;
  double nll_mean() const { return n_tokens > 0 ? nll_sum / static_cast<double>(n_tokens) : 0.0; }
};

struct ScoreRequest {
  std::vector<int64_t> prompt_ids, target_ids;
};

// Scores requests in batches of up to `batch_size` (right-padded; padding never attended to).
// Log-softmax is taken in fp32 whatever the weights' dtype. A request with no target tokens scores
// 0 over 0 tokens; prompt + target must be non-empty, within the vocabulary and the context.
std::vector<NllResult> score_nll(const Transformer& model, const std::vector<ScoreRequest>& requests,
                                 int64_t batch_size = 8);

}  // namespace mt
