// The c10d backends this build has: Gloo (CPU tensors; compiled where Debian's gloo headers were
// found) and NCCL (CUDA tensors; compiled where torch has CUDA and nccl.h was found). A backend the
// build left out is an mt::Error saying how to get it. Only trainer/dist/ includes this header.
#pragma once
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace mt {

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout);
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout, c10::Device device);

}  // namespace mt
