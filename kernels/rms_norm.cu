// Fused RMSNorm forward on CUDA: one block per row, fp32 accumulation of the mean square, the
// normalized row rounded to the input dtype before the weight multiply (exactly HF's order).
// Used for inference; training goes through the autograd reference in rms_norm_reference.cpp.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels/dispatch.h"

namespace mt::kernels {
namespace {

template <typename T>
__global__ void rms_norm_kernel(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y,
                                int64_t cols, float eps) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * cols;
  T* yr = y + row * cols;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const float v = static_cast<float>(xr[i]);
    sum += v * v;
  }
  // Block reduction: warp shuffles, then one value per warp through shared memory.
  __shared__ float warp_sums[32];
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = sum;
  __syncthreads();
  if (warp == 0) {
    const int nwarps = (blockDim.x + 31) / 32;
    sum = lane < nwarps ? warp_sums[lane] : 0.f;
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane == 0) warp_sums[0] = sum;
  }
  __syncthreads();
  const float inv = rsqrtf(warp_sums[0] / static_cast<float>(cols) + eps);
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const T normed = static_cast<T>(static_cast<float>(xr[i]) * inv);
    yr[i] = static_cast<T>(static_cast<float>(w[i]) * static_cast<float>(normed));
  }
}

}  // namespace

at::Tensor rms_norm_cuda(const at::Tensor& x, const at::Tensor& weight, double eps) {
  TORCH_CHECK(x.is_cuda() && weight.is_cuda(), "rms_norm_cuda: tensors must be on CUDA");
  TORCH_CHECK(weight.dim() == 1 && weight.size(0) == x.size(-1), "rms_norm_cuda: weight shape ", weight.sizes(),
              " does not match the last dimension of x ", x.sizes());
  TORCH_CHECK(x.scalar_type() == weight.scalar_type(), "rms_norm_cuda: x and weight dtypes differ");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor xc = x.contiguous(), wc = weight.contiguous();
  at::Tensor y = at::empty_like(xc);
  const int64_t cols = x.size(-1);
  const int64_t rows = xc.numel() / std::max<int64_t>(cols, 1);
  if (rows == 0) return y;
  const int threads = cols >= 1024 ? 1024 : (cols >= 256 ? 256 : 128);
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "rms_norm_cuda", [&] {
    rms_norm_kernel<scalar_t><<<static_cast<unsigned>(rows), threads, 0, stream>>>(
        xc.data_ptr<scalar_t>(), wc.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), cols, static_cast<float>(eps));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}

}  // namespace mt::kernels
