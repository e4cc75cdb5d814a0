// The run directory and the resume decision of a training run (see run_dir.h).
#include "trainer/loop/run_dir.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "models/atomic_file.h"
#include "models/error.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

using LogFn = std::function<void(const std::string&)>;

// "NAME.tmp.PID" (write_file_atomically), ".NAME.tmp-PID" (an export's folder) and "NAME.old-PID"
// (publish_directory's replaced folder): what a kill during a write leaves.
bool is_interrupted_write(const std::string& name) {
  const auto pid_after = [&](const std::string& marker) {
    const size_t at = name.rfind(marker);
    if (at == std::string::npos || at == 0) return false;
    const std::string pid = name.substr(at + marker.size());
    return !pid.empty() && std::all_of(pid.begin(), pid.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  return pid_after(".tmp.") || pid_after(".old-") || (name[0] == '.' && pid_after(".tmp-"));
}

void remove_interrupted_writes(const fs::path& dir, const LogFn& log) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!is_interrupted_write(name) && !(dir.filename() == "checkpoints" && name.rfind(".tmp-", 0) == 0)) continue;
    fs::remove_all(e.path(), ec);
    if (log) log(fmt::format("removed {}, left by an interrupted write", e.path().string()));
  }
}

std::optional<LoadedCheckpoint> checkpoint_to_resume(const fs::path& run_dir, const std::string& resume,
                                                     const LogFn& log) {
  std::optional<LoadedCheckpoint> ckpt;
  if (resume == "auto") {
    ckpt = load_latest_checkpoint(run_dir, log);
    if (!ckpt) log(fmt::format("resume: no valid checkpoint in {}; starting from step 0", run_dir.string()));
  } else if (!resume.empty()) {
    ckpt = load_checkpoint(resume);
  } else if (has_checkpoints(run_dir)) {
    throw Error(fmt::format("{} already holds checkpoints of a run: pass --resume auto to continue it, or choose "
                            "another --run-dir", run_dir.string()));
  }
  return ckpt;
}

// The world size the checkpoint's run had (its data cursor's; 1 for a cursor without one).
int64_t saved_world_size(const LoadedCheckpoint& ckpt) {
  const nlohmann::json& cursor = ckpt.state.data_cursor;
  if (!cursor.is_object() || !cursor.contains("world_size")) return 1;
  if (!cursor["world_size"].is_number_integer() || cursor["world_size"].get<int64_t>() < 1)
    throw Error(fmt::format("{}: the data cursor's world_size must be a positive integer, got {}",
                            (ckpt.dir / "trainer_state.json").string(), cursor["world_size"].dump()));
  return cursor["world_size"].get<int64_t>();
}

void check_resume_compatible(const LoadedCheckpoint& ckpt, const TrainConfig& config, int64_t world_size) {
  const TrainConfig saved = load_train_config(ckpt.dir / "config.yaml");
  const std::vector<std::string> diff = resume_incompatibilities(saved, config, saved_world_size(ckpt), world_size);
  if (!diff.empty()) {
    std::string lines;
    for (const auto& d : diff) lines += "\n  " + d;
    throw Error(fmt::format("cannot resume {}: these settings differ from the checkpoint's and would change the "
                            "run:{}\n(change them back, or start a new run directory)", ckpt.dir.string(), lines));
  }
}

}  // namespace

std::unique_ptr<DirLock> lock_run_dir(const fs::path& run_dir, const LogFn& log) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw Error(fmt::format("{}: cannot create the run directory: {}", run_dir.string(), ec.message()));
  auto lock = std::make_unique<DirLock>(run_dir, "run directory");
  remove_interrupted_writes(run_dir, log);
  if (fs::is_directory(run_dir / "checkpoints")) remove_interrupted_writes(run_dir / "checkpoints", log);
  return lock;
}

std::optional<LoadedCheckpoint> open_run_dir(const TrainConfig& config, const std::string& resume, int64_t world_size,
                                             const LogFn& log) {
  const fs::path run_dir = config.output.run_dir;
  std::optional<LoadedCheckpoint> ckpt = checkpoint_to_resume(run_dir, resume, log);
  if (ckpt) {
    check_resume_compatible(*ckpt, config, world_size);
    const int64_t saved_world = saved_world_size(*ckpt);
    std::string geometry;
    if (saved_world != world_size)
      geometry = fmt::format(", saved by {} rank{} and resumed by {}: the data continues after the rows consumed",
                             saved_world, saved_world == 1 ? "" : "s", world_size);
    log(fmt::format("resuming from {} (step {}){}", ckpt->dir.string(), ckpt->state.step, geometry));
  }
  return ckpt;
}

void write_run_config(const fs::path& run_dir, const std::string& config_yaml) {
  write_text_file_atomically(run_dir / "config.yaml", config_yaml);
}

}  // namespace mt
