// AdamW with decoupled weight decay (none on norms and biases: every tensor with fewer than two
// dimensions), on ATen's fused kernel (at::_fused_adamw_, CPU and CUDA) or a plain per-tensor
// reference; its state as named tensors for checkpoints; and global-norm gradient clipping.
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mt {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0;
  bool fused = true;
};

// True for parameters that get no weight decay (fewer than 2 dims: norms, biases).
bool is_no_decay_param(const at::Tensor& param);

class AdamW {
 public:
  // `params`: named leaf tensors that require grad (the fp32 master weights, or bf16 ones in pure
  // bf16). State (exp_avg, exp_avg_sq) has each parameter's dtype and device.
  AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions options);

  // One update with learning rate `lr` from each parameter's .grad() (parameters without a grad
  // are left alone); increments step().
  void step(double lr);
  int64_t step() const { return step_; }

  // State for checkpoints: "exp_avg.<name>", "exp_avg_sq.<name>" (CPU copies are the caller's job)
  // and the metadata (step, options) as JSON.
  std::map<std::string, at::Tensor> state_tensors() const;
  nlohmann::json state_meta() const;
  // Restores both; checks that every parameter's state is present with its shape, and that the
  // options match (a changed beta/eps/weight decay is an error). Errors are mt::Error naming `source`.
  void load_state(const std::map<std::string, at::Tensor>& tensors, const nlohmann::json& meta,
                  const std::string& source);

 private:
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
  AdamWOptions options_;
  int64_t step_ = 0;
};

// Global L2 norm of all gradients, accumulated in fp32 (as torch.nn.utils.clip_grad_norm_);
// when max_norm > 0 and the norm exceeds it, every grad is scaled by max_norm / (norm + 1e-6).
// Returns the norm before clipping (NaN/Inf when a gradient is not finite; grads are then left alone).
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace mt
