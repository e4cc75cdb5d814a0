// Joining the ranks, the agreement checks and the shared decisions of a data-parallel run (see
// data_parallel.h).
#include "trainer/loop/data_parallel.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "models/error.h"
#include "trainer/dist/process_group.h"
#include "trainer/dist/rank_agreement.h"

namespace mt {

void join_ranks(DistEnv& dist, const TrainConfig& config, at::Device device, const std::string& config_yaml) {
  if (!dist.launched) return;
  const DistributedOptions& options = config.distributed;
  if (dist.world_size > 1 && (config.alignment.lambda_align > 0 || config.alignment.lambda_cons > 0))
    throw Error(fmt::format("WORLD_SIZE={}: the alignment terms (alignment.lambda_align / lambda_cons > 0) run on one "
                            "process only in this build (their in-batch negatives are not gathered across ranks yet); "
                            "train them without torchrun",
                            dist.world_size));
  connect_ranks(dist, options, device);
  check_ranks_have_same_config(*dist.group, config_yaml);
}

void check_same_weights(const DistEnv& dist, const std::vector<std::pair<std::string, at::Tensor>>& trained,
                        const std::string& when) {
  if (dist.group) check_ranks_have_same_weights(*dist.group, trained, when);
}

std::unique_ptr<GradientSync> make_gradient_sync(const DistEnv& dist, const TrainConfig& config,
                                                 const std::vector<at::Tensor>& params) {
  if (!dist.group) return nullptr;
  const double mb = config.distributed.bucket_mb;
  return std::make_unique<GradientSync>(params, *dist.group, static_cast<int64_t>(mb * 1024 * 1024));
}

bool any_rank(const DistEnv& dist, bool mine, const std::string& what) {
  if (!dist.group) return mine;
  at::Tensor flag = at::full({1}, mine ? 1 : 0, at::kInt);
  dist.group->all_reduce_sum(flag, what);
  return flag.item<int32_t>() > 0;
}

}  // namespace mt
