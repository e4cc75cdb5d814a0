// Options and --data reading shared by generate and score (see input_command.h).
#include "trainer/cli/input_command.h"

#include "trainer/cli/commands.h"

namespace mt::cli {

std::vector<OptionSpec> input_command_options(const std::vector<OptionSpec>& own) {
  std::vector<OptionSpec> spec = model_options();
  for (auto& o : text_options()) spec.push_back(o);
  spec.insert(spec.end(), own.begin(), own.end());
  return spec;
}

CommandInputs read_command_inputs(const Args& args) {
  args.require("model");
  const std::string data = args.require("data");
  CommandInputs inputs;
  inputs.batch_size = args.get_int("batch-size", 8);
  if (inputs.batch_size <= 0) throw UsageError("--batch-size must be positive");
  inputs.model = model_source_from_args(args);
  inputs.in = read_input_records(args, data, inputs.model.text);
  return inputs;
}

}  // namespace mt::cli
