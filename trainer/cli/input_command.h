// The shared prologue of the commands that run a model over JSONL input records (generate, score):
// their options and the reading of --data, after which each goes its own way.
#pragma once
#include <cstdint>
#include <vector>

#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/text_options.h"

namespace mt::cli {

// model_options(), text_options(), then the command's own options, in that order (as --help lists them).
std::vector<OptionSpec> input_command_options(const std::vector<OptionSpec>& own);

// --model and --data required (misuse otherwise, in that order), --batch-size (default 8) positive,
// --model resolved (model_source_from_args), then the records of --data (read_input_records) with
// its text defaults.
struct CommandInputs {
  ModelSource model;
  InputRecords in;
  int64_t batch_size = 0;
};
CommandInputs read_command_inputs(const Args& args);

}  // namespace mt::cli
