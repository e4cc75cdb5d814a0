// Activation checkpointing: run a block without keeping its activations, and recompute it in the
// backward pass (the reentrant scheme of torch.utils.checkpoint). Applied per decoder layer from
// trainer/ through ForwardOptions::wrap_layer; the model code does not know about it.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>

namespace mt {

// Returns run(input) with gradients identical to calling run directly, keeping only `input` alive
// between forward and backward. Gradients of the tensors `run` captures (the layer's weights) are
// accumulated through a nested backward pass during the outer one, so `run` must be deterministic
// (no dropout here) and its captures must stay alive until backward. Without grad mode, or when
// `input` needs no grad, it is a plain call.
at::Tensor checkpointed(const std::function<at::Tensor(const at::Tensor&)>& run, const at::Tensor& input);

}  // namespace mt
