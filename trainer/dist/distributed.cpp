// Rank and world size from torchrun's environment variables, and the (single-process) reductions.
#include "trainer/dist/distributed.h"

#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "models/error.h"

namespace mt {
namespace {

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v, &end, 10);
  if (errno != 0 || *end != '\0' || x < 0)
    throw Error(fmt::format("environment variable {}='{}' is not a non-negative integer", name, v));
  return x;
}

}  // namespace

DistEnv dist_env_from_environment() {
  DistEnv env;
  env.rank = env_int("RANK", 0);
  env.world_size = env_int("WORLD_SIZE", 1);
  env.local_rank = env_int("LOCAL_RANK", env.rank);
  if (env.world_size < 1 || env.rank >= env.world_size)
    throw Error(fmt::format("RANK={} is not below WORLD_SIZE={}", env.rank, env.world_size));
  if (env.world_size > 1)
    throw Error(fmt::format("WORLD_SIZE={}: this build trains on one process only; NCCL data parallelism is not "
                            "built yet (run without torchrun, or with WORLD_SIZE=1)", env.world_size));
  return env;
}

void all_reduce_sum(const DistEnv& env, at::Tensor& values) {
  (void)values;
  if (env.world_size != 1) throw Error("all_reduce_sum: no collective backend for world size > 1");
}

}  // namespace mt
