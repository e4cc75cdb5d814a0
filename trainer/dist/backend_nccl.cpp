// c10d::ProcessGroupNCCL over the rendezvous store: CUDA collectives, one GPU per local rank.
// Compiled where torch has CUDA and nccl.h was found (CMake defines MT_HAVE_NCCL for
// this file only).
#include "trainer/dist/backends.h"

#include "models/error.h"

#ifdef MT_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace mt {

#ifdef MT_HAVE_NCCL
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout, c10::Device device) {
  c10::cuda::set_device(device.index());
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}
#else
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                                    std::chrono::milliseconds, c10::Device) {
  throw Error("distributed.backend nccl: this build has no NCCL backend (torch without CUDA, or nccl.h was not found "
              "when it was configured)");
}
#endif

}  // namespace mt
