// NLL scoring (see score.h): sequences prompt + target are right-padded into a batch; the logits
// at position t predict token t + 1, and only target positions are summed.
#include "models/score.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "models/error.h"

namespace mt {

std::vector<NllResult> score_nll(const Transformer& model, const std::vector<ScoreRequest>& requests,
                                 int64_t batch_size) {
  const ModelConfig& c = model.config;
  std::vector<NllResult> results(requests.size());
  if (batch_size <= 0) throw Error("score batch size must be positive");
  for (size_t r = 0; r < requests.size(); ++r) {
    const auto& q = requests[r];
    const size_t total = q.prompt_ids.size() + q.target_ids.size();
    if (q.prompt_ids.empty() && !q.target_ids.empty())
      throw Error(fmt::format("request {}: the prompt is empty; the first target token needs a context (add BOS)", r));
    if (static_cast<int64_t>(total) > c.max_position_embeddings)
      throw Error(fmt::format("request {}: {} tokens exceed max_position_embeddings {}", r, total,
                              c.max_position_embeddings));
    for (const auto* ids : {&q.prompt_ids, &q.target_ids})
      for (int64_t id : *ids)
        if (id < 0 || id >= c.vocab_size)
          throw Error(fmt::format("request {}: token id {} is outside the vocabulary [0, {})", r, id, c.vocab_size));
  }
  const auto device = model.embed.device();
  for (size_t first = 0; first < requests.size(); first += static_cast<size_t>(batch_size)) {
    const size_t last = std::min(requests.size(), first + static_cast<size_t>(batch_size));
    int64_t S = 1;
    for (size_t r = first; r < last; ++r)
      S = std::max<int64_t>(S, static_cast<int64_t>(requests[r].prompt_ids.size() + requests[r].target_ids.size()));
    const int64_t B = static_cast<int64_t>(last - first);
    at::Tensor ids = at::zeros({B, S}, at::kLong), pos = at::zeros({B, S}, at::kLong);
    at::Tensor valid = at::zeros({B, S}, at::kBool);
    at::Tensor target = at::full({B, S}, -1, at::kLong);  // target[b, t]: the token logits[b, t] predict
    // Accessors write in place; `ids[b][t] = x` would build a Tensor view per element.
    auto ids_a = ids.accessor<int64_t, 2>(), pos_a = pos.accessor<int64_t, 2>();
    auto target_a = target.accessor<int64_t, 2>();
    auto valid_a = valid.accessor<bool, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const auto& q = requests[first + static_cast<size_t>(b)];
      std::vector<int64_t> seq = q.prompt_ids;
      seq.insert(seq.end(), q.target_ids.begin(), q.target_ids.end());
      const int64_t P = static_cast<int64_t>(q.prompt_ids.size());
      for (int64_t t = 0; t < static_cast<int64_t>(seq.size()); ++t) {
        ids_a[b][t] = seq[static_cast<size_t>(t)];
        pos_a[b][t] = t;
        valid_a[b][t] = true;
        if (t >= P) target_a[b][t - 1] = seq[static_cast<size_t>(t)];
      }
    }
    at::Tensor hidden = transformer_hidden(model, ids.to(device), pos.to(device), valid.to(device));
    // Project only the positions that predict a target token, a chunk of rows at a time, so a
    // 128k vocabulary never needs [B, S, V] fp32 logits.
    at::Tensor mask = target >= 0;
    at::Tensor rows = mask.nonzero().select(1, 0);  // batch row of each selected position
    at::Tensor h = hidden.index({mask.to(device)});
    at::Tensor tgt = target.index({mask}).to(device);
    at::Tensor nll = at::empty({h.size(0)}, at::kDouble);
    constexpr int64_t kChunk = 1024;
    for (int64_t i = 0; i < h.size(0); i += kChunk) {
      const int64_t n = std::min(kChunk, h.size(0) - i);
      at::Tensor logp = transformer_logits(model, h.narrow(0, i, n)).to(at::kFloat).log_softmax(-1);
      nll.narrow(0, i, n).copy_(-logp.gather(-1, tgt.narrow(0, i, n).unsqueeze(-1)).squeeze(-1).to(at::kDouble).cpu());
    }
    // Sum in double so long targets don't lose precision.
    at::Tensor sums = at::zeros({B}, at::kDouble).index_add_(0, rows, nll);
    at::Tensor counts = mask.sum(-1);
    for (int64_t b = 0; b < B; ++b) {
      results[first + static_cast<size_t>(b)].nll_sum = sums[b].item<double>();
      results[first + static_cast<size_t>(b)].n_tokens = counts[b].item<int64_t>();
    }
  }
  return results;
}

}  // namespace mt
