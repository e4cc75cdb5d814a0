// The sweep's runs as child processes (see parallel_runs.h): each one `maintune pipeline --config
// RUN/pipeline.yaml --resume` with its output in RUN/pipeline.log, started in sweep order when no
// running run shares an unfinished stage with it, on the GPU with the fewest runs.
#include "trainer/sweep/parallel_runs.h"

#include <ATen/Context.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "models/error.h"
#include "trainer/base/child_process.h"
#include "trainer/base/exit_codes.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"
#include "trainer/sweep/sweep_runs.h"

namespace mt::sweep {
namespace {

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
// RUN/pipeline.log; the child dies with the sweep (spawn_child), so a killed sweep leaves no run
// going on behind the next one.
pid_t spawn_pipeline(const fs::path& exe, const fs::path& run, const std::string& gpu) {
  ChildSpec spec;
  // pipeline.yaml names the run folder itself (output.run_dir).
  spec.argv = {exe.string(), "pipeline", "--config", (run / kPipelineConfigFile).string(), "--resume"};
  spec.env = environment_with(gpu.empty() ? std::vector<std::string>{} : std::vector<std::string>{"CUDA_VISIBLE_DEVICES=" + gpu});
  const std::string log_file = (run / "pipeline.log").string();
  spec.output_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (spec.output_fd < 0) throw Error(fmt::format("{}: cannot open: {}", log_file, std::strerror(errno)));
  try {
    const pid_t pid = spawn_child(spec, fmt::format("sweep: the run {}", run.string()));
    ::close(spec.output_fd);
    return pid;
  } catch (...) {
    ::close(spec.output_fd);
    throw;
  }
}

// The runs going on: their processes, the GPU each was given and when each started.
struct Children {
  std::map<pid_t, size_t> running;  // process -> setting
  std::map<pid_t, std::string> gpu_of;
  std::map<pid_t, std::chrono::steady_clock::time_point> started;
};

// Whether run i must wait: a running run shares one of its stage keys and has not finished that
// stage yet (the two would compute the same stage at once).
bool must_wait(Sweep& sw, size_t i, const std::map<pid_t, size_t>& running) {
  for (const auto& [stage, key] : sw.keys[i]) {
    if (stage_complete(sw.run_dir(i) / stage)) continue;
    for (const auto& [pid, r] : running) {
      (void)pid;
      for (const auto& [s, k] : sw.keys[r])
        if (s == stage && k == key && !stage_complete(sw.run_dir(r) / stage)) return true;
    }
  }
  return false;
}

// Records the runs whose processes ended (complete, stopped or failed) and forgets their processes.
void reap_ended(Sweep& sw, Children& ch, bool stopping, SweepOutcome& outcome) {
  for (auto it = ch.running.begin(); it != ch.running.end();) {
    int status = 0;
    const pid_t done = ::waitpid(it->first, &status, WNOHANG);
    if (done == 0) {
      ++it;
      continue;
    }
    const size_t i = it->second;
    const double secs = seconds_since(ch.started[it->first]);
    const bool exited = done == it->first && WIFEXITED(status);
    const bool ok = exited && WEXITSTATUS(status) == kExitOk;
    const bool stopped = exited && WEXITSTATUS(status) == kExitStopped;  // a signal reached the child alone
    const fs::path log_file = sw.run_dir(i) / "pipeline.log";
    if (ok && run_finished(sw.run_dir(i))) {
      finish_run(sw, i, "complete", secs);
      ++outcome.complete;
    } else if (ok || stopped || stopping) {
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
    ch.gpu_of.erase(it->first);
    ch.started.erase(it->first);
    it = ch.running.erase(it);
  }
}

// The GPU with the fewest runs on it (the first such in `gpus`); "" when there is no GPU.
std::string least_loaded_gpu(const std::vector<std::string>& gpus, const std::map<pid_t, std::string>& gpu_of) {
  std::string gpu;
  if (!gpus.empty()) {
    std::map<std::string, int> load;
    for (const auto& g : gpus) load[g] = 0;
    for (const auto& [pid, g] : gpu_of) ++load[g];
    gpu = gpus[0];
    for (const auto& g : gpus)
      if (load[g] < load[gpu]) gpu = g;
  }
  return gpu;
}

// Starts, in sweep order, the pending runs that need not wait, while fewer than --jobs run.
void start_ready(Sweep& sw, std::vector<size_t>& pending, Children& ch, const SweepOptions& options,
                 const std::vector<std::string>& gpus) {
  for (auto it = pending.begin(); it != pending.end() && static_cast<int64_t>(ch.running.size()) < options.jobs;) {
    if (must_wait(sw, *it, ch.running)) {
      ++it;
      continue;
    }
    const size_t i = *it;
    start_run(sw, i);
    const std::string gpu = least_loaded_gpu(gpus, ch.gpu_of);
    const pid_t pid = spawn_pipeline(options.executable, sw.run_dir(i), gpu);
    ch.running[pid] = i;
    ch.gpu_of[pid] = gpu;
    ch.started[pid] = std::chrono::steady_clock::now();
    log(fmt::format("{}: running as process {}{}; log: {}", sw.spec.settings[i].run_name, pid,
                    gpu.empty() ? "" : " on GPU " + gpu, (sw.run_dir(i) / "pipeline.log").string()));
    it = pending.erase(it);
  }
}

}  // namespace

void run_parallel(Sweep& sw, const std::vector<size_t>& todo, const SweepOptions& options, SweepOutcome& outcome) {
  const std::vector<std::string> gpus = visible_gpus();
  log(fmt::format("{} setting(s) to run, up to {} at once{}", todo.size(), options.jobs,
                  gpus.empty() ? " (no GPU: on the CPU)" : fmt::format(" over GPU(s) {}", fmt::join(gpus, ","))));
  std::vector<size_t> pending = todo;
  Children ch;
  g_stop.store(0);
  auto old_int = std::signal(SIGINT, on_stop);
  auto old_term = std::signal(SIGTERM, on_stop);
  auto old_hup = std::signal(SIGHUP, on_stop);  // a closed terminal stops the sweep as train's runs stop
  bool stopping = false;
  try {
    while (!pending.empty() || !ch.running.empty()) {
      reap_ended(sw, ch, stopping, outcome);
      if (g_stop.load() != 0 && !stopping) {
        stopping = true;
        log("stopping: asking the running pipelines to stop (they resume with the same command)");
        for (const auto& [pid, i] : ch.running) ::kill(pid, SIGTERM);
      }
      if (stopping) {
        pending.clear();
        outcome.stopped = true;
      }
      start_ready(sw, pending, ch, options, gpus);
      if (!ch.running.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      else if (!pending.empty()) throw Error("sweep: internal error: settings wait with nothing running");
    }
  } catch (...) {
    for (const auto& [pid, i] : ch.running) ::kill(pid, SIGTERM);
    for (const auto& [pid, i] : ch.running) ::waitpid(pid, nullptr, 0);
    std::signal(SIGINT, old_int);
    std::signal(SIGTERM, old_term);
    std::signal(SIGHUP, old_hup);
    throw;
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  std::signal(SIGHUP, old_hup);
}

}  // namespace mt::sweep
