// The optimizer and LR schedule of a training run: the schedule's length (training.max_steps, or
// training.epochs over the loader's batches; the checkpoint's when resuming), AdamW over the model
// and the scorer's trainable tensors, and the trainer state (optimizer moments, RNG) to start from.
#pragma once
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/transformer.h"
#include "trainer/config/config.h"
#include "trainer/engine/alignment.h"
#include "trainer/engine/checkpoint.h"
#include "trainer/engine/lr_schedule.h"
#include "trainer/engine/optimizer.h"

namespace mt {

// Checked (check_lr_schedule); `micro_per_epoch` is the loader's batches per epoch on this rank.
LrSchedule run_schedule(const TrainConfig& config, int64_t micro_per_epoch,
                        const std::optional<LoadedCheckpoint>& ckpt);

// The schedule as TrainerState::schedule stores it.
nlohmann::json schedule_json(const LrSchedule& s);

// What the optimizer updates: the model's parameters, then the scorer's tensors that require grad.
std::vector<std::pair<std::string, at::Tensor>> trained_tensors(const Transformer& master,
                                                                const AlignmentScorer& scorer);

AdamW make_optimizer(const OptimizerSection& options, const std::vector<std::pair<std::string, at::Tensor>>& trained);

// Step 0 with `schedule`, or, when resuming, the checkpoint's state; then the optimizer's moments
// (moved to `device`) and the RNG states are restored from it too.
TrainerState start_state(const LrSchedule& schedule, AdamW& optimizer, const std::optional<LoadedCheckpoint>& ckpt,
                         at::Device device);

}  // namespace mt
