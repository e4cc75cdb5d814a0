// Stage reuse between the runs of a sweep (internal to trainer/sweep/): which other run has a
// finished stage with the same stage key, copying it in (through STAGE.sweep-copy and a rename,
// with sweep_copied_from.json inside naming its source), and which stages a run got that way.
#pragma once
#include <cstddef>

#include "trainer/sweep/sweep_context.h"

namespace mt::sweep {

// A stage copy a kill cut short: a folder named STAGE.sweep-copy.
bool is_copy_in_progress(const fs::path& p);

// The stages of a run that were copied from another run, in stage order, as {stage, from}.
json copied_stages(const fs::path& run_dir, const StageKeys& keys);

// The stage keys of the config run j was started with (its pipeline.yaml), which is what its stage
// folders hold; nullptr when it has none (or it cannot be read: that run's own turn reports it).
const StageKeys* keys_of_saved_run(Sweep& sw, size_t j);

// Copies into run i, in stage order, every stage it lacks that another run of the sweep finished
// with the same stage key; stops at the first stage it cannot take (keys chain, so no later stage
// could be the same). Returns the copied stages as {stage, from}.
json copy_shared_stages(Sweep& sw, size_t i);

}  // namespace mt::sweep
