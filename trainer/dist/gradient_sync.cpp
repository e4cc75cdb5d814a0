// Flat-bucket all-reduce of the window's gradients (see gradient_sync.h).
#include "trainer/dist/gradient_sync.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <functional>

#include "models/error.h"
#include "trainer/dist/process_group.h"

namespace mt {

GradientSync::GradientSync(std::vector<at::Tensor> params, ProcessGroup& group, int64_t bucket_bytes)
    : params_(std::move(params)), group_(group) {
  if (bucket_bytes < 1) throw Error(fmt::format("distributed.bucket_mb: the bucket size must be positive"));
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const at::Tensor& p = params_[k];
    const bool fits = !buckets_.empty() && bytes + static_cast<int64_t>(p.nbytes()) <= bucket_bytes;
    const bool same_kind = !buckets_.empty() && params_[buckets_.back().members[0]].scalar_type() == p.scalar_type() &&
                           params_[buckets_.back().members[0]].device() == p.device();
    if (!fits || !same_kind) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().members.push_back(k);
    buckets_.back().numel += p.numel();
    bytes += static_cast<int64_t>(p.nbytes());
  }
}

void GradientSync::all_reduce_gradients() {
  // Which gradients exist anywhere: a missing one is zeros where another rank has it.
  at::Tensor present = at::empty({static_cast<int64_t>(params_.size())}, at::kInt);
  for (size_t k = 0; k < params_.size(); ++k) present[static_cast<int64_t>(k)] = params_[k].grad().defined() ? 1 : 0;
  group_.all_reduce_sum(present, "which gradients exist");
  const std::vector<int32_t> anywhere(present.data_ptr<int32_t>(), present.data_ptr<int32_t>() + present.numel());

  std::vector<at::Tensor> flats;
  std::vector<std::function<void()>> pending;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const Bucket& bucket = buckets_[b];
    const at::Tensor& first = params_[bucket.members[0]];
    at::Tensor flat = at::empty({bucket.numel}, first.options());
    int64_t offset = 0;
    for (size_t k : bucket.members) {
      const at::Tensor& g = params_[k].grad();
      at::Tensor slot = flat.narrow(0, offset, params_[k].numel());
      if (g.defined()) slot.copy_(g.reshape({-1}));
      else slot.zero_();
      offset += params_[k].numel();
    }
    pending.push_back(group_.start_all_reduce_sum(flat, fmt::format("gradient bucket {} of {}", b + 1, buckets_.size())));
    flats.push_back(std::move(flat));
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    pending[b]();
    int64_t offset = 0;
    for (size_t k : buckets_[b].members) {
      at::Tensor& p = params_[k];
      const at::Tensor summed = flats[b].narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
      if (anywhere[k] == 0) continue;
      if (p.grad().defined()) p.mutable_grad().copy_(summed);
      else p.mutable_grad() = summed.clone();
    }
  }
}

}  // namespace mt
