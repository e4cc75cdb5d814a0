// RMSNorm reference in ATen ops (any device, autograd capable) and the dispatch that picks the
// fused CUDA kernel for inference on the GPU. The reference is the definition the kernel is
// tested against.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "kernels/dispatch.h"

namespace mt::kernels {

at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor h = x.to(at::kFloat);
  at::Tensor var = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(var + eps);
  return weight * h.to(x.scalar_type());
}

bool cuda_kernels_compiled() {
#ifdef MAINTUNE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
#ifdef MAINTUNE_WITH_CUDA
  const bool needs_grad = at::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad());
  if (x.is_cuda() && !needs_grad && x.scalar_type() == weight.scalar_type()) return rms_norm_cuda(x, weight, eps);
#endif
  return rms_norm_reference(x, weight, eps);
}

}  // namespace mt::kernels
