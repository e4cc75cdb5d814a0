// `maintune sweep`: ablation sweeps over config keys (docs/sweeps.md). A sweep file names a base
// config, fixed overrides and a grid and/or list of settings; each setting is a MAIN pipeline run in
// DIR/runs/NNN-<key=value...>. A run copies the finished stages of another run of the sweep whose
// stage keys (pipeline_stage_keys) agree, up to the first stage that differs, so an ablation over
// final-tuning settings does not regenerate or rescore the data. Finished runs are skipped on
// restart; DIR/sweep.json records every run (setting, status, reused stages, seconds, stage keys).
// Implemented in sweep_spec.cpp (the sweep file), sweep_settings.cpp (settings, run folders,
// configs), sweep_runs.cpp and parallel_runs.cpp (running), stage_reuse.cpp (copying stages),
// sweep_plan.cpp (--dry-run); the summary in sweep_report.h.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "trainer/config/config.h"

namespace mt {

// A config key and its value as YAML text ("0.5", "mutual", "[none, mutual]"), given to
// load_pipeline_config as the override "key=value".
struct SweepValue {
  std::string key, value;
  std::string place;  // where the sweep file writes it, "FILE:LINE:COL", for errors
};

struct SweepSetting {
  int64_t index = 0;               // 1-based, in sweep order
  std::vector<SweepValue> values;  // the swept keys this setting sets: its list entry's, then the grid's
  std::string run_name;            // "002-final.alpha=0.5": the folder under DIR/runs
};

struct SweepSpec {
  std::filesystem::path file;             // the sweep file as given
  std::string name;                       // `name:`, else the file's stem
  std::filesystem::path base;             // `base:`, resolved against the sweep file's folder
  std::vector<SweepValue> fixed;          // `set:`, in file order
  std::vector<std::string> swept_keys;    // every key a setting sets: list keys, then grid keys
  std::vector<std::string> metrics;       // `metrics:` (plotted against each swept key)
  std::vector<SweepSetting> settings;     // list entries (outer) x grid points (last grid key fastest)
};

// Reads and checks a sweep file: its YAML, `base:` (exists), every key against config_schema(), no
// empty value list, no key both fixed and swept or both in the grid and a list entry. Errors are
// mt::Error "FILE:LINE:COL: <where>: what is wrong". Settings' values are checked by sweep_configs.
SweepSpec load_sweep_spec(const std::filesystem::path& file);

// The overrides of one setting: `set:` first, then the setting's values, as "key=value".
std::vector<std::string> sweep_overrides(const SweepSpec& spec, const SweepSetting& setting);

// The run folder of a setting in a sweep run directory: DIR/runs/<run_name>.
std::filesystem::path sweep_run_dir(const std::filesystem::path& sweep_dir, const SweepSetting& setting);

// The resolved config of every setting (base + overrides, relative paths in overrides against the
// sweep file's folder), with output.run_dir its run folder and data.cache_dir DIR/cache unless the
// sweep or the base config sets one. Every setting goes through load_pipeline_config and
// check_pipeline_config before anything runs; errors name the sweep file and the key or setting.
std::vector<PipelineConfig> sweep_configs(const SweepSpec& spec, const std::filesystem::path& sweep_dir);

struct SweepOptions {
  std::filesystem::path run_dir;     // DIR
  int64_t jobs = 1;                  // > 1: settings run as child processes (`maintune pipeline`)
  std::filesystem::path executable;  // the maintune binary (jobs > 1)
};

struct SweepOutcome {
  int64_t complete = 0;  // finished runs, skipped ones included
  int64_t skipped = 0;   // finished before this invocation
  int64_t failed = 0;
  bool stopped = false;  // a signal stopped it; the same command resumes
};

// Runs (or resumes) the sweep: each setting in order, or up to `jobs` at once without two runs
// computing the same unfinished stage. After every run: DIR/sweep.json, DIR/summary.csv,
// DIR/summary.md and DIR/plots/*.svg. A failed run is recorded and the sweep goes on.
SweepOutcome run_sweep(const SweepSpec& spec, const SweepOptions& options);

// What run_sweep would do, for --dry-run: each setting, its run folder, its state, and the stages it
// would copy from which run (assuming the runs before it finish).
std::string describe_sweep_plan(const SweepSpec& spec, const std::filesystem::path& sweep_dir);

}  // namespace mt
