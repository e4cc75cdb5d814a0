// `maintune train`: the one training loop. Loads the model (fp32 master weights or pure bf16),
// tokenizes and caches the data, then runs optimizer steps over accumulation windows with clipping,
// an LR schedule, NaN/Inf step skipping, periodic evaluation, metrics, checkpoints (periodic, final,
// and on SIGTERM/SIGINT) and exact resume, and exports final/ as a Hugging Face model directory.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "trainer/base/fault_injection.h"  // inject_nan_loss_at_steps
#include "trainer/config/config.h"
#include "trainer/loop/device.h"           // resolve_device
#include "trainer/loop/stop_signals.h"     // request_training_stop

namespace mt {

struct TrainOutcome {
  int64_t step = 0;              // optimizer steps done
  int64_t total_steps = 0;
  int64_t steps_this_run = 0;    // 0 when resuming a run that had already finished
  bool interrupted = false;      // stopped by a signal after saving a checkpoint
  double last_loss = 0;            // of this process's last step
  std::filesystem::path final_dir;  // empty when not exported
  bool main_rank = true;            // false on the other ranks of a torchrun job: they stay quiet
};

// `resume`: "" (a new run; refused when the run directory already holds checkpoints), "auto" (the
// newest valid checkpoint of the run, or a fresh start when there is none), or a checkpoint folder.
// Progress and messages go to stderr.
TrainOutcome run_training(const TrainConfig& config, const std::string& resume);

}  // namespace mt
