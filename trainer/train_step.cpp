// Forward/backward over an accumulation window with the token-mean loss (see train_step.h).
#include "trainer/train_step.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include "trainer/activation_checkpoint.h"
#include "trainer/cross_entropy.h"
#include "trainer/mixed_precision.h"

namespace mt {

at::Tensor batch_loss_sum(const Transformer& model, const PackedBatch& batch, const StepOptions& options) {
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
  // Only rows with a target reach the LM head: prompts and padding never become logits.
  at::Tensor targets = batch.targets.reshape({-1}).to(device);
  at::Tensor rows = (targets != kIgnoreIndex).nonzero().squeeze(1);
  at::Tensor h = hidden.reshape({-1, hidden.size(-1)}).index_select(0, rows);
  return chunked_linear_cross_entropy(h, model.lm_head, targets.index_select(0, rows), options.loss_chunk_tokens);
}

WindowResult forward_backward(const Transformer& master, const std::vector<PackedBatch>& micro_batches,
                              int64_t global_target_tokens, const StepOptions& options) {
  WindowResult out;
  const double scale = global_target_tokens > 0 ? 1.0 / static_cast<double>(global_target_tokens) : 0.0;
  for (const PackedBatch& batch : micro_batches) {
    out.valid_tokens += batch.valid.sum().item<int64_t>();
    if (batch.target_tokens == 0) continue;
    // A fresh compute view per micro-batch: its casts are graph nodes that backward consumes.
    const Transformer model = compute_view(master, options.compute_dtype);
    at::Tensor loss_sum = batch_loss_sum(model, batch, options);
    out.loss_sum += loss_sum.item<double>();
    torch::autograd::backward({loss_sum * scale});
  }
  return out;
}

}  // namespace mt
