// The run directory of a training run: created by rank 0 (with the temporary folders of
// interrupted checkpoint writes removed), the resume decision (which checkpoint, and whether its
// settings allow resuming with this config), and the resolved config.yaml.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "trainer/config/config.h"
#include "trainer/engine/checkpoint.h"

namespace mt {

// Prepares config.output.run_dir and returns the checkpoint to resume from, if any. `resume`: ""
// (a new run; refused when the run directory already holds checkpoints), "auto" (the newest valid
// checkpoint, or a fresh start when there is none), or a checkpoint folder. A checkpoint whose
// config.yaml differs in settings that change the run is refused (resume_incompatibilities).
std::optional<LoadedCheckpoint> open_run_dir(const TrainConfig& config, const std::string& resume, bool main_rank,
                                             const std::function<void(const std::string&)>& log);

// Writes RUN/config.yaml (the resolved config, as checkpoints also store it) atomically.
void write_run_config(const std::filesystem::path& run_dir, const std::string& config_yaml);

}  // namespace mt
