// A training checkpoint as a model to run: what `--model PATH` names (a Hugging Face model dir, a
// checkpoint folder, a checkpoints/latest pointer or a run directory), and a checkpoint read the
// way `maintune export --checkpoint` reads it (its weights, the run's model config, generation
// defaults, tokenizer and chat template from the config.yaml it saved), so that running a
// checkpoint gives what running its export gives.
#pragma once
#include <c10/core/ScalarType.h>

#include <filesystem>
#include <string>

#include "models/checkpoint_dir.h"
#include "models/transformer.h"
#include "trainer/config/config.h"
#include "trainer/engine/alignment.h"

namespace mt {

// What a --model path holds, told apart without reading weights. In this order:
//   a folder with config.json                 a HF model dir (as before checkpoints were accepted)
//   a folder with trainer_state.json          a checkpoint (RUN/checkpoints/step_NNNNNNN)
//   a `latest` pointer file, or a folder      the checkpoint the pointer names
//     holding one (RUN/checkpoints)
//   a run directory (final/ or checkpoints/)  final/ when it holds config.json, else the run's
//                                             latest checkpoint (latest_checkpoint_dir)
// Anything else is an mt::Error naming the path and saying what was expected.
struct ModelPath {
  bool is_checkpoint = false;
  std::filesystem::path dir;  // the HF model dir, or the checkpoint folder
  std::string resolved;       // how `dir` was found from the path given ("" when it is that path)
};
ModelPath resolve_model_path(const std::filesystem::path& path);

// A checkpoint's run as its config.yaml says (no tensor is read): where export takes the model
// config and generation defaults (model.path), the tokenizer (model.tokenizer, else model.path) and
// the chat template (data.template, or detected from that tokenizer).
struct CheckpointRun {
  std::filesystem::path dir;  // the checkpoint folder
  TrainConfig config;
  std::filesystem::path model_path, tokenizer_path;
  std::string chat_template;  // "" = none
};
CheckpointRun read_checkpoint_run(const std::filesystem::path& checkpoint_dir);

// A checkpoint loaded (and validated, load_checkpoint) as export reads it.
struct CheckpointModel {
  CheckpointRun run;
  Transformer master;             // the checkpoint's weights as stored, on CPU
  GenerationDefaults generation;  // of model.path, as the run had them (before export_generation)
  AlignmentScorer scorer;         // the checkpoint's alignment heads; undefined when it holds none
  at::ScalarType export_dtype = at::kFloat;  // output.export_dtype resolved
};
CheckpointModel load_checkpoint_model(const std::filesystem::path& checkpoint_dir);

// The model running the checkpoint's export gives, without writing it: the weights rounded to the
// export dtype, then in `dtype` (nullopt = the export dtype, as a load of the export keeps it) on
// `device`; the generation defaults export writes. `dir` is model.path (where the generation
// defaults come from, for messages).
LoadedModel checkpoint_as_loaded_model(const CheckpointModel& ckpt, c10::Device device,
                                       std::optional<at::ScalarType> dtype);

}  // namespace mt
