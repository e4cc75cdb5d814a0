// The sweep's plots (internal to trainer/sweep/): DIR/plots/<metric>-vs-<key>.svg, a line chart of
// each `metrics:` entry against each swept key, one line per metric column and per combination of
// the other swept keys' values that vary on their own.
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "trainer/sweep/sweep.h"

namespace mt::sweep {

// Every setting's row of the summary, gathered once for the tables and the plots.
struct SummaryRows {
  std::vector<std::vector<std::string>> values;                // [setting][swept key]: its resolved value
  std::vector<std::map<std::string, nlohmann::json>> metrics;  // [setting][column]: a number or null
};

// Writes the plots and returns their file names (under plots/) in order. `columns`: every setting's
// metric columns (sweep_metric_columns); `own_columns[i]`: setting i's own. A metric that names one
// final model's column in each setting (whichever rule it is) is added to rows.metrics as a column
// of its own, so settings with different final.models fall on one line.
std::vector<std::string> write_sweep_plots(const std::filesystem::path& sweep_dir, const SweepSpec& spec,
                                           const std::vector<std::string>& columns,
                                           const std::vector<std::vector<std::string>>& own_columns, SummaryRows& rows);

}  // namespace mt::sweep
