// A c10d process group over all ranks of a torchrun job: the rendezvous through c10d::TCPStore at
// MASTER_ADDR:MASTER_PORT (rank 0 serves it, or torchrun's agent does), a Gloo (CPU) or NCCL
// (CUDA) backend, and the few collectives the trainer uses. Every failure of a collective (a rank
// that died, hung past the timeout or failed) is an mt::Error naming the collective and this rank.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace mt {

struct DistEnv;

class ProcessGroup {
 public:
  // Connects this rank to the others; `backend` is "gloo" or "nccl" (already resolved from auto).
  // NCCL runs on `device` (cuda:LOCAL_RANK). Errors name MASTER_ADDR:MASTER_PORT and the reason.
  ProcessGroup(const DistEnv& env, const std::string& backend, c10::Device device, int64_t timeout_s);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // Sums `t` over all ranks, in place. CPU tensors on an NCCL group go through the device.
  void all_reduce_sum(at::Tensor& t, const std::string& what);

  // Starts summing `t` (on the group's device) in place; the returned function waits for it.
  std::function<void()> start_all_reduce_sum(at::Tensor t, const std::string& what);

  // Every rank's `mine`, in rank order, exchanged through the store (small texts: hashes, configs).
  std::vector<std::string> all_gather_text(const std::string& what, const std::string& mine);

  // Rank 0's `text` on every rank (through the store).
  std::string broadcast_text(const std::string& what, const std::string& text);

  const std::string& backend() const { return backend_; }
  int64_t rank() const { return rank_; }
  int64_t world_size() const { return world_size_; }
  int64_t timeout_s() const { return timeout_s_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string backend_;
  int64_t rank_ = 0, world_size_ = 1, timeout_s_ = 0;
  int64_t exchanges_ = 0;  // store exchanges so far: each uses fresh keys
  [[noreturn]] void fail(const std::string& what, const std::exception& e) const;
};

}  // namespace mt
