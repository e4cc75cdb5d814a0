// The settings of a sweep (internal to trainer/sweep/; the public half is in sweep.h): each list
// entry crossed with the grid, their run names, and the overrides the sweep's fixed keys give.
#pragma once
#include <string>
#include <vector>

#include "trainer/sweep/sweep.h"

namespace mt::sweep {

// The settings: each list entry (or one empty entry when there is no list) crossed with the grid's
// axes, the last axis fastest; indices from 1 and run names as in make_run_name.
std::vector<SweepSetting> expand_settings(std::vector<std::vector<SweepValue>> list_entries,
                                          const std::vector<std::vector<SweepValue>>& grid_axes);

// "002-final.alpha=0.5-filter.rule=mutual": the folder of a setting under DIR/runs.
std::string make_run_name(int64_t index, const std::vector<SweepValue>& values);

// The sweep's `set:` as overrides "key=value", in file order.
std::vector<std::string> fixed_overrides(const SweepSpec& spec);

}  // namespace mt::sweep
