// The start and end of one run of a sweep (internal to trainer/sweep/), shared by the runs in this
// process (sweep_runs.cpp) and the runs as child processes (parallel_runs.cpp): the run folder
// prepared, shared stages copied in, and sweep.json updated and saved at each step.
#pragma once
#include <cstddef>
#include <string>

#include "trainer/sweep/sweep_context.h"

namespace mt::sweep {

// Run i starts: folder, copied stages, status "running" recorded. Returns whether it was started
// before (a resume).
bool start_run(Sweep& sw, size_t i);

// Run i ended with `status` after `seconds` (added to what earlier invocations spent on it).
void finish_run(Sweep& sw, size_t i, const std::string& status, double seconds, const std::string& error = "");

}  // namespace mt::sweep
