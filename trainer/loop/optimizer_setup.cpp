// The schedule, optimizer and starting state of a training run (see optimizer_setup.h).
#include "trainer/loop/optimizer_setup.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace mt {

LrSchedule run_schedule(const TrainConfig& config, int64_t micro_per_epoch,
                        const std::optional<LoadedCheckpoint>& ckpt) {
  const TrainingSection& tc = config.training;
  LrSchedule schedule;
  schedule.type = config.schedule.type;
  schedule.base_lr = config.optimizer.lr;
  schedule.warmup_steps = config.schedule.warmup_steps;
  schedule.min_lr_ratio = config.schedule.min_lr_ratio;
  schedule.total_steps =
      tc.max_steps > 0 ? tc.max_steps
                       : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(
                                                  tc.epochs * static_cast<double>(micro_per_epoch) /
                                                  static_cast<double>(tc.grad_accum_steps))));
  if (ckpt) schedule.total_steps = ckpt->state.schedule.value("total_steps", schedule.total_steps);
  check_lr_schedule(schedule);
  return schedule;
}

nlohmann::json schedule_json(const LrSchedule& s) {
  return {{"type", s.type}, {"base_lr", s.base_lr}, {"warmup_steps", s.warmup_steps},
          {"total_steps", s.total_steps}, {"min_lr_ratio", s.min_lr_ratio}};
}

std::vector<std::pair<std::string, at::Tensor>> trained_tensors(const Transformer& master,
                                                                const AlignmentScorer& scorer) {
  std::vector<std::pair<std::string, at::Tensor>> trained = master.params;
  if (scorer.defined())
    for (const auto& [name, t] : scorer.named_tensors())
      if (t.requires_grad()) trained.emplace_back(name, t);
  return trained;
}

AdamW make_optimizer(const OptimizerSection& options, const std::vector<std::pair<std::string, at::Tensor>>& trained) {
  AdamWOptions ao;
  ao.beta1 = options.beta1;
  ao.beta2 = options.beta2;
  ao.eps = options.eps;
  ao.weight_decay = options.weight_decay;
  ao.fused = options.fused;
  return AdamW(trained, ao);
}

TrainerState start_state(const LrSchedule& schedule, AdamW& optimizer, const std::optional<LoadedCheckpoint>& ckpt,
                         at::Device device) {
  TrainerState state;
  state.schedule = schedule_json(schedule);
  if (ckpt) {
    std::map<std::string, at::Tensor> opt_state;
    for (const auto& [name, t] : ckpt->optimizer_state) opt_state[name] = t.to(device);
    optimizer.load_state(opt_state, ckpt->optimizer_meta, (ckpt->dir / "optimizer.safetensors").string());
    state = ckpt->state;
    restore_rng_states(ckpt->rng);
  }
  return state;
}

}  // namespace mt
