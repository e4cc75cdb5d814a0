// Where this process stands in a data-parallel job (RANK / WORLD_SIZE / LOCAL_RANK, torchrun's
// variables; 0 / 1 / 0 when unset) and the reductions the training loop needs. With one process
// the reductions are the identity; the NCCL backend plugs in here without touching the loop.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mt {

struct DistEnv {
  int64_t rank = 0, world_size = 1, local_rank = 0;
  bool is_main() const { return rank == 0; }
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK; malformed or inconsistent values are an mt::Error. A world
// size above 1 is refused until the NCCL backend is built (with a message saying so).
DistEnv dist_env_from_environment();

// Sums `values` (a small fp64/fp32/int64 tensor) over all ranks, in place.
void all_reduce_sum(const DistEnv& env, at::Tensor& values);

}  // namespace mt
