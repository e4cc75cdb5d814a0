// The `distributed:` section of a run config (TrainConfig::distributed; keys and docs in
// trainer/config/schema_keys.cpp): the bucket size of the gradient all-reduce, the collective
// timeout and the c10d backend. Its own header so that trainer/dist/ does not depend on the config.
#pragma once
#include <cstdint>
#include <string>

namespace mt {

struct DistributedOptions {
  double bucket_mb = 25;         // flat all-reduce buckets of this many MiB (torch DDP's default)
  int64_t timeout_s = 600;       // a collective or the rendezvous waiting longer is an error
  std::string backend = "auto";  // auto (nccl on CUDA, gloo on CPU) | nccl | gloo
};

}  // namespace mt
