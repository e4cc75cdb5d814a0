// Forward/backward over an accumulation window with the token-mean loss, or the source-weighted
// one (see train_step.h).
#include "trainer/train_step.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/autograd.h>

#include "models/error.h"
#include "trainer/activation_checkpoint.h"
#include "trainer/cross_entropy.h"
#include "trainer/mixed_precision.h"

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

SourceLossSums batch_loss_sums_by_source(const Transformer& model, const PackedBatch& batch,
                                         const StepOptions& options) {
  const at::Device device = model.embed.device();
  const at::Tensor hidden = batch_hidden_rows(model, batch, options);
  const at::Tensor targets = batch.targets.reshape({-1}).to(device);
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

WindowResult forward_backward(const Transformer& master, const std::vector<PackedBatch>& micro_batches,
                              int64_t global_target_tokens, const StepOptions& options,
                              const SourceWeights& weights) {
  WindowResult out;
  // Checked before any work, so that a bad alpha fails at the first step and not in the middle.
  const SourceScales scales = weights.enabled() ? source_loss_scales(weights) : SourceScales{};
  const double scale = global_target_tokens > 0 ? 1.0 / static_cast<double>(global_target_tokens) : 0.0;
  for (const PackedBatch& batch : micro_batches) {
    out.valid_tokens += batch.valid.sum().item<int64_t>();
    out.real_target_tokens += batch.target_tokens - batch.synthetic_target_tokens;
    out.synthetic_target_tokens += batch.synthetic_target_tokens;
    if (batch.target_tokens == 0) continue;
    // A fresh compute view per micro-batch: its casts are graph nodes that backward consumes.
    const Transformer model = compute_view(master, options.compute_dtype);
    if (!weights.enabled()) {
      at::Tensor loss_sum = batch_loss_sum(model, batch, options);
      out.loss_sum += loss_sum.item<double>();
      torch::autograd::backward({loss_sum * scale});
      continue;
    }
    const SourceLossSums sums = batch_loss_sums_by_source(model, batch, options);
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
  return out;
}

}  // namespace mt
