// The maintune subcommands. Each takes the arguments after its name, prints its results to stdout
// (JSONL) and its progress to stderr, and returns the process exit code.
#pragma once
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "models/checkpoint_dir.h"
#include "trainer/cli/args.h"

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
// Loads the model the options name. On CPU the default dtype is fp32 (exact), on CUDA bfloat16.
LoadedModel load_model_from_args(const Args& args);

// Checks one input line's token ids against the model: non-empty, inside [0, vocab). Errors start
// with `where` ("FILE:LINE") and name `field`.
void check_token_ids(const std::vector<int64_t>& ids, const ModelConfig& config, const std::string& where,
                     const char* field);

}  // namespace mt::cli
