// The run directory of a training run: created and locked by rank 0 (with the leftovers of
// interrupted writes removed), the resume decision (which checkpoint, and whether its
// settings allow resuming with this config), and the resolved config.yaml.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "trainer/base/file_lock.h"

#include "trainer/config/config.h"
#include "trainer/engine/checkpoint.h"

namespace mt {

// Creates `run_dir` when missing and takes its lock (a second process on it is refused, naming the
// holder's pid), then removes what interrupted writes left there: checkpoints/.tmp-* folders, an
// unpublished .final.tmp-* or .final.old-* and FILE.tmp.PID files. The lock is held until the result
// is destroyed; only the process holding it may remove leftovers, since a live writer's are not.
std::unique_ptr<DirLock> lock_run_dir(const std::filesystem::path& run_dir,
                                      const std::function<void(const std::string&)>& log);

// The checkpoint to resume from, if any. `resume`: ""
// (a new run; refused when the run directory already holds checkpoints), "auto" (the newest valid
// checkpoint, or a fresh start when there is none), or a checkpoint folder. A checkpoint whose
// config.yaml differs in settings that change the run is refused (resume_incompatibilities at
// `world_size` ranks: the batch keys may change when the global batch does not).
std::optional<LoadedCheckpoint> open_run_dir(const TrainConfig& config, const std::string& resume, int64_t world_size,
                                             const std::function<void(const std::string&)>& log);

// Writes RUN/config.yaml (the resolved config, as checkpoints also store it) atomically.
void write_run_config(const std::filesystem::path& run_dir, const std::string& config_yaml);

}  // namespace mt
