// The maintune subcommands. Each takes the arguments after its name, prints its results to stdout
// (JSONL) and its progress to stderr, and returns the process exit code.
#pragma once
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "models/checkpoint_dir.h"
#include "trainer/cli/args.h"
#include "trainer/cli/text_options.h"
#include "trainer/engine/alignment.h"
#include "trainer/loop/checkpoint_model.h"

namespace mt::cli {

int cmd_generate(int argc, char** argv);
int cmd_score(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_config(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_pipeline(int argc, char** argv);
int cmd_sweep(int argc, char** argv);
int cmd_export(int argc, char** argv);
int cmd_launch(int argc, char** argv);
int cmd_data(int argc, char** argv);

// --device, the same for every command that takes it: auto (the default: cuda:0 when CUDA is
// available, else cpu, as model.device: auto in a config), cpu, cuda (= cuda:0) or cuda:N. An
// unknown name is misuse (UsageError); cuda without a device there is an mt::Error.
OptionSpec device_option();
c10::Device device_from_args(const Args& args);
// --dtype (`default_name` when absent) as parse_dtype_option reads it (nullopt = "auto"); a bad name
// is misuse.
std::optional<at::ScalarType> dtype_from_args(const Args& args, const std::string& default_name);

// Shared by the model-using subcommands: --model, --device, --dtype.
std::vector<OptionSpec> model_options();

// What --model names (resolve_model_path: a HF model dir, a checkpoint, a checkpoints/latest
// pointer or a run directory), found before the input is read (no weight is read), so that text
// inputs use its tokenizer: a model dir's own, a checkpoint's run's tokenizer and chat template
// (read_checkpoint_run), as its export carries them. A checkpoint, or a path that stood for
// another folder, is said on stderr.
struct ModelSource {
  ModelPath path;
  std::optional<CheckpointRun> checkpoint;
  TextDefaults text;
};
ModelSource model_source_from_args(const Args& args);

struct CommandModel {
  LoadedModel loaded;
  std::optional<AlignmentScorer> scorer;  // with_scorer only; nullopt when the source holds none
};
// Loads the model `source` names with --device / --dtype; on CPU the default dtype is fp32
// (exact), on CUDA bfloat16. A checkpoint gives what its export gives (checkpoint_as_loaded_model).
// `with_scorer`: also the alignment scorer, on the model's device: a model dir's
// alignment_scorer.safetensors, a checkpoint's own heads.
CommandModel load_model_from_args(const Args& args, const ModelSource& source, bool with_scorer = false);

// Checks one input line's token ids against the model: non-empty, inside [0, vocab). Errors start
// with `where` ("FILE:LINE") and name `field`.
void check_token_ids(const std::vector<int64_t>& ids, const ModelConfig& config, const std::string& where,
                     const char* field);

}  // namespace mt::cli
