// KV-cache generation (see generate.h). Prompts are left-padded into one batch; padding slots carry
// key position -1 so no query sees them, and each row's positions count from 0 at its first real
// token, so a batched run gives each prompt exactly what it would get alone.
#include "models/generate.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>

#include "models/error.h"

namespace mt {

at::Tensor filter_logits(const at::Tensor& logits_in, const SamplingConfig& s) {
  at::Tensor logits = logits_in.to(at::kFloat);
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (s.temperature != 1.0) logits = logits / s.temperature;
  if (s.top_k > 0 && s.top_k < logits.size(-1)) {
    // Keep every entry >= the k-th largest (ties at the threshold are kept, as HF does).
    at::Tensor kth = std::get<0>(at::topk(logits, s.top_k, -1)).narrow(-1, s.top_k - 1, 1);
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (s.top_p < 1.0) {
    // HF TopPLogitsWarper: sort ascending, drop the low tail whose cumulative mass <= 1 - top_p,
    // always keeping at least the most likely token.
    auto [sorted, idx] = at::sort(logits, -1, /*descending=*/false);
    at::Tensor cum = sorted.softmax(-1).cumsum(-1);
    at::Tensor remove_sorted = cum <= (1.0 - s.top_p);
    remove_sorted.narrow(-1, remove_sorted.size(-1) - 1, 1).fill_(false);
    at::Tensor remove = remove_sorted.scatter(-1, idx, remove_sorted);
    logits = logits.masked_fill(remove, neg_inf);
  }
  return logits;
}

std::vector<std::vector<int64_t>> generate(const Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
                                           const SamplingConfig& s) {
  const ModelConfig& c = model.config;
  const int64_t B = static_cast<int64_t>(prompts.size());
  std::vector<std::vector<int64_t>> out(prompts.size());
  if (B == 0 || s.max_new_tokens <= 0) return out;
  if (!s.greedy && s.temperature <= 0) throw Error("sampling needs temperature > 0 (use greedy decoding instead)");
  if (s.top_p <= 0 || s.top_p > 1) throw Error(fmt::format("top_p must be in (0, 1], got {}", s.top_p));
  int64_t max_len = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    if (prompts[b].empty()) throw Error(fmt::format("prompt {} is empty", b));
    for (int64_t id : prompts[b])
      if (id < 0 || id >= c.vocab_size)
        throw Error(fmt::format("prompt {}: token id {} is outside the vocabulary [0, {})", b, id, c.vocab_size));
    max_len = std::max<int64_t>(max_len, static_cast<int64_t>(prompts[b].size()));
  }
  const int64_t longest_total = max_len + s.max_new_tokens;
  if (longest_total > c.max_position_embeddings)
    throw Error(fmt::format("prompt length {} + max_new_tokens {} exceeds max_position_embeddings {}", max_len,
                            s.max_new_tokens, c.max_position_embeddings));

  // Left-pad: row b's prompt occupies the last len_b slots of the first max_len.
  at::Tensor ids = at::zeros({B, max_len}, at::kLong);
  at::Tensor pos = at::zeros({B, max_len}, at::kLong);
  at::Tensor valid = at::zeros({B, max_len}, at::kBool);
  std::vector<int64_t> next_pos(static_cast<size_t>(B));
  // Accessors write in place; `ids[b][t] = x` would build a Tensor view per element.
  auto ids_a = ids.accessor<int64_t, 2>(), pos_a = pos.accessor<int64_t, 2>();
  auto valid_a = valid.accessor<bool, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const int64_t len = static_cast<int64_t>(p.size()), pad = max_len - len;
    for (int64_t t = 0; t < len; ++t) {
      ids_a[b][pad + t] = p[static_cast<size_t>(t)];
      pos_a[b][pad + t] = t;
      valid_a[b][pad + t] = true;
    }
    next_pos[static_cast<size_t>(b)] = len;
  }
  const auto device = model.embed.device();
  KVCache cache = make_kv_cache(model, B, longest_total);
  at::Tensor hidden = transformer_hidden(model, ids.to(device), pos.to(device), valid.to(device), &cache);
  at::Tensor last = transformer_logits(model, hidden.narrow(1, max_len - 1, 1)).squeeze(1);

  at::Generator gen = at::detail::createCPUGenerator(s.seed);
  std::vector<bool> done(static_cast<size_t>(B), false);
  for (int64_t step = 0; step < s.max_new_tokens; ++step) {
    at::Tensor logits = last.to(at::kFloat).cpu();
    at::Tensor next;
    if (s.greedy) {
      next = logits.argmax(-1);
    } else {
      at::Tensor probs = filter_logits(logits, s).softmax(-1);
      next = at::multinomial(probs, 1, /*replacement=*/false, gen).squeeze(-1);
    }
    auto next_acc = next.accessor<int64_t, 1>();
    bool all_done = true;
    at::Tensor step_ids = at::zeros({B, 1}, at::kLong), step_pos = at::zeros({B, 1}, at::kLong);
    at::Tensor step_valid = at::zeros({B, 1}, at::kBool);
    auto step_ids_a = step_ids.accessor<int64_t, 2>(), step_pos_a = step_pos.accessor<int64_t, 2>();
    auto step_valid_a = step_valid.accessor<bool, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const size_t bi = static_cast<size_t>(b);
      if (done[bi]) continue;
      const int64_t tok = next_acc[b];
      out[bi].push_back(tok);
      if (std::find(s.stop_ids.begin(), s.stop_ids.end(), tok) != s.stop_ids.end()) {
        done[bi] = true;
        continue;
      }
      step_ids_a[b][0] = tok;
      step_pos_a[b][0] = next_pos[bi]++;
      step_valid_a[b][0] = true;
      all_done = false;
    }
    if (all_done || step + 1 == s.max_new_tokens) break;
    // Finished rows still occupy a slot; it is marked invalid so no query ever sees it.
    hidden = transformer_hidden(model, step_ids.to(device), step_pos.to(device), step_valid.to(device), &cache);
    last = transformer_logits(model, hidden).squeeze(1);
  }
  return out;
}

}  // namespace mt
