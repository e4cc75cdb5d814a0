// `maintune export --checkpoint RUN/checkpoints/step_N --out DIR [--dtype D]`: an intermediate
// checkpoint as a Hugging Face model directory with the same files as the run's final/ (weights,
// config, generation config with the end-of-turn stop, tokenizer files with the chat template, the
// alignment scorer when trained), so any step can be served or evaluated (trainer/loop/export.h).
#include <fmt/format.h>

#include <iostream>

#include "trainer/cli/commands.h"
#include "trainer/loop/export.h"

namespace mt::cli {

int cmd_export(int argc, char** argv) {
  const std::vector<OptionSpec> spec = {
      {"checkpoint", true, "a checkpoint folder of a run (RUN/checkpoints/step_NNNNNNN)", ""},
      {"out", true, "the model directory to write (must not exist, or be empty)", ""},
      {"dtype", true, "weights dtype: auto (the run's output.export_dtype), bf16, fp16 or fp32", "auto"},
  };
  const auto parsed =
      parse_command_line(argc, argv, spec, "usage: maintune export --checkpoint RUN/checkpoints/step_N --out DIR [--dtype D]");
  if (!parsed) return 0;
  const Args& args = *parsed;
  const std::string checkpoint = args.require("checkpoint");
  const std::string out = args.require("out");
  const auto written = export_checkpoint(checkpoint, out, dtype_from_args(args, "auto"));
  std::cerr << fmt::format("maintune export: {} written from {}\n", written.string(), checkpoint);
  return 0;
}

}  // namespace mt::cli
