// Training checkpoints: RUN/checkpoints/step_NNNNNNN/ holding the master weights (safetensors, HF
// names), the optimizer state, RNG states, trainer_state.json (counters, data cursor, schedule,
// metrics position) and the resolved config.yaml. Written into a temporary folder, fsynced and
// renamed, then the `latest` pointer is replaced and old checkpoints beyond keep_last removed, so a
// kill at any moment leaves the previous checkpoint loadable.
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/transformer.h"
#include "trainer/engine/optimizer.h"

namespace mt {

// Format 2 records a hash of trainer_state.json's own content and of config.yaml (format 1, still
// read, covered the tensor files only: a flipped bit in the data cursor resumed another run).
constexpr int kCheckpointFormat = 2;

// Counters and positions of a run, saved with each checkpoint.
struct TrainerState {
  int64_t step = 0;                   // optimizer steps done (skipped ones included)
  int64_t tokens_seen = 0;            // non-padding input tokens over all ranks
  int64_t target_tokens_seen = 0;     // trained-on tokens over all ranks
  int64_t skipped_steps = 0;          // steps skipped for a NaN/Inf loss or gradient
  int64_t consecutive_nonfinite = 0;
  int64_t metrics_bytes = 0;          // metrics.jsonl length at this step (resume truncates to it)
  nlohmann::json data_cursor;         // DataLoader::state()
  nlohmann::json schedule;            // the LrSchedule in force
  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& j, const std::string& source);
};

// "step_0000042"
std::string checkpoint_name(int64_t step);

// Writes RUN/checkpoints/step_N atomically and returns its path. `config_yaml` is the resolved
// config. Errors (disk full, unwritable folder) are mt::Error; the temporary folder is removed and
// earlier checkpoints and `latest` are untouched. Old checkpoints beyond keep_last (0 = keep all)
// are removed after the new one is in place.
// `extra_weights` (the alignment scorer's heads) are stored in the weights file beside the model's.
std::filesystem::path save_checkpoint(const std::filesystem::path& run_dir, const TrainerState& state,
                                      const Transformer& master, const AdamW& optimizer,
                                      const std::string& config_yaml, int64_t keep_last,
                                      const std::vector<std::pair<std::string, at::Tensor>>& extra_weights = {});

struct LoadedCheckpoint {
  std::filesystem::path dir;
  TrainerState state;
  std::map<std::string, at::Tensor> weights;        // CPU, as stored
  std::map<std::string, at::Tensor> optimizer_state;
  nlohmann::json optimizer_meta;
  std::map<std::string, at::Tensor> rng;            // "cpu", "cuda" (when saved)
  std::string config_yaml;
};

// Checks a checkpoint folder without loading tensors (files present, JSON well-formed, safetensors
// headers and sizes valid); throws mt::Error saying what is damaged.
void validate_checkpoint(const std::filesystem::path& dir);
LoadedCheckpoint load_checkpoint(const std::filesystem::path& dir);

// The newest valid checkpoint of a run (by step number), loaded (validated once, by
// load_checkpoint); damaged newer ones are reported through `warn` and skipped. nullopt when there
// is none.
std::optional<LoadedCheckpoint> load_latest_checkpoint(const std::filesystem::path& run_dir,
                                                       const std::function<void(const std::string&)>& warn);

// True when RUN/checkpoints holds any step_N folder, valid or not (no file is read).
bool has_checkpoints(const std::filesystem::path& run_dir);

// True when `dir` holds a trainer_state.json: a checkpoint folder, valid or not (no file is read).
bool is_checkpoint_dir(const std::filesystem::path& dir);

// The checkpoint folder a `latest` pointer file (RUN/checkpoints/latest, holding "step_NNNNNNN")
// names, beside the pointer. A pointer that holds no step name, or names a folder that is not
// there, is an mt::Error naming the pointer.
std::filesystem::path checkpoint_from_pointer(const std::filesystem::path& pointer_file);

// A run's latest checkpoint folder: the one RUN/checkpoints/latest names, else (no pointer) the
// newest step_N folder; nullopt when the run has none. Nothing is validated.
std::optional<std::filesystem::path> latest_checkpoint_dir(const std::filesystem::path& run_dir);

// RNG states of the default generators (CPU; CUDA when available) and their restoration.
std::map<std::string, at::Tensor> capture_rng_states();
void restore_rng_states(const std::map<std::string, at::Tensor>& states);

}  // namespace mt
