// DDP's gradient synchronisation, by hand over c10d (docs/ARCHITECTURE.md says why not
// c10d::Reducer): after the last micro-batch of a window, every parameter's gradient is summed
// over all ranks in flat buckets of about distributed.bucket_mb, each bucket's all-reduce started
// as soon as it is filled and waited for in order. The loss each rank backpropagates is already
// divided by the window's target tokens over all ranks, so the sum (not a mean) is the gradient of
// the global token mean: N ranks x micro-batch b give 1 rank x N*b. Nothing is sent before the
// window's last backward pass.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace mt {

class ProcessGroup;

class GradientSync {
 public:
  // Buckets over `params` (in reverse order: the order backward finishes them), split where a
  // bucket would pass `bucket_bytes` or the dtype/device changes; a tensor is never split.
  GradientSync(std::vector<at::Tensor> params, ProcessGroup& group, int64_t bucket_bytes);

  // Sums every parameter's .grad over all ranks, in place. A gradient missing on some ranks counts
  // as zeros there; one missing on every rank stays missing (as with one process, the optimizer
  // then leaves that tensor alone).
  void all_reduce_gradients();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into params_
    int64_t numel = 0;
  };
  std::vector<at::Tensor> params_;
  ProcessGroup& group_;
  std::vector<Bucket> buckets_;
};

}  // namespace mt
