// The run directory and the resume decision of a training run (see run_dir.h).
#include "trainer/loop/run_dir.h"

#include <fmt/format.h>

#include <vector>

#include "models/atomic_file.h"
#include "models/error.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

using LogFn = std::function<void(const std::string&)>;

void prepare_run_dir(const fs::path& run_dir) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw Error(fmt::format("{}: cannot create the run directory: {}", run_dir.string(), ec.message()));
  // Temporary folders of checkpoint writes that a kill interrupted.
  if (fs::is_directory(run_dir / "checkpoints"))
    for (const auto& e : fs::directory_iterator(run_dir / "checkpoints"))
      if (e.path().filename().string().rfind(".tmp-", 0) == 0) fs::remove_all(e.path(), ec);
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

void check_resume_compatible(const LoadedCheckpoint& ckpt, const TrainConfig& config) {
  const TrainConfig saved = load_train_config(ckpt.dir / "config.yaml");
  const std::vector<std::string> diff = resume_incompatibilities(saved, config);
  if (!diff.empty()) {
    std::string lines;
    for (const auto& d : diff) lines += "\n  " + d;
    throw Error(fmt::format("cannot resume {}: these settings differ from the checkpoint's and would change the "
                            "run:{}\n(change them back, or start a new run directory)", ckpt.dir.string(), lines));
  }
}

}  // namespace

std::optional<LoadedCheckpoint> open_run_dir(const TrainConfig& config, const std::string& resume, bool main_rank,
                                             const LogFn& log) {
  const fs::path run_dir = config.output.run_dir;
  if (main_rank) prepare_run_dir(run_dir);
  std::optional<LoadedCheckpoint> ckpt = checkpoint_to_resume(run_dir, resume, log);
  if (ckpt) {
    check_resume_compatible(*ckpt, config);
    log(fmt::format("resuming from {} (step {})", ckpt->dir.string(), ckpt->state.step));
  }
  return ckpt;
}

void write_run_config(const fs::path& run_dir, const std::string& config_yaml) {
  write_text_file_atomically(run_dir / "config.yaml", config_yaml);
}

}  // namespace mt
