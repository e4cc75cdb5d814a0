// A sweep's runs as child processes, for --jobs N (internal to trainer/sweep/): up to N
// `maintune pipeline --resume` processes at once, spread over the visible GPUs, never two computing
// the same unfinished stage; SIGINT/SIGTERM/SIGHUP stop them so the same command resumes.
#pragma once
#include <cstddef>
#include <vector>

#include "trainer/sweep/sweep.h"
#include "trainer/sweep/sweep_context.h"

namespace mt::sweep {

// Runs the settings `todo` (indices into sw.spec.settings), recording each outcome in sw.record and
// counting it in `outcome`.
void run_parallel(Sweep& sw, const std::vector<size_t>& todo, const SweepOptions& options, SweepOutcome& outcome);

}  // namespace mt::sweep
