// The sweep's metrics: the names a `metrics:` entry may give, the metric columns of the summary
// (from the settings' configs) and one run's value of each column, read from its own records
// (stage5_final/stage.json, report/summary.json, stage4_filter/stage.json) and sweep.json's entry.
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "trainer/config/config.h"

namespace mt {

// The metric columns, in order: final.<rule>.heldout_nll and final.<rule>.accuracy for every final
// model of any setting, filter.<rule>.precision for every compared rule, kept, seconds.
std::vector<std::string> sweep_metric_columns(const std::vector<PipelineConfig>& configs);

// The columns a `metrics:` entry plots: a column name, or the last part of one ("accuracy" is every
// final model's accuracy column).
std::vector<std::string> metric_columns_of(const std::string& metric, const std::vector<std::string>& columns);

namespace sweep {

// The short metric names (accuracy, heldout_nll, precision, kept, seconds).
const std::vector<std::string>& short_metric_names();

// Whether `metrics:` may name `m`: a short name, or a final/filter column of any filter rule.
bool is_metric(const std::string& m);

// One run's metrics: column -> value (null when not measured or not there yet). `run` is its entry
// in sweep.json.
std::map<std::string, nlohmann::json> run_metrics(const std::filesystem::path& run_dir,
                                                  const std::vector<std::string>& columns, const nlohmann::json& run);

}  // namespace sweep
}  // namespace mt
