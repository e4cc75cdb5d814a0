// Learning-rate schedules: constant, linear decay or cosine decay, each after a linear warmup.
#pragma once
#include <cstdint>
#include <string>

namespace mt {

struct LrSchedule {
  std::string type = "cosine";  // "constant" | "linear" | "cosine"
  double base_lr = 2e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;      // optimizer steps in the run
  double min_lr_ratio = 0.0;    // decay ends at base_lr * min_lr_ratio
};

// The lr of optimizer step `step` (0-based). Warmup: base * (step + 1) / (warmup + 1) for step <
// warmup. Then with p = (step - warmup) / max(1, total - warmup - 1) clamped to [0, 1]: constant:
// base; linear: min + (base - min) * (1 - p); cosine: min + (base - min) * (1 + cos(pi p)) / 2.
double lr_at(const LrSchedule& schedule, int64_t step);

// Throws mt::Error for an unknown type, negative warmup, total < 1, min_lr_ratio outside [0, 1].
void check_lr_schedule(const LrSchedule& schedule);

}  // namespace mt
