// Running a sweep (see sweep.h): the sweep's record (sweep.json, carried over from an earlier
// invocation), the finished runs skipped, each run's folder prepared and its shared stages copied,
// then the runs in this process (run_pipeline) or, with --jobs N, as child processes
// (parallel_runs.h), one folder lock per sweep.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

#include "models/atomic_file.h"
#include "models/error.h"
#include "trainer/base/file_lock.h"
#include "trainer/base/jsonl.h"
#include "trainer/method/pipeline.h"
#include "trainer/method/run_layout.h"
#include "trainer/sweep/parallel_runs.h"
#include "trainer/sweep/stage_reuse.h"
#include "trainer/sweep/sweep.h"
#include "trainer/sweep/sweep_report.h"
#include "trainer/sweep/sweep_runs.h"
#include "trainer/sweep/sweep_settings.h"

namespace mt {
namespace sweep {
namespace {

json setting_json(const SweepSetting& s) {
  json j = json::object();
  for (const auto& v : s.values) j[v.key] = v.value;
  return j;
}

// The sweep's record, carrying over what an earlier invocation recorded for the same settings.
json initial_record(const Sweep& sw, const std::vector<std::string>& overrides_of_fixed) {
  const json before = read_json_or_null(sw.dir / "sweep.json");
  std::map<std::string, json> earlier;
  if (before.is_object() && before.contains("runs") && before["runs"].is_array())
    for (const auto& r : before["runs"])
      if (r.is_object() && r.contains("run") && r["run"].is_string()) earlier[r["run"].get<std::string>()] = r;
  json runs = json::array();
  for (size_t i = 0; i < sw.spec.settings.size(); ++i) {
    const SweepSetting& s = sw.spec.settings[i];
    json keys = json::object();
    for (const auto& [stage, key] : sw.keys[i]) keys[stage] = key;
    json r{{"index", s.index},          {"run", s.run_name},     {"run_dir", sw.run_dir(i).string()},
           {"setting", setting_json(s)}, {"status", "pending"},   {"action", "not run"},
           {"reused", json::array()},   {"seconds", 0.0},        {"stage_keys", keys},
           {"overrides", sweep_overrides(sw.spec, s)}};
    if (auto it = earlier.find(s.run_name); it != earlier.end() && it->second.value("setting", json()) == r["setting"]) {
      for (const char* k : {"status", "seconds", "error"})
        if (it->second.contains(k)) r[k] = it->second[k];
    }
    r["reused"] = copied_stages(sw.run_dir(i), sw.keys[i]);
    runs.push_back(r);
  }
  return json{{"sweep", fs::absolute(sw.spec.file).lexically_normal().string()},
              {"name", sw.spec.name},
              {"base", sw.spec.base.string()},
              {"set", overrides_of_fixed},
              {"swept_keys", sw.spec.swept_keys},
              {"runs", runs}};
}

// A run folder holds the pipeline of its setting: pipeline.yaml is written first (so the folder is
// a pipeline run that `maintune pipeline --resume` accepts once stages are copied in), or, when
// present, must be the setting's config.
void prepare_run_folder(Sweep& sw, size_t i) {
  const fs::path run = sw.run_dir(i), saved = run / kPipelineConfigFile;
  if (fs::exists(saved)) {
    const auto diffs = resume_incompatibilities(load_pipeline_config(saved), sw.configs[i]);
    if (!diffs.empty())
      throw Error(fmt::format("{}: this run folder holds a pipeline of another config than setting {} of {} "
                              "(was the sweep file changed?); move it away to rerun it:\n  {}",
                              run.string(), sw.spec.settings[i].index, sw.spec.file.string(), fmt::join(diffs, "\n  ")));
    return;
  }
  if (fs::exists(run) && !fs::is_empty(run))
    for (const auto& entry : fs::directory_iterator(run))
      if (!is_copy_in_progress(entry.path()) && entry.path().filename() != "pipeline.log" &&
          entry.path().filename() != kDirLockFile)
        throw Error(fmt::format("{}: the run folder exists and holds no pipeline run (no pipeline.yaml); move it away",
                                run.string()));
  fs::create_directories(run);
  write_text_file_atomically(saved, pipeline_config_to_yaml(sw.configs[i]));
}


// The settings to run, in order; the runs recorded complete whose report is there are skipped
// (counted in `outcome`), and a complete one whose report is gone runs again.
std::vector<size_t> runs_to_do(Sweep& sw, SweepOutcome& outcome) {
  std::vector<size_t> todo;
  for (size_t i = 0; i < sw.spec.settings.size(); ++i) {
    json& r = sw.run(i);
    if (r["status"] == "complete" && run_finished(sw.run_dir(i))) {
      r["action"] = "skipped";
      ++outcome.complete;
      ++outcome.skipped;
      log(fmt::format("[{}/{}] {}: complete, skipped", sw.spec.settings[i].index, sw.spec.settings.size(),
                      sw.spec.settings[i].run_name));
    } else {
      if (r["status"] == "complete") r["status"] = "pending";  // its report is gone: run it again
      todo.push_back(i);
    }
  }
  return todo;
}

// The runs one after another with run_pipeline in this process; a failed run is recorded and the
// sweep goes on, a signal stops it.
void run_in_process(Sweep& sw, const std::vector<size_t>& todo, SweepOutcome& outcome) {
  for (const size_t i : todo) {
    start_run(sw, i);
    const auto t0 = std::chrono::steady_clock::now();
    PipelineOutcome out;
    try {
      out = run_pipeline(sw.configs[i], /*resume=*/true);
    } catch (const std::exception& e) {
      finish_run(sw, i, "failed", seconds_since(t0), e.what());
      ++outcome.failed;
      continue;
    }
    if (!out.complete) {
      finish_run(sw, i, "stopped", seconds_since(t0));
      outcome.stopped = true;
      break;
    }
    finish_run(sw, i, run_finished(sw.run_dir(i)) ? "complete" : "failed", seconds_since(t0));
    ++(run_finished(sw.run_dir(i)) ? outcome.complete : outcome.failed);
  }
}

}  // namespace

bool start_run(Sweep& sw, size_t i) {
  const bool resumed = fs::exists(sw.run_dir(i) / kPipelineConfigFile);
  prepare_run_folder(sw, i);
  const json copied = copy_shared_stages(sw, i);
  json& r = sw.run(i);
  r["reused"] = copied_stages(sw.run_dir(i), sw.keys[i]);
  r["status"] = "running";
  r["action"] = resumed ? "resumed" : "ran";
  r.erase("error");
  sw.save();
  const SweepSetting& s = sw.spec.settings[i];
  log(fmt::format("[{}/{}] {}: {}{}", s.index, sw.spec.settings.size(), s.run_name, resumed ? "resuming" : "starting",
                  copied.empty() ? "" : fmt::format("; copied {}", describe_reused_stages(copied))));
  return resumed;
}

void finish_run(Sweep& sw, size_t i, const std::string& status, double seconds, const std::string& error) {
  json& r = sw.run(i);
  r["status"] = status;
  r["seconds"] = r.value("seconds", 0.0) + seconds;
  if (!error.empty()) r["error"] = error;
  sw.save();
  const SweepSetting& s = sw.spec.settings[i];
  log(fmt::format("[{}/{}] {}: {} ({:.0f} s){}", s.index, sw.spec.settings.size(), s.run_name, status, seconds,
                  error.empty() ? "" : ": " + error));
}

}  // namespace sweep

SweepOutcome run_sweep(const SweepSpec& spec, const SweepOptions& options) {
  using namespace sweep;
  if (options.jobs < 1) throw Error(fmt::format("sweep: --jobs must be at least 1, got {}", options.jobs));
  Sweep sw = open_sweep(spec, options.run_dir);  // every setting checked before anything runs
  fs::create_directories(sw.dir / "runs");
  const DirLock lock(sw.dir, "sweep folder");  // a second sweep process would start the same runs
  sw.record = initial_record(sw, fixed_overrides(spec));
  SweepOutcome outcome;
  const std::vector<size_t> todo = runs_to_do(sw, outcome);
  sw.save();
  log(fmt::format("{}: {} setting(s), {} finished before, {} to run; {}", spec.name, spec.settings.size(), outcome.skipped,
                  todo.size(), (sw.dir / "summary.md").string()));
  if (options.jobs > 1 && todo.size() > 1) {
    if (options.executable.empty()) throw Error("sweep: --jobs needs the maintune executable's path");
    run_parallel(sw, todo, options, outcome);
  } else {
    run_in_process(sw, todo, outcome);
  }
  sw.save();
  log(fmt::format("{} of {} setting(s) complete{}{}; {}", outcome.complete, spec.settings.size(),
                  outcome.failed > 0 ? fmt::format(", {} failed", outcome.failed) : "",
                  outcome.stopped ? "; stopped (the same command resumes)" : "", (sw.dir / "summary.md").string()));
  return outcome;
}

}  // namespace mt
