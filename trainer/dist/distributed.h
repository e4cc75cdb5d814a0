// Where this process stands in a data-parallel job (RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR /
// MASTER_PORT, as torchrun and `maintune launch` set them, or SLURM's under srun; rank 0 of 1 when
// unset), its process group, and the small reductions the training loop needs. Without a group (one
// process) the reductions are the identity.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>

#include "trainer/dist/dist_options.h"

namespace mt {

class ProcessGroup;

struct DistEnv {
  int64_t rank = 0, world_size = 1, local_rank = 0;
  bool launched = false;  // WORLD_SIZE was set (torchrun): a process group is made, even for 1 rank
  std::string master_addr;
  int64_t master_port = 0;
  std::shared_ptr<ProcessGroup> group;  // set by connect_ranks when launched
  bool is_main() const { return rank == 0; }
};

// Reads the variables; malformed or inconsistent values (RANK not below WORLD_SIZE, LOCAL_RANK
// without RANK, a missing MASTER_ADDR/MASTER_PORT when WORLD_SIZE is set) are an mt::Error naming them.
// Without WORLD_SIZE, a SLURM job step of several tasks (srun) gives the ranks: SLURM_PROCID,
// SLURM_STEP_NUM_TASKS, SLURM_LOCALID; MASTER_ADDR defaults to the step's first host and MASTER_PORT
// to 10000 + SLURM_JOB_ID % 20000 (docs/distributed.md).
DistEnv dist_env_from_environment();

// The device this rank trains on: model.device resolved, and with CUDA the GPU LOCAL_RANK.
c10::Device rank_device(const DistEnv& env, c10::Device resolved);

// The GPU index a rank takes among the `visible` ones: LOCAL_RANK, or 0 when the process sees one
// GPU (a scheduler that gives each task its own, as srun --gpus-per-task=1 does). A LOCAL_RANK with
// no GPU of its own is an mt::Error (more ranks on the node than GPUs).
int64_t rank_cuda_index(int64_t local_rank, int64_t visible);

// "auto" -> nccl on CUDA, gloo on CPU; an explicit choice that cannot work on `device` is an mt::Error.
std::string resolve_backend(const std::string& backend, c10::Device device);

// Connects a launched process to its peers (no-op otherwise) with options.backend / timeout_s.
void connect_ranks(DistEnv& env, const DistributedOptions& options, c10::Device device);

// Sums `values` (a small fp64/fp32/int64 tensor) over all ranks, in place; `what` names it in errors.
void all_reduce_sum(const DistEnv& env, at::Tensor& values, const std::string& what);

}  // namespace mt
