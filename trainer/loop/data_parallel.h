// What a training run does differently under torchrun: joining the other ranks (with the settings
// that cannot run on several ranks yet refused), the config and weight agreement checks, the
// gradient sync of DDP, and decisions every rank must take together (stop on a signal, skip a
// non-finite step). With one process (no torchrun) each of these is a no-op.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trainer/config/config.h"
#include "trainer/dist/dist_options.h"
#include "trainer/dist/distributed.h"
#include "trainer/dist/gradient_sync.h"

namespace mt {

// This rank's process group (dist.group) on `device`, after refusing what several ranks cannot
// run yet; then every rank checks that the others resolved the same config (config_yaml).
void join_ranks(DistEnv& dist, const TrainConfig& config, at::Device device, const std::string& config_yaml);

// The weights agree on every rank (`when`: "at the start", "after step N").
void check_same_weights(const DistEnv& dist, const std::vector<std::pair<std::string, at::Tensor>>& trained,
                        const std::string& when);

// DDP's gradient buckets over the trained tensors, or null without a process group.
std::unique_ptr<GradientSync> make_gradient_sync(const DistEnv& dist, const TrainConfig& config,
                                                 const std::vector<at::Tensor>& params);

// True on every rank when `mine` is true on any rank (a flag all ranks must act on together).
bool any_rank(const DistEnv& dist, bool mine, const std::string& what);

}  // namespace mt
