// torchrun's environment variables, the backend choice and the rank's device, and the reductions
// (see distributed.h).
#include "trainer/dist/distributed.h"

#include <ATen/Context.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>

#include "models/error.h"
#include "trainer/dist/process_group.h"
#include "trainer/dist/slurm_hosts.h"

namespace mt {
namespace {

std::optional<int64_t> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v, &end, 10);
  if (errno != 0 || *end != '\0' || x < 0)
    throw Error(fmt::format("environment variable {}='{}' is not a non-negative integer", name, v));
  return x;
}

std::string env_text(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// A SLURM job step of several tasks (`srun`), when torchrun's variables are absent: SLURM_PROCID,
// SLURM_STEP_NUM_TASKS and SLURM_LOCALID are the rank, world size and local rank. srun sets
// SLURM_STEP_NUM_TASKS, the batch script itself does not (its SLURM_NTASKS is the allocation's, and
// reading it there would make one process wait for peers that never start). MAINTUNE_SLURM=0
// ignores SLURM (srun starting independent one-process runs).
std::optional<DistEnv> dist_env_from_slurm() {
  if (env_text("MAINTUNE_SLURM") == "0") return std::nullopt;
  const std::optional<int64_t> tasks = env_int("SLURM_STEP_NUM_TASKS"), procid = env_int("SLURM_PROCID");
  if (!tasks || !procid || *tasks <= 1) return std::nullopt;
  DistEnv env;
  env.launched = true;
  env.world_size = *tasks;
  env.rank = *procid;
  env.local_rank = env_int("SLURM_LOCALID").value_or(0);
  if (env.rank >= env.world_size)
    throw Error(fmt::format("SLURM_PROCID={} is not below SLURM_STEP_NUM_TASKS={}", env.rank, env.world_size));
  env.master_addr = env_text("MASTER_ADDR");
  if (env.master_addr.empty()) {
    const char* list_var = env_text("SLURM_STEP_NODELIST").empty() ? "SLURM_JOB_NODELIST" : "SLURM_STEP_NODELIST";
    if (env_text(list_var).empty())
      throw Error("a SLURM job step without SLURM_STEP_NODELIST or SLURM_JOB_NODELIST: set MASTER_ADDR to rank 0's host");
    env.master_addr = first_slurm_host(env_text(list_var), list_var);
  }
  // Without MASTER_PORT, a port from the job id: the steps of one job agree on it, jobs sharing a
  // node mostly differ, and 10000 .. 29999 lies below Linux's ephemeral ports.
  if (const std::optional<int64_t> port = env_int("MASTER_PORT")) {
    env.master_port = *port;
  } else if (const std::optional<int64_t> job = env_int("SLURM_JOB_ID")) {
    env.master_port = 10000 + *job % 20000;
  } else {
    throw Error("a SLURM job step without SLURM_JOB_ID: set MASTER_PORT");
  }
  if (env.master_port < 1 || env.master_port > 65535)
    throw Error(fmt::format("MASTER_PORT={} is not a TCP port (1 .. 65535)", env.master_port));
  return env;
}

}  // namespace

DistEnv dist_env_from_environment() {
  if (env_text("WORLD_SIZE").empty())
    if (std::optional<DistEnv> slurm = dist_env_from_slurm()) return *slurm;
  DistEnv env;
  const std::optional<int64_t> rank = env_int("RANK"), world = env_int("WORLD_SIZE"), local = env_int("LOCAL_RANK");
  env.launched = world.has_value();
  if (!env.launched) {
    if (rank.value_or(0) != 0 || local.value_or(0) != 0)
      throw Error(fmt::format("RANK={} / LOCAL_RANK={} is set but WORLD_SIZE is not: launch the ranks with torchrun "
                              "(or set all of RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)",
                              rank.value_or(0), local.value_or(0)));
    return env;
  }
  env.world_size = *world;
  env.rank = rank.value_or(0);
  env.local_rank = local.value_or(env.rank);
  if (env.world_size < 1) throw Error("WORLD_SIZE=0: a job needs at least one rank");
  if (env.rank >= env.world_size)
    throw Error(fmt::format("RANK={} is not below WORLD_SIZE={} (ranks are 0 .. WORLD_SIZE-1)", env.rank, env.world_size));
  if (!rank && env.world_size > 1)
    throw Error(fmt::format("WORLD_SIZE={} is set but RANK is not: every process needs its RANK", env.world_size));
  if (env.local_rank > env.rank)
    throw Error(fmt::format("LOCAL_RANK={} is above RANK={}: the local rank counts the ranks of one node", env.local_rank,
                            env.rank));
  const char* addr = std::getenv("MASTER_ADDR");
  const std::optional<int64_t> port = env_int("MASTER_PORT");
  if (addr == nullptr || *addr == '\0' || !port)
    throw Error(fmt::format("WORLD_SIZE={} needs MASTER_ADDR and MASTER_PORT (the rendezvous address; torchrun sets "
                            "them), but {} not set",
                            env.world_size,
                            (addr == nullptr || *addr == '\0') ? (port ? "MASTER_ADDR is" : "neither is")
                                                              : "MASTER_PORT is"));
  if (*port < 1 || *port > 65535) throw Error(fmt::format("MASTER_PORT={} is not a TCP port (1 .. 65535)", *port));
  env.master_addr = addr;
  env.master_port = *port;
  return env;
}

int64_t rank_cuda_index(int64_t local_rank, int64_t visible) {
  if (visible == 1) return 0;
  if (local_rank >= visible)
    throw Error(fmt::format("LOCAL_RANK {} but this process sees {} GPU(s): start at most one rank per GPU of a node "
                            "(or give each rank its own GPU through CUDA_VISIBLE_DEVICES)",
                            local_rank, visible));
  return local_rank;
}

c10::Device rank_device(const DistEnv& env, c10::Device resolved) {
  if (!resolved.is_cuda()) return resolved;
  const int64_t visible = at::hasCUDA() ? static_cast<int64_t>(at::getNumGPUs()) : 0;
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(rank_cuda_index(env.local_rank, visible)));
}

std::string resolve_backend(const std::string& backend, c10::Device device) {
  if (backend == "auto") return device.is_cuda() ? "nccl" : "gloo";
  if (backend == "nccl" && !device.is_cuda())
    throw Error("distributed.backend nccl: the model is on the CPU; NCCL reduces CUDA tensors (use gloo or auto)");
  return backend;  // the schema allows auto, nccl and gloo only
}

void connect_ranks(DistEnv& env, const DistributedOptions& options, c10::Device device) {
  if (!env.launched || env.group) return;
  env.group = std::make_shared<ProcessGroup>(env, resolve_backend(options.backend, device), device, options.timeout_s);
}

void all_reduce_sum(const DistEnv& env, at::Tensor& values, const std::string& what) {
  if (env.group) {
    env.group->all_reduce_sum(values, what);
  } else if (env.world_size != 1) {
    throw Error("all_reduce_sum: several ranks but no process group (connect_ranks was not called)");
  }
}

}  // namespace mt
