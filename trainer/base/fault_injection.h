// Fault injection for tests: kill points (MAINTUNE_FAULT_KILL_AT="NAME:N" exits at once with status
// 137 the Nth time fault_point(NAME) is reached: what a SIGKILL looks like to the caller, no cleanup,
// no flushing; unset, a fault point costs one lookup; MAINTUNE_FAULT_RANK=R limits it to the process
// whose RANK is R) and NaN losses at chosen training steps.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mt {

void fault_point(const std::string& name);

// True when MAINTUNE_FAULT_FLAGS (a comma-separated list) names `name`: a fault a test switches on
// for one process, e.g. "train.perturb_weights" (this rank's weights differ from the others').
bool fault_flag(const std::string& name);

// Fault injection for tests (also read from MAINTUNE_FAULT_NAN_STEPS="3,4" at the start of a run):
// the loss of these optimizer steps (1-based) is made NaN, as a diverging run would.
void inject_nan_loss_at_steps(const std::vector<int64_t>& steps);
// Adds the steps of MAINTUNE_FAULT_NAN_STEPS (run_training calls it at its start).
void load_nan_steps_from_env();
// True when the loss of optimizer step `step` (1-based) is to be made NaN.
bool nan_injected(int64_t step);

}  // namespace mt
