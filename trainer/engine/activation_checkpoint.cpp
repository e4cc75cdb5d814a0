// Activation checkpointing as a custom autograd function: forward under no-grad, backward
// recomputes the block with grad enabled from the saved input and runs a nested backward through it.
#include "trainer/engine/activation_checkpoint.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

namespace mt {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using BlockFn = std::function<at::Tensor(const at::Tensor&)>;

// The block travels to backward inside the context's saved data as a capsule.
struct BlockHolder : torch::CustomClassHolder {
  explicit BlockHolder(BlockFn f) : fn(std::move(f)) {}
  BlockFn fn;
};

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const BlockFn& run) {
    ctx->saved_data["block"] = c10::IValue::make_capsule(c10::make_intrusive<BlockHolder>(run));
    ctx->save_for_backward({input});
    return run(input);  // grad mode is off inside Function::forward: no activations are kept
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor saved = ctx->get_saved_variables()[0];
    auto holder = c10::static_intrusive_pointer_cast<BlockHolder>(ctx->saved_data["block"].toCapsule());
    at::Tensor x = saved.detach().requires_grad_(true);
    at::Tensor y;
    {
      c10::AutoGradMode enable(true);
      y = holder->fn(x);
    }
    // Accumulates into the captured weights' leaves (through any cast in between) and into x.grad.
    torch::autograd::backward({y}, {grads[0]});
    return {x.grad(), at::Tensor()};
  }
};

}  // namespace

at::Tensor checkpointed(const std::function<at::Tensor(const at::Tensor&)>& run, const at::Tensor& input) {
  if (!c10::GradMode::is_enabled() || !input.requires_grad()) return run(input);
  return CheckpointFunction::apply(input, run);
}

}  // namespace mt
