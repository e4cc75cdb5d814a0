// Learning-rate schedules (trainer/engine/lr_schedule.h): a linear warmup, then constant, linear decay or
// cosine decay from base_lr to base_lr * min_lr_ratio over the remaining optimizer steps.
#include "trainer/engine/lr_schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "models/error.h"

namespace mt {

void check_lr_schedule(const LrSchedule& s) {
  if (s.type != "constant" && s.type != "linear" && s.type != "cosine")
    throw Error(fmt::format("lr schedule: unknown type \"{}\" (expected constant, linear or cosine)", s.type));
  if (s.warmup_steps < 0) throw Error(fmt::format("lr schedule: warmup_steps must be >= 0, got {}", s.warmup_steps));
  if (s.total_steps < 1) throw Error(fmt::format("lr schedule: total_steps must be >= 1, got {}", s.total_steps));
  if (!(s.min_lr_ratio >= 0.0 && s.min_lr_ratio <= 1.0))  // NaN fails too
    throw Error(fmt::format("lr schedule: min_lr_ratio must be in [0, 1], got {}", s.min_lr_ratio));
}

double lr_at(const LrSchedule& s, int64_t step) {
  check_lr_schedule(s);  // a few comparisons: cheap next to a step, and no silent default type
  if (step < 0) throw Error(fmt::format("lr schedule: step must be >= 0, got {}", step));
  const double base = s.base_lr;
  if (step < s.warmup_steps)
    return base * static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps + 1);
  if (s.type == "constant") return base;
  // The decay reaches its end on the last step (total - 1), hence the - 1.
  const double span = static_cast<double>(std::max<int64_t>(1, s.total_steps - s.warmup_steps - 1));
  const double p = std::clamp(static_cast<double>(step - s.warmup_steps) / span, 0.0, 1.0);
  const double min_lr = base * s.min_lr_ratio;
  if (s.type == "linear") return min_lr + (base - min_lr) * (1.0 - p);
  return min_lr + (base - min_lr) * (1.0 + std::cos(M_PI * p)) / 2.0;
}

}  // namespace mt
