// `maintune train`: the one training loop. Loads the model (fp32 master weights or pure bf16),
// tokenizes and caches the data, then runs optimizer steps over accumulation windows with clipping,
// an LR schedule, NaN/Inf step skipping, periodic evaluation, metrics, checkpoints (periodic, final,
// and on SIGTERM/SIGINT) and exact resume, and exports final/ as a Hugging Face model directory.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "trainer/config/config.h"

namespace mt {

struct TrainOutcome {
  int64_t step = 0;              // optimizer steps done
  int64_t total_steps = 0;
  int64_t steps_this_run = 0;    // 0 when resuming a run that had already finished
  bool interrupted = false;      // stopped by a signal after saving a checkpoint
  double last_loss = 0;            // of this process's last step
  std::filesystem::path final_dir;  // empty when not exported
};

// `resume`: "" (a new run; refused when the run directory already holds checkpoints), "auto" (the
// newest valid checkpoint of the run, or a fresh start when there is none), or a checkpoint folder.
// Progress and messages go to stderr.
TrainOutcome run_training(const TrainConfig& config, const std::string& resume);

// model.device: "cpu", "cuda" (an mt::Error when there is none), or "auto" (cuda when available).
at::Device resolve_device(const std::string& name);

// Fault injection for tests (also read from MAINTUNE_FAULT_NAN_STEPS="3,4" at the start of a run):
// the loss of these optimizer steps (1-based) is made NaN, as a diverging run would.
void inject_nan_loss_at_steps(const std::vector<int64_t>& steps);

// Asks a running run_training to stop after its current step (what SIGTERM/SIGINT do).
void request_training_stop();

}  // namespace mt
