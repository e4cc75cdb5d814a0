// The one dispatch header of kernels/: each fused op has a CPU reference (plain ATen ops, autograd
// capable) and, where CUDA is compiled in, a fused CUDA kernel used for tensors on the GPU that
// need no gradient. Callers use only these functions.
#pragma once
#include <ATen/core/Tensor.h>

namespace mt::kernels {

// RMSNorm as HF LLaMA computes it: y = weight * (x_fp32 * rsqrt(mean(x_fp32^2) + eps)).to(x.dtype).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// The CPU/autograd reference, callable directly by tests.
at::Tensor rms_norm_reference(const at::Tensor& x, const at::Tensor& weight, double eps);

// True when this build has the CUDA kernels compiled in.
bool cuda_kernels_compiled();

#ifdef MAINTUNE_WITH_CUDA
at::Tensor rms_norm_cuda(const at::Tensor& x, const at::Tensor& weight, double eps);
#endif

}  // namespace mt::kernels
