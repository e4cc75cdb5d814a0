// Ablation sweeps (see sweep.h): the sweep file's parser, the settings' configs, and the runner that
// copies the finished stages a run shares with another run of the sweep (same stage keys) before it
// resumes the pipeline there. Sequential runs call run_pipeline in this process; with --jobs N the
// settings run as `maintune pipeline --resume` child processes, one GPU each when there are GPUs.
#include "trainer/sweep/sweep.h"

#include <ATen/Context.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "models/atomic_file.h"
#include "models/read_file.h"
#include "models/error.h"
#include "trainer/method/mutual_filter.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"
#include "trainer/base/jsonl.h"
#include "trainer/method/pipeline.h"
#include "trainer/sweep/sweep_report.h"

extern char** environ;

namespace mt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void log(const std::string& line) {
  std::fprintf(stderr, "sweep: %s\n", line.c_str());
  std::fflush(stderr);
}

// ---------------------------------------------------------------------------------------------
// The sweep file
// ---------------------------------------------------------------------------------------------

const std::vector<std::string> kTopLevelKeys = {"name", "base", "set", "grid", "list", "metrics"};
const std::vector<std::string> kShortMetrics = {"accuracy", "heldout_nll", "precision", "kept", "seconds"};
// Keys the sweep itself sets for every run.
const std::vector<std::string> kSweepOwnedKeys = {"output.run_dir"};

struct SweepFile {
  std::string file;

  std::string at(const YAML::Mark& mark) const {
    if (mark.is_null() || mark.line < 0) return file;
    return fmt::format("{}:{}:{}", file, mark.line + 1, mark.column + 1);
  }
  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& what) const { throw Error(at(mark) + ": " + what); }
};

// "" when `key` names a config key a setting may set: a config_schema() path ("final.alpha"), or an
// entry of a list of sources or a key of one ("data.sources[0]", "data.sources[0].format");
// otherwise what is wrong with it.
std::string config_key_problem(const std::string& key) {
  const auto& schema = config_schema();
  std::vector<std::string> paths;
  for (const auto& k : schema) paths.push_back(k.path);
  auto find = [&](const std::string& path) -> const ConfigKeyDoc* {
    for (const auto& k : schema)
      if (k.path == path) return &k;
    return nullptr;
  };
  if (std::find(kSweepOwnedKeys.begin(), kSweepOwnedKeys.end(), key) != kSweepOwnedKeys.end())
    return fmt::format("'{}' is set by the sweep (each run's folder under DIR/runs)", key);
  const size_t bracket = key.find('[');
  if (bracket == std::string::npos) {
    if (key.find('.') != std::string::npos && find(key) != nullptr) return "";
    return fmt::format("'{}' is not a config key{}; see 'maintune config --schema'", key, did_you_mean_hint(key, paths));
  }
  const std::string list = key.substr(0, bracket);
  const size_t close = key.find(']', bracket);
  const std::string index = close == std::string::npos ? "" : key.substr(bracket + 1, close - bracket - 1);
  const ConfigKeyDoc* def = find(list);
  if (def == nullptr || def->type != "list of sources")
    return fmt::format("'{}' is not a config key: {} is not a list of sources", key, list);
  if (index.empty() || !std::all_of(index.begin(), index.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return fmt::format("'{}' is not a config key: expected {}[N] with N an entry's index", key, list);
  const std::string rest = key.substr(close + 1);
  if (rest.empty()) return "";
  if (rest[0] == '.' && find("data.sources[]." + rest.substr(1)) != nullptr) return "";
  std::vector<std::string> fields;
  for (const auto& k : schema)
    if (k.path.rfind("data.sources[].", 0) == 0) fields.push_back(k.path.substr(15));
  return fmt::format("'{}' is not a config key: a source has no key '{}'{}", key, rest.substr(rest[0] == '.' ? 1 : 0),
                     did_you_mean_hint(rest.substr(rest[0] == '.' ? 1 : 0), fields));
}

// A value as the YAML text of a --set override; a quoted scalar stays a quoted string.
std::string value_text(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  if (node.IsScalar() && node.Tag() == "!")
    out << YAML::DoubleQuoted << node.Scalar();
  else
    out << node;
  return out.c_str();
}

// Calls fn(key name, key node, value node) for each entry of a map, refusing non-name and repeated
// keys (yaml-cpp keeps both entries of a repeated key).
template <typename Fn>
void for_each_entry(const SweepFile& sf, const YAML::Node& map, const std::string& where, Fn&& fn) {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    const YAML::Node key = entry.first, value = entry.second;
    if (!key.IsScalar()) sf.fail(key.Mark(), fmt::format("{}a key must be a name", where));
    if (!seen.insert(key.Scalar()).second)
      sf.fail(key.Mark(), fmt::format("{}'{}' is given twice", where, key.Scalar()));
    fn(key.Scalar(), key, value);
  }
}

// "002-final.alpha=0.5-filter.rule=mutual": the index, then key=value pairs with brackets and
// quotes left out and every other run of characters outside [A-Za-z0-9._=-] replaced by one '-'
// ("final.models=[none, mutual]" -> "final.models=none-mutual"), at most 100 characters of them.
std::string make_run_name(int64_t index, const std::vector<SweepValue>& values) {
  std::string text;
  for (const auto& v : values) text += (text.empty() ? "" : " ") + v.key + "=" + v.value;
  std::string name;
  for (const char c : text) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '=' || c == '-';
    if (ok) name += c;
    else if (std::strchr("[]{}\"'", c) != nullptr) continue;
    else if (!name.empty() && name.back() != '-') name += '-';
  }
  while (!name.empty() && name.back() == '-') name.pop_back();
  if (name.size() > 100) name.resize(100);
  return fmt::format("{:03d}-{}", index, name);
}

bool is_metric(const std::string& m) {
  if (std::find(kShortMetrics.begin(), kShortMetrics.end(), m) != kShortMetrics.end()) return true;
  for (const auto& rule : filter_rule_names())
    if (m == "final." + rule + ".accuracy" || m == "final." + rule + ".heldout_nll" || m == "filter." + rule + ".precision")
      return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Runs and their stages
// ---------------------------------------------------------------------------------------------

using StageKeys = std::vector<std::pair<std::string, std::string>>;

// One answer for "is this stage complete", the pipeline's (a damaged record is an error naming it).
bool stage_done(const fs::path& dir) { return stage_complete(dir); }

bool run_finished(const fs::path& run_dir) { return fs::exists(run_dir / kReportDir / kReportSummaryFile); }

// In a stage folder the sweep copied: the run it came from.
constexpr const char* kCopiedFromFile = "sweep_copied_from.json";

bool is_copy_in_progress(const fs::path& p) {
  const std::string name = p.filename().string();
  const std::string suffix = ".sweep-copy";
  return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The stages of a run that were copied from another run, in stage order, as {stage, from}.
json copied_stages(const fs::path& run_dir, const StageKeys& keys) {
  json out = json::array();
  for (const auto& [stage, key] : keys) {
    const json from = read_json_or_null(run_dir / stage / kCopiedFromFile);
    if (from.is_object() && from.contains("from")) out.push_back({{"stage", stage}, {"from", from["from"]}});
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Sweep {
  const SweepSpec& spec;
  fs::path dir;  // absolute
  std::vector<TrainConfig> configs;
  std::vector<StageKeys> keys;
  json record;  // sweep.json
  std::map<size_t, StageKeys> saved_keys;  // the stage keys of a run's own pipeline.yaml

  fs::path run_dir(size_t i) const { return sweep_run_dir(dir, spec.settings[i]); }
  json& run(size_t i) { return record["runs"][i]; }

  // The stage keys of the config a run was started with (its pipeline.yaml), which is what its
  // stage folders hold; nullopt when it has none.
  const StageKeys* keys_of_saved_run(size_t j) {
    if (auto it = saved_keys.find(j); it != saved_keys.end()) return &it->second;
    const fs::path saved = run_dir(j) / kPipelineConfigFile;
    if (!fs::exists(saved)) return nullptr;
    try {
      return &(saved_keys[j] = pipeline_stage_keys(load_train_config(saved)));
    } catch (const Error& e) {  // not a run to copy from; its own turn reports the problem
      log(fmt::format("{}: not used as a source of stages: {}", run_dir(j).string(), e.what()));
      return nullptr;
    }
  }

  // Another run of the sweep whose `stage` is complete and has `key` (the first in sweep order).
  std::optional<size_t> finished_stage_source(size_t i, const std::string& stage, const std::string& key) {
    for (size_t j = 0; j < spec.settings.size(); ++j) {
      if (j == i || !stage_done(run_dir(j) / stage)) continue;
      const StageKeys* k = keys_of_saved_run(j);
      if (k == nullptr) continue;
      for (const auto& [s, kk] : *k)
        if (s == stage && kk == key) return j;
    }
    return std::nullopt;
  }

  void save() {
    write_text_file_atomically(dir / "sweep.json", record.dump(2) + "\n");
    write_sweep_summary(dir, spec, configs, record);
  }
};

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
    const auto diffs = resume_incompatibilities(load_train_config(saved), sw.configs[i]);
    if (!diffs.empty())
      throw Error(fmt::format("{}: this run folder holds a pipeline of another config than setting {} of {} "
                              "(was the sweep file changed?); move it away to rerun it:\n  {}",
                              run.string(), sw.spec.settings[i].index, sw.spec.file.string(), fmt::join(diffs, "\n  ")));
    return;
  }
  if (fs::exists(run) && !fs::is_empty(run))
    for (const auto& entry : fs::directory_iterator(run))
      if (!is_copy_in_progress(entry.path()) && entry.path().filename() != "pipeline.log")
        throw Error(fmt::format("{}: the run folder exists and holds no pipeline run (no pipeline.yaml); move it away",
                                run.string()));
  fs::create_directories(run);
  write_text_file_atomically(saved, train_config_to_yaml(sw.configs[i]));
}

// Copies into run i, in stage order, every stage it lacks that another run of the sweep finished
// with the same stage key; stops at the first stage it cannot take (keys chain, so no later stage
// could be the same). Returns the copied stages as {stage, from}.
json copy_shared_stages(Sweep& sw, size_t i) {
  const fs::path run = sw.run_dir(i);
  std::vector<fs::path> interrupted;  // copies a kill cut short
  for (const auto& entry : fs::directory_iterator(run))
    if (is_copy_in_progress(entry.path())) interrupted.push_back(entry.path());
  for (const auto& p : interrupted) fs::remove_all(p);
  json copied = json::array();
  for (const auto& [stage, key] : sw.keys[i]) {
    const fs::path dst = run / stage;
    if (stage_done(dst)) continue;
    if (fs::exists(dst)) break;  // started here: the pipeline resumes it
    const auto source = sw.finished_stage_source(i, stage, key);
    if (!source) break;
    const fs::path src = sw.run_dir(*source) / stage, tmp = run / (stage + ".sweep-copy");
    try {
      fs::copy(src, tmp, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
      // Where the stage came from travels with it, so the record survives a kill after the rename.
      write_text_file_atomically(tmp / kCopiedFromFile,
                                 json{{"from", sw.spec.settings[*source].run_name}, {"stage_key", key}}.dump() + "\n");
      fs::rename(tmp, dst);
      fsync_directory(run);
    } catch (const fs::filesystem_error& e) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      throw Error(fmt::format("{}: cannot copy the finished stage from {}: {}", dst.string(), src.string(), e.what()));
    }
    copied.push_back({{"stage", stage}, {"from", sw.spec.settings[*source].run_name}});
  }
  return copied;
}

// Run i starts: folder, copied stages, status "running" recorded. Returns whether it was started
// before (a resume).
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

void finish_run(Sweep& sw, size_t i, const std::string& status, double seconds, const std::string& error = "") {
  json& r = sw.run(i);
  r["status"] = status;
  r["seconds"] = r.value("seconds", 0.0) + seconds;
  if (!error.empty()) r["error"] = error;
  sw.save();
  const SweepSetting& s = sw.spec.settings[i];
  log(fmt::format("[{}/{}] {}: {} ({:.0f} s){}", s.index, sw.spec.settings.size(), s.run_name, status, seconds,
                  error.empty() ? "" : ": " + error));
}

// ---------------------------------------------------------------------------------------------
// Parallel runs
// ---------------------------------------------------------------------------------------------

std::atomic<int> g_stop{0};
void on_stop(int sig) { g_stop.store(sig); }

// The CUDA_VISIBLE_DEVICES values the children are spread over (empty: no GPU).
std::vector<std::string> visible_gpus() {
  if (!at::hasCUDA()) return {};
  const size_t n = at::getNumGPUs();
  std::vector<std::string> ids;
  if (const char* env = std::getenv("CUDA_VISIBLE_DEVICES"); env != nullptr && *env != '\0') {
    std::string list = env;
    size_t start = 0;
    while (start <= list.size() && ids.size() < n) {
      const size_t comma = list.find(',', start);
      ids.push_back(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else {
    for (size_t d = 0; d < n; ++d) ids.push_back(std::to_string(d));
  }
  return ids;
}

// `maintune pipeline --config RUN/pipeline.yaml --resume` with its output appended to
// RUN/pipeline.log; the child dies with the sweep (PR_SET_PDEATHSIG), so a killed sweep leaves no
// run going on behind the next one.
pid_t spawn_pipeline(const fs::path& exe, const fs::path& run, const std::string& gpu) {
  // pipeline.yaml names the run folder itself (output.run_dir).
  const std::vector<std::string> args = {exe.string(), "pipeline", "--config", (run / kPipelineConfigFile).string(), "--resume"};
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (gpu.empty() || std::strncmp(*e, "CUDA_VISIBLE_DEVICES=", 21) != 0) env.emplace_back(*e);
  if (!gpu.empty()) env.push_back("CUDA_VISIBLE_DEVICES=" + gpu);
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string log_file = (run / "pipeline.log").string();
  const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", log_file, std::strerror(errno)));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    throw Error(fmt::format("sweep: cannot start a process for {}: {}", run.string(), std::strerror(errno)));
  }
  if (pid == 0) {  // only async-signal-safe calls until execve
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(137);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

// Whether run i must wait: a running run shares one of its stage keys and has not finished that
// stage yet (the two would compute the same stage at once).
bool must_wait(Sweep& sw, size_t i, const std::map<pid_t, size_t>& running) {
  for (const auto& [stage, key] : sw.keys[i]) {
    if (stage_done(sw.run_dir(i) / stage)) continue;
    for (const auto& [pid, r] : running) {
      (void)pid;
      for (const auto& [s, k] : sw.keys[r])
        if (s == stage && k == key && !stage_done(sw.run_dir(r) / stage)) return true;
    }
  }
  return false;
}

void run_parallel(Sweep& sw, const std::vector<size_t>& todo, const SweepOptions& options, SweepOutcome& outcome) {
  const std::vector<std::string> gpus = visible_gpus();
  log(fmt::format("{} setting(s) to run, up to {} at once{}", todo.size(), options.jobs,
                  gpus.empty() ? " (no GPU: on the CPU)" : fmt::format(" over GPU(s) {}", fmt::join(gpus, ","))));
  std::vector<size_t> pending = todo;
  std::map<pid_t, size_t> running;
  std::map<pid_t, std::string> gpu_of;
  std::map<pid_t, std::chrono::steady_clock::time_point> started;
  g_stop.store(0);
  auto old_int = std::signal(SIGINT, on_stop);
  auto old_term = std::signal(SIGTERM, on_stop);
  bool stopping = false;
  try {
    while (!pending.empty() || !running.empty()) {
      // Reap the children that ended.
      for (auto it = running.begin(); it != running.end();) {
        int status = 0;
        const pid_t done = ::waitpid(it->first, &status, WNOHANG);
        if (done == 0) {
          ++it;
          continue;
        }
        const size_t i = it->second;
        const double secs = seconds_since(started[it->first]);
        const bool ok = done == it->first && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        const fs::path log_file = sw.run_dir(i) / "pipeline.log";
        if (ok && run_finished(sw.run_dir(i))) {
          finish_run(sw, i, "complete", secs);
          ++outcome.complete;
        } else if (ok || stopping) {
          finish_run(sw, i, "stopped", secs);
          outcome.stopped = true;
        } else {
          finish_run(sw, i, "failed", secs,
                     fmt::format("maintune pipeline exited with {} (log: {})",
                                 WIFEXITED(status) ? fmt::format("status {}", WEXITSTATUS(status))
                                                   : fmt::format("signal {}", WTERMSIG(status)),
                                 log_file.string()));
          ++outcome.failed;
        }
        gpu_of.erase(it->first);
        started.erase(it->first);
        it = running.erase(it);
      }
      if (g_stop.load() != 0 && !stopping) {
        stopping = true;
        log("stopping: asking the running pipelines to stop (they resume with the same command)");
        for (const auto& [pid, i] : running) ::kill(pid, SIGTERM);
      }
      if (stopping) {
        pending.clear();
        outcome.stopped = true;
      }
      // Start what may start, in sweep order.
      for (auto it = pending.begin(); it != pending.end() && static_cast<int64_t>(running.size()) < options.jobs;) {
        if (must_wait(sw, *it, running)) {
          ++it;
          continue;
        }
        const size_t i = *it;
        start_run(sw, i);
        std::string gpu;
        if (!gpus.empty()) {  // the GPU with the fewest runs on it
          std::map<std::string, int> load;
          for (const auto& g : gpus) load[g] = 0;
          for (const auto& [pid, g] : gpu_of) ++load[g];
          gpu = gpus[0];
          for (const auto& g : gpus)
            if (load[g] < load[gpu]) gpu = g;
        }
        const pid_t pid = spawn_pipeline(options.executable, sw.run_dir(i), gpu);
        running[pid] = i;
        gpu_of[pid] = gpu;
        started[pid] = std::chrono::steady_clock::now();
        log(fmt::format("{}: running as process {}{}; log: {}", sw.spec.settings[i].run_name, pid,
                        gpu.empty() ? "" : " on GPU " + gpu, (sw.run_dir(i) / "pipeline.log").string()));
        it = pending.erase(it);
      }
      if (!running.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      else if (!pending.empty()) throw Error("sweep: internal error: settings wait with nothing running");
    }
  } catch (...) {
    for (const auto& [pid, i] : running) ::kill(pid, SIGTERM);
    for (const auto& [pid, i] : running) ::waitpid(pid, nullptr, 0);
    std::signal(SIGINT, old_int);
    std::signal(SIGTERM, old_term);
    throw;
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
}

// One sweep process per sweep folder: a second one would start the same runs.
struct SweepLock {
  int fd = -1;
  explicit SweepLock(const fs::path& dir) {
    const std::string file = (dir / ".sweep.lock").string();
    fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", file, std::strerror(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      throw Error(fmt::format("{}: another maintune sweep is running in this folder", dir.string()));
    }
  }
  ~SweepLock() {
    if (fd >= 0) ::close(fd);
  }
  SweepLock(const SweepLock&) = delete;
  SweepLock& operator=(const SweepLock&) = delete;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

SweepSpec load_sweep_spec(const fs::path& file) {
  const SweepFile sf{file.string()};
  const std::string text = read_file(file, "the sweep file");
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    sf.fail(e.mark, "invalid YAML: " + e.msg);
  }
  if (!root.IsMap())
    sf.fail(root.Mark(), "a sweep file is a map with base:, grid: and/or list: (and optionally set:, metrics:, name:)");
  SweepSpec spec;
  spec.file = file;
  spec.name = file.stem().string();
  std::optional<YAML::Node> grid_entry, list_entry, set_entry, metrics_entry;  // given or not
  std::map<std::string, YAML::Mark> key_marks;
  // Where a section's value is, or its key when the value is empty ("list:" with nothing after it).
  auto mark_of = [&](const YAML::Node& value, const std::string& name) {
    return value.Mark().is_null() || value.IsNull() ? key_marks[name] : value.Mark();
  };
  bool have_base = false;
  for_each_entry(sf, root, "", [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
    key_marks[name] = key.Mark();
    if (name == "name") {
      if (!value.IsScalar()) sf.fail(key.Mark(), "name: expected a string");
      spec.name = value.Scalar();
    } else if (name == "base") {
      if (!value.IsScalar() || value.Scalar().empty())
        sf.fail(key.Mark(), "base: expected the path of the base config (relative to the sweep file)");
      const fs::path base = fs::path(value.Scalar());
      spec.base = (base.is_absolute() ? base : fs::absolute(file).parent_path() / base).lexically_normal();
      std::error_code ec;
      if (!fs::is_regular_file(spec.base, ec))
        sf.fail(value.Mark(), fmt::format("base: {} is not a file", spec.base.string()));
      have_base = true;
    } else if (name == "set") {
      set_entry = value;
    } else if (name == "grid") {
      grid_entry = value;
    } else if (name == "list") {
      list_entry = value;
    } else if (name == "metrics") {
      metrics_entry = value;
    } else {
      sf.fail(key.Mark(), fmt::format("unknown key '{}'{}; a sweep file has {}", name, did_you_mean_hint(name, kTopLevelKeys),
                                      fmt::join(kTopLevelKeys, ", ")));
    }
  });
  if (!have_base) sf.fail(root.Mark(), "base: missing (the base config the settings override)");

  auto check_key = [&](const YAML::Node& key_node, const std::string& where, const std::string& key) {
    if (const std::string problem = config_key_problem(key); !problem.empty())
      sf.fail(key_node.Mark(), fmt::format("{}: {}", where, problem));
  };
  if (set_entry) {
    const YAML::Node& set = *set_entry;
    if (!set.IsMap()) sf.fail(mark_of(set, "set"), "set: expected a map of config keys to values");
    for_each_entry(sf, set, "set: ", [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) {
      check_key(k, "set", key);
      spec.fixed.push_back({key, value_text(v), sf.at(v.Mark().is_null() ? k.Mark() : v.Mark())});
    });
  }
  std::vector<std::vector<SweepValue>> list_entries;
  if (list_entry) {
    const YAML::Node& list = *list_entry;
    if (!list.IsSequence() || list.size() == 0)
      sf.fail(mark_of(list, "list"), "list: expected a non-empty list of settings (maps of config keys to values)");
    for (size_t e = 0; e < list.size(); ++e) {
      const YAML::Node entry = list[e];
      const std::string where = fmt::format("list[{}]", e);
      if (!entry.IsMap() || entry.size() == 0)
        sf.fail(entry.Mark(), fmt::format("{}: expected a non-empty map of config keys to values", where));
      std::vector<SweepValue> values;
      for_each_entry(sf, entry, where + ": ", [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) {
        check_key(k, where, key);
        values.push_back({key, value_text(v), sf.at(v.Mark().is_null() ? k.Mark() : v.Mark())});
        if (std::find(spec.swept_keys.begin(), spec.swept_keys.end(), key) == spec.swept_keys.end())
          spec.swept_keys.push_back(key);
      });
      list_entries.push_back(std::move(values));
    }
  }
  std::vector<std::vector<SweepValue>> grid_axes;
  if (grid_entry) {
    const YAML::Node& grid = *grid_entry;
    if (!grid.IsMap() || grid.size() == 0) sf.fail(mark_of(grid, "grid"), "grid: expected a map of config keys to lists of values");
    for_each_entry(sf, grid, "grid: ", [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) {
      check_key(k, "grid", key);
      if (!v.IsSequence())
        sf.fail(v.Mark().is_null() ? k.Mark() : v.Mark(),
                fmt::format("grid: {}: expected a list of values, e.g. {}: [a, b]", key, key));
      if (v.size() == 0) sf.fail(v.Mark(), fmt::format("grid: {}: an empty list (give at least one value)", key));
      if (std::find(spec.swept_keys.begin(), spec.swept_keys.end(), key) != spec.swept_keys.end())
        sf.fail(k.Mark(), fmt::format("grid: {}: also set by a list entry; sweep a key in one of them", key));
      std::vector<SweepValue> axis;
      for (const auto& item : v) axis.push_back({key, value_text(item), sf.at(item.Mark())});
      grid_axes.push_back(std::move(axis));
      spec.swept_keys.push_back(key);
    });
  }
  if (grid_axes.empty() && list_entries.empty()) sf.fail(root.Mark(), "nothing to sweep: give grid: and/or list:");
  for (const auto& f : spec.fixed)
    if (std::find(spec.swept_keys.begin(), spec.swept_keys.end(), f.key) != spec.swept_keys.end())
      throw Error(fmt::format("{}: set: {}: also swept (grid: or list:); a key is either fixed or swept", f.place, f.key));

  if (metrics_entry) {
    const YAML::Node& metrics = *metrics_entry;
    if (!metrics.IsSequence() || metrics.size() == 0)
      sf.fail(mark_of(metrics, "metrics"), "metrics: expected a non-empty list of metric names");
    for (const auto& m : metrics) {
      if (!m.IsScalar() || !is_metric(m.Scalar()))
        sf.fail(m.Mark(), fmt::format("metrics: '{}' is not a metric; metrics are {} or a column such as "
                                      "final.mutual.accuracy, final.mutual.heldout_nll, filter.mutual.precision",
                                      m.IsScalar() ? m.Scalar() : std::string("(not a name)"), fmt::join(kShortMetrics, ", ")));
      spec.metrics.push_back(m.Scalar());
    }
  } else {
    spec.metrics = {"accuracy", "heldout_nll", "precision"};
  }

  // Settings: each list entry (or one empty entry) crossed with the grid, the last grid key fastest.
  if (list_entries.empty()) list_entries.emplace_back();
  size_t points = 1;
  for (const auto& axis : grid_axes) points *= axis.size();
  for (const auto& entry : list_entries)
    for (size_t p = 0; p < points; ++p) {
      SweepSetting s;
      s.index = static_cast<int64_t>(spec.settings.size()) + 1;
      s.values = entry;
      std::vector<SweepValue> chosen(grid_axes.size());
      size_t rest = p;
      for (size_t a = grid_axes.size(); a-- > 0;) {
        chosen[a] = grid_axes[a][rest % grid_axes[a].size()];
        rest /= grid_axes[a].size();
      }
      s.values.insert(s.values.end(), chosen.begin(), chosen.end());
      s.run_name = make_run_name(s.index, s.values);
      spec.settings.push_back(std::move(s));
    }
  return spec;
}

std::vector<std::string> sweep_overrides(const SweepSpec& spec, const SweepSetting& setting) {
  std::vector<std::string> out;
  for (const auto& v : spec.fixed) out.push_back(v.key + "=" + v.value);
  for (const auto& v : setting.values) out.push_back(v.key + "=" + v.value);
  return out;
}

fs::path sweep_run_dir(const fs::path& sweep_dir, const SweepSetting& setting) {
  return fs::absolute(sweep_dir).lexically_normal() / "runs" / setting.run_name;
}

std::vector<TrainConfig> sweep_configs(const SweepSpec& spec, const fs::path& sweep_dir) {
  const fs::path overrides_dir = fs::absolute(spec.file).parent_path();
  const std::string file = spec.file.string();
  try {
    (void)load_train_config(spec.base);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: base: {}", file, e.what()));
  }
  bool sets_cache_dir = false;
  for (const auto& v : spec.fixed) sets_cache_dir |= v.key == "data.cache_dir";
  for (const auto& k : spec.swept_keys) sets_cache_dir |= k == "data.cache_dir";
  std::vector<TrainConfig> configs;
  for (const auto& s : spec.settings) {
    const std::vector<std::string> overrides = sweep_overrides(spec, s);
    TrainConfig config;
    try {
      config = load_train_config(spec.base, overrides, overrides_dir);
    } catch (const Error& e) {
      // Name the value that is refused: the first override whose addition fails.
      std::vector<SweepValue> values = spec.fixed;
      values.insert(values.end(), s.values.begin(), s.values.end());
      std::vector<std::string> prefix;
      for (const auto& v : values) {
        prefix.push_back(v.key + "=" + v.value);
        try {
          (void)load_train_config(spec.base, prefix, overrides_dir);
        } catch (const Error& first) {
          throw Error(fmt::format("{}: {}: {} (setting {}, run {})", v.place, v.key, first.what(), s.index, s.run_name));
        }
      }
      throw Error(fmt::format("{}: setting {} (run {}): {}", file, s.index, s.run_name, e.what()));
    }
    config.output.run_dir = sweep_run_dir(sweep_dir, s).string();
    if (!sets_cache_dir && config.data.cache_dir.empty())
      config.data.cache_dir = (fs::absolute(sweep_dir).lexically_normal() / "cache").string();
    try {
      check_pipeline_config(config);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: setting {} (run {}): {}", file, s.index, s.run_name, e.what()));
    }
    configs.push_back(std::move(config));
  }
  return configs;
}

SweepOutcome run_sweep(const SweepSpec& spec, const SweepOptions& options) {
  if (options.jobs < 1) throw Error(fmt::format("sweep: --jobs must be at least 1, got {}", options.jobs));
  Sweep sw{spec, fs::absolute(options.run_dir).lexically_normal(), {}, {}, {}, {}};
  sw.configs = sweep_configs(spec, sw.dir);  // every setting checked before anything runs
  for (const auto& c : sw.configs) sw.keys.push_back(pipeline_stage_keys(c));
  fs::create_directories(sw.dir / "runs");
  const SweepLock lock(sw.dir);
  std::vector<std::string> fixed;
  for (const auto& v : spec.fixed) fixed.push_back(v.key + "=" + v.value);
  sw.record = initial_record(sw, fixed);
  SweepOutcome outcome;
  std::vector<size_t> todo;
  for (size_t i = 0; i < spec.settings.size(); ++i) {
    json& r = sw.run(i);
    if (r["status"] == "complete" && run_finished(sw.run_dir(i))) {
      r["action"] = "skipped";
      ++outcome.complete;
      ++outcome.skipped;
      log(fmt::format("[{}/{}] {}: complete, skipped", spec.settings[i].index, spec.settings.size(), spec.settings[i].run_name));
    } else {
      if (r["status"] == "complete") r["status"] = "pending";  // its report is gone: run it again
      todo.push_back(i);
    }
  }
  sw.save();
  log(fmt::format("{}: {} setting(s), {} finished before, {} to run; {}", spec.name, spec.settings.size(), outcome.skipped,
                  todo.size(), (sw.dir / "summary.md").string()));
  if (options.jobs > 1 && todo.size() > 1) {
    if (options.executable.empty()) throw Error("sweep: --jobs needs the maintune executable's path");
    run_parallel(sw, todo, options, outcome);
  } else {
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
  sw.save();
  log(fmt::format("{} of {} setting(s) complete{}{}; {}", outcome.complete, spec.settings.size(),
                  outcome.failed > 0 ? fmt::format(", {} failed", outcome.failed) : "",
                  outcome.stopped ? "; stopped (the same command resumes)" : "", (sw.dir / "summary.md").string()));
  return outcome;
}

std::string describe_sweep_plan(const SweepSpec& spec, const fs::path& sweep_dir) {
  Sweep sw{spec, fs::absolute(sweep_dir).lexically_normal(), {}, {}, {}, {}};
  sw.configs = sweep_configs(spec, sw.dir);
  for (const auto& c : sw.configs) sw.keys.push_back(pipeline_stage_keys(c));
  const json before = read_json_or_null(sw.dir / "sweep.json");
  std::map<std::string, std::string> recorded_status;
  if (before.is_object() && before.contains("runs") && before["runs"].is_array())
    for (const auto& r : before["runs"])
      if (r.is_object() && r.contains("run") && r.contains("status")) recorded_status[r["run"]] = r["status"];
  // Stage key -> the run that has it finished (on disk) or will (an earlier setting, once it ran).
  std::map<std::string, std::string> provider;
  for (size_t j = 0; j < spec.settings.size(); ++j)
    if (const StageKeys* k = sw.keys_of_saved_run(j))
      for (const auto& [stage, key] : *k)
        if (stage_done(sw.run_dir(j) / stage)) provider.emplace(key, spec.settings[j].run_name);
  std::string out = fmt::format("sweep {}: {} setting(s) from {} over base {}; run directory {}\n", spec.name,
                                spec.settings.size(), spec.file.string(), spec.base.string(), sw.dir.string());
  if (!spec.fixed.empty()) {
    std::vector<std::string> fixed;
    for (const auto& v : spec.fixed) fixed.push_back(v.key + "=" + v.value);
    out += fmt::format("fixed: {}\n", fmt::join(fixed, " "));
  }
  for (size_t i = 0; i < spec.settings.size(); ++i) {
    const SweepSetting& s = spec.settings[i];
    std::vector<std::string> values;
    for (const auto& v : s.values) values.push_back(v.key + "=" + v.value);
    out += fmt::format("\n[{}/{}] {}\n  setting:    {}\n  run folder: {}\n", s.index, spec.settings.size(), s.run_name,
                       fmt::join(values, " "), sw.run_dir(i).string());
    const auto it = recorded_status.find(s.run_name);
    if (it != recorded_status.end() && it->second == "complete" && run_finished(sw.run_dir(i))) {
      out += "  state:      complete (skipped)\n";
      continue;
    }
    out += fmt::format("  state:      {}\n", fs::exists(sw.run_dir(i) / kPipelineConfigFile) ? "started (resumes)" : "new");
    std::vector<std::pair<std::string, std::string>> reuse;  // stage, from
    std::vector<std::string> has, computes;
    bool copying = true;
    for (const auto& [stage, key] : sw.keys[i]) {
      if (copying && stage_done(sw.run_dir(i) / stage)) {
        has.push_back(stage);
        continue;
      }
      if (copying && !fs::exists(sw.run_dir(i) / stage))
        if (auto p = provider.find(key); p != provider.end() && p->second != s.run_name) {
          reuse.emplace_back(stage, p->second);
          continue;
        }
      copying = false;
      computes.push_back(stage);
    }
    if (!has.empty()) out += fmt::format("  finished:   {}\n", fmt::join(has, ", "));
    json reused = json::array();
    for (const auto& [stage, from] : reuse) reused.push_back({{"stage", stage}, {"from", from}});
    out += fmt::format("  reuses:     {}\n", reused.empty() ? std::string("nothing") : describe_reused_stages(reused));
    out += fmt::format("  computes:   {}\n", computes.empty() ? std::string("nothing (the report only)") : fmt::format("{}", fmt::join(computes, ", ")));
    for (const auto& [stage, key] : sw.keys[i]) provider.emplace(key, s.run_name);
  }
  return out;
}

}  // namespace mt
