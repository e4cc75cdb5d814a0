// Forward/backward over an accumulation window with the token-mean loss, or the source-weighted
// one (see train_step.h).
#include "trainer/engine/train_step.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/autograd.h>

#include "models/error.h"
#include "trainer/engine/activation_checkpoint.h"
#include "trainer/engine/cross_entropy.h"
#include "trainer/engine/mixed_precision.h"

namespace mt {
namespace {

// The last hidden states of a batch as [B * S, H] rows, on the model's device.
at::Tensor batch_hidden_rows(const Transformer& model, const PackedBatch& batch, const StepOptions& options) {
  const at::Device device = model.embed.device();
  ForwardOptions fwd;
  if (options.activation_checkpointing)
    fwd.wrap_layer = [](size_t, const at::Tensor& h, const std::function<at::Tensor(const at::Tensor&)>& run) {
      return checkpointed(run, h);
    };
  fwd.plain_causal = options.plain_causal;
  at::Tensor hidden = options.plain_causal
                          ? transformer_hidden(model, batch.input_ids.to(device), batch.positions.to(device), {},
                                               nullptr, {}, fwd)
                          : transformer_hidden(model, batch.input_ids.to(device), batch.positions.to(device),
                                               batch.valid.to(device), nullptr, batch.doc_ids.to(device), fwd);
  return hidden.reshape({-1, hidden.size(-1)});
}

// Summed token losses of the given rows. Only rows with a target reach the LM head: prompts and
// padding never become logits.
at::Tensor rows_loss_sum(const Transformer& model, const at::Tensor& hidden_rows, const at::Tensor& targets,
                         const at::Tensor& rows, const StepOptions& options) {
  const at::Tensor h = hidden_rows.index_select(0, rows);
  return chunked_linear_cross_entropy(h, model.lm_head, targets.index_select(0, rows), options.loss_chunk_tokens);
}

}  // namespace

SourceScales source_loss_scales(const SourceWeights& w) {
  if (!(w.alpha >= 0 && w.alpha <= 1))
    throw Error(fmt::format("source-weighted loss: alpha (training.synthetic_weight) must be in [0, 1], got {}",
                            w.alpha));
  if (w.real_target_tokens < 0 || w.synthetic_target_tokens < 0)
    throw Error(fmt::format("source-weighted loss: negative target counts (real {}, synthetic {})",
                            w.real_target_tokens, w.synthetic_target_tokens));
  const auto n_real = static_cast<double>(w.real_target_tokens);
  const auto n_syn = static_cast<double>(w.synthetic_target_tokens);
  SourceScales s;
  if (w.real_target_tokens > 0 && w.synthetic_target_tokens > 0) {
    s.real = (1.0 - w.alpha) / n_real;
    s.synthetic = w.alpha / n_syn;
  } else if (w.real_target_tokens > 0) {
    s.real = 1.0 / n_real;  // nothing synthetic in the window: alpha has no term to weight
  } else if (w.synthetic_target_tokens > 0) {
    s.synthetic = 1.0 / n_syn;
  }
  return s;
}

at::Tensor batch_loss_sum(const Transformer& model, const PackedBatch& batch, const StepOptions& options) {
  const at::Device device = model.embed.device();
  const at::Tensor hidden = batch_hidden_rows(model, batch, options);
  const at::Tensor targets = batch.targets.reshape({-1}).to(device);
  const at::Tensor rows = (targets != kIgnoreIndex).nonzero().squeeze(1);
  return rows_loss_sum(model, hidden, targets, rows, options);
}

namespace {

// The loss sums of real and synthetic targets from a batch's hidden rows.
SourceLossSums loss_sums_by_source(const Transformer& model, const at::Tensor& hidden, const at::Tensor& targets,
                                   const PackedBatch& batch, const StepOptions& options) {
  const at::Device device = hidden.device();
  const at::Tensor is_target = targets != kIgnoreIndex;
  const at::Tensor synthetic = batch.synthetic.defined() ? batch.synthetic.reshape({-1}).to(device)
                                                         : at::zeros_like(is_target);
  if (synthetic.numel() != targets.numel())
    throw Error(fmt::format("batch_loss_sums_by_source: synthetic has {} elements, targets {}", synthetic.numel(),
                            targets.numel()));
  auto sum_over = [&](const at::Tensor& select) {
    const at::Tensor rows = select.nonzero().squeeze(1);
    // An empty subset skips the LM head (no chunk to run): a zero that needs no gradient.
    if (rows.numel() == 0) return at::zeros({}, hidden.options().dtype(at::kFloat));
    return rows_loss_sum(model, hidden, targets, rows, options);
  };
  SourceLossSums out;
  out.real = sum_over(is_target & synthetic.logical_not());
  out.synthetic = sum_over(is_target & synthetic);
  return out;
}

}  // namespace

SourceLossSums batch_loss_sums_by_source(const Transformer& model, const PackedBatch& batch,
                                         const StepOptions& options) {
  const at::Tensor hidden = batch_hidden_rows(model, batch, options);
  return loss_sums_by_source(model, hidden, batch.targets.reshape({-1}).to(hidden.device()), batch, options);
}

at::Tensor alignment_signal(const Transformer& model, const AlignmentDocs& docs, const at::Tensor& target_nll,
                            const at::Tensor& response_hidden, const std::string& signal, int64_t chunk_rows) {
  c10::NoGradGuard no_grad;
  const at::Device device = target_nll.device();
  const at::Tensor pair = docs.target_pair.to(device);
  const at::Tensor loglik = -target_nll.to(at::kDouble);
  const auto n = docs.pairs;
  auto per_pair_sum = [&](const at::Tensor& values, const at::Tensor& index) {
    return at::zeros({n}, values.options()).index_add_(0, index, values);
  };
  if (signal == "forward") {
    const at::Tensor count = per_pair_sum(at::ones_like(loglik), pair);
    return (per_pair_sum(loglik, pair) / count).to(at::kFloat);
  }
  if (signal != "pmi") throw Error(fmt::format("alignment.signal must be pmi or forward, got '{}'", signal));
  // Conditional: the response's tokens after its first. Unconditional: the response alone, each
  // position predicting the next.
  const at::Tensor later = docs.target_first.to(device).logical_not();
  const at::Tensor cond = per_pair_sum(loglik.masked_select(later), pair.masked_select(later));
  const at::Tensor valid = docs.valid.narrow(0, n, n).to(device);
  const int64_t len = valid.size(1);
  at::Tensor uncond = at::zeros({n}, loglik.options());
  at::Tensor tokens = valid.to(at::kLong).sum(1);
  if (len > 1) {
    const at::Tensor has_next = valid.narrow(1, 1, len - 1);  // position t predicts t + 1
    const at::Tensor rows = has_next.reshape({-1}).nonzero().squeeze(1);
    if (rows.numel() > 0) {
      const at::Tensor h = response_hidden.narrow(1, 0, len - 1).reshape({-1, response_hidden.size(-1)}).index_select(0, rows);
      const at::Tensor next = docs.ids.narrow(0, n, n).narrow(1, 1, len - 1).to(device).reshape({-1}).index_select(0, rows);
      const at::Tensor nll = linear_cross_entropy_rows(h.to(model.lm_head.scalar_type()), model.lm_head, next, chunk_rows);
      uncond = per_pair_sum(-nll.to(at::kDouble), at::floor_divide(rows, len - 1));
    }
  }
  const at::Tensor pmi = (cond - uncond) / (tokens - 1).to(at::kDouble);
  return at::where(tokens > 1, pmi, at::full_like(pmi, std::nan(""))).to(at::kFloat);
}

WindowResult forward_backward(const Transformer& master, const std::vector<PackedBatch>& micro_batches,
                              int64_t global_target_tokens, const StepOptions& options,
                              const SourceWeights& weights, const AlignmentTerms& alignment) {
  WindowResult out;
  // Checked before any work, so that a bad alpha fails at the first step and not in the middle.
  const SourceScales scales = weights.enabled() ? source_loss_scales(weights) : SourceScales{};
  const double scale = global_target_tokens > 0 ? 1.0 / static_cast<double>(global_target_tokens) : 0.0;
  // The pairs of each micro-batch first: each micro-batch's alignment terms weigh by its share.
  const bool align = alignment.enabled();
  std::vector<AlignmentDocs> docs(micro_batches.size());
  int64_t window_pairs = 0;
  if (align)
    for (size_t i = 0; i < micro_batches.size(); ++i) {
      docs[i] = alignment_docs_from_batch(micro_batches[i]);
      if (docs[i].pairs >= 2) window_pairs += docs[i].pairs;
    }
  for (size_t mb = 0; mb < micro_batches.size(); ++mb) {
    const PackedBatch& batch = micro_batches[mb];
    out.valid_tokens += batch.valid.sum().item<int64_t>();
    out.real_target_tokens += batch.target_tokens - batch.synthetic_target_tokens;
    out.synthetic_target_tokens += batch.synthetic_target_tokens;
    if (batch.target_tokens == 0) continue;
    // A fresh compute view per micro-batch: its casts are graph nodes that backward consumes.
    const Transformer model = compute_view(master, options.compute_dtype);
    const bool align_here = align && docs[mb].pairs >= 2;
    // The SFT hidden states of this micro-batch; with alignment they also give the pairs' forward
    // likelihoods (read before the backward pass frees them).
    const at::Device device = model.embed.device();
    const at::Tensor hidden = batch_hidden_rows(model, batch, options);
    const at::Tensor targets = batch.targets.reshape({-1}).to(device);
    at::Tensor target_nll;
    if (align_here && alignment.lambda_cons > 0) {
      const at::Tensor rows = docs[mb].target_rows.to(device);
      target_nll = linear_cross_entropy_rows(hidden.detach().index_select(0, rows), model.lm_head.detach(),
                                             targets.index_select(0, rows), options.loss_chunk_tokens);
    }
    if (!weights.enabled()) {
      const at::Tensor rows = (targets != kIgnoreIndex).nonzero().squeeze(1);
      at::Tensor loss_sum = rows_loss_sum(model, hidden, targets, rows, options);
      out.loss_sum += loss_sum.item<double>();
      torch::autograd::backward({loss_sum * scale});
    } else {
      const SourceLossSums sums = loss_sums_by_source(model, hidden, targets, batch, options);
      const double real = sums.real.item<double>(), synthetic = sums.synthetic.item<double>();
      out.loss_sum_real += real;
      out.loss_sum_synthetic += synthetic;
      out.loss_sum += real + synthetic;
      // Terms of weight 0 (alpha 0 or 1) stay out of the graph: 0 * an infinite loss would be NaN.
      at::Tensor loss;
      auto add = [&](const at::Tensor& sum, double factor) {
        if (factor == 0 || !sum.requires_grad()) return;
        loss = loss.defined() ? loss + sum * factor : sum * factor;
      };
      add(sums.real, scales.real);
      add(sums.synthetic, scales.synthetic);
      if (loss.defined()) torch::autograd::backward({loss});
    }
    if (!align_here) continue;
    // The alignment pass: instructions and responses as documents of their own, through a fresh
    // compute view (the SFT graph is consumed).
    const AlignmentDocs& d = docs[mb];
    const Transformer view = compute_view(master, options.compute_dtype);
    ForwardOptions fwd;
    if (options.activation_checkpointing)
      fwd.wrap_layer = [](size_t, const at::Tensor& h, const std::function<at::Tensor(const at::Tensor&)>& run) {
        return checkpointed(run, h);
      };
    const PairEncoding enc = encode_pairs(view, *alignment.scorer, d, fwd);
    const at::Tensor logits = alignment_logits(enc.instruction, enc.response, alignment.scorer->logit_scale);
    const at::Tensor infonce = infonce_loss(logits);
    at::Tensor consistency;
    if (alignment.lambda_cons > 0) {
      const at::Tensor signal = alignment_signal(view, d, target_nll, enc.response_hidden.detach(), alignment.signal,
                                                 options.loss_chunk_tokens);
      consistency = rank_consistency_loss(logits.diagonal(), signal) + direction_agreement_loss(logits);
    }
    const double share = static_cast<double>(d.pairs) / static_cast<double>(window_pairs);
    at::Tensor loss;
    if (alignment.lambda_align > 0) loss = infonce * alignment.lambda_align;
    if (consistency.defined()) loss = loss.defined() ? loss + consistency * alignment.lambda_cons
                                                     : consistency * alignment.lambda_cons;
    torch::autograd::backward({loss * share});
    const auto n = static_cast<double>(d.pairs);
    const InBatchStats stats = in_batch_stats(logits);
    out.align_pairs += d.pairs;
    out.infonce_sum += infonce.item<double>() * n;
    if (consistency.defined()) out.consistency_sum += consistency.item<double>() * n;
    out.retrieval_hits += stats.retrieval_hits;
    out.score_gap_sum += stats.score_gap * n;
  }
  return out;
}

}  // namespace mt
