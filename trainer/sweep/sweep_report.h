// The sweep's tables and plots (`maintune sweep`, trainer/sweep/sweep.h): DIR/summary.csv and
// DIR/summary.md with one row per setting (the swept keys' values, status, each final model's
// held-out NLL and accuracy, each filter rule's precision, the kept count, the reused stages,
// seconds) and DIR/plots/<metric>-vs-<key>.svg. Rebuilt from the sweep's records and the runs' own
// stage5_final/stage.json and report/summary.json after every run, so a partial sweep has a partial
// table. A metric that was not measured is an empty CSV cell and "n/a", never 0.
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "trainer/config/config.h"
#include "trainer/sweep/sweep.h"
#include "trainer/sweep/sweep_metrics.h"  // the metric columns, for callers of this header

namespace mt {

// The stages a run copied, compactly: "stage0_demo..stage4_filter from 001-final.alpha=0" ("" for
// none). `reused`: [{stage, from}] in stage order, as DIR/sweep.json records them.
std::string describe_reused_stages(const nlohmann::json& reused);

// Writes summary.csv, summary.md and plots/ into sweep_dir. `record` is DIR/sweep.json's content
// (its "runs" in setting order); configs[i] is the config of spec.settings[i].
void write_sweep_summary(const std::filesystem::path& sweep_dir, const SweepSpec& spec,
                         const std::vector<PipelineConfig>& configs, const nlohmann::json& record);

}  // namespace mt
