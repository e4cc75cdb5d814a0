// What the sweep's files share (internal to trainer/sweep/): one invocation's state - the spec, the
// sweep folder, every setting's resolved config and stage keys, DIR/sweep.json's record - which the
// runner, the stage copier and the dry-run plan read and update, and small helpers (progress lines,
// "is this stage / run finished").
#pragma once
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "trainer/base/clock.h"
#include "trainer/config/config.h"
#include "trainer/sweep/sweep.h"

namespace mt::sweep {

namespace fs = std::filesystem;
using nlohmann::json;

// A run's stage keys in stage order, {stage folder, key}, as pipeline_stage_keys gives them.
using StageKeys = std::vector<std::pair<std::string, std::string>>;

// One progress line on stderr, "sweep: ...".
void log(const std::string& line);
void add_unique(std::vector<std::string>& list, const std::string& item);

// A run is finished once its report's summary.json is written (the pipeline's last step).
bool run_finished(const fs::path& run_dir);

struct Sweep {
  const SweepSpec& spec;
  fs::path dir;  // absolute
  std::vector<PipelineConfig> configs;
  std::vector<StageKeys> keys;
  json record;  // sweep.json
  std::map<size_t, StageKeys> saved_keys;  // the stage keys of a run's own pipeline.yaml

  fs::path run_dir(size_t i) const { return sweep_run_dir(dir, spec.settings[i]); }
  json& run(size_t i) { return record["runs"][i]; }
  // Writes DIR/sweep.json and rebuilds the summary tables and plots from it.
  void save();
};

// The sweep in `sweep_dir` (made absolute) with every setting's config (sweep_configs: all checked
// before anything runs) and stage keys; no record yet.
Sweep open_sweep(const SweepSpec& spec, const fs::path& sweep_dir);

}  // namespace mt::sweep
