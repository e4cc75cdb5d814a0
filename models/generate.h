// Batched text generation with a KV cache: prompts of different lengths (left-padded, with their
// own position ids), greedy or seeded sampling (temperature, top-k, top-p), stop token ids and a
// max-new-tokens limit.
#pragma once
#include <cstdint>
#include <vector>

#include "models/transformer.h"

namespace mt {

struct SamplingConfig {
  bool greedy = true;
  double temperature = 1.0;
  int64_t top_k = 0;     // 0: off
  double top_p = 1.0;    // 1: off
  uint64_t seed = 0;
  int64_t max_new_tokens = 32;
  std::vector<int64_t> stop_ids;  // generation of a sequence ends after it emits one of these
};

// Returns the new tokens of each prompt (the stop token, when reached, is included last).
// Prompts must be non-empty with ids in [0, vocab). Deterministic for a given seed and batch.
std::vector<std::vector<int64_t>> generate(const Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const SamplingConfig& sampling);

// Filters logits [B, V] (fp32) as HF's warpers do, in this order: temperature, top-k, top-p.
// Removed entries become -inf.
at::Tensor filter_logits(const at::Tensor& logits, const SamplingConfig& sampling);

}  // namespace mt
