// `maintune pipeline --config main.yaml [--set key=value | key=value]... [--run-dir DIR] [--resume]`: the MAIN
// pipeline end to end (trainer/method/pipeline.h). Exit 0 when done; kExitStopped (75) when stopped by a
// signal (resumable, with a command that works as pasted); 1 on bad input or a failed stage; 2 on misuse.
#include <fmt/format.h>

#include <iostream>

#include "trainer/base/exit_codes.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/run_config_options.h"
#include "trainer/method/pipeline.h"
#include "trainer/method/run_layout.h"

namespace mt::cli {

int cmd_pipeline(int argc, char** argv) {
  std::vector<OptionSpec> spec =
      run_config_options("YAML pipeline config (see configs/demo.yaml and 'maintune config --schema')",
                         "override a config key, e.g. --set rounds.count=0 or bare rounds.count=0 (repeatable)");
  spec.push_back({"resume", false, "continue the run in the run directory at its first unfinished stage (or start one there)", ""});
  const auto parsed =
      parse_command_line(argc, argv, spec, "usage: maintune pipeline --config FILE [--set key=value | key=value]... [--run-dir DIR] [--resume]");
  if (!parsed) return 0;
  const Args& args = *parsed;
  require_config_or_set(args);
  const PipelineConfig config = run_config_from_args(args);
  const PipelineOutcome out = run_pipeline(config, args.has("resume"));
  if (!out.complete) {
    // The run's saved config holds every override and output.run_dir.
    std::cerr << fmt::format("maintune pipeline: stopped; continue with: maintune pipeline --config {} --resume\n",
                             shell_quoted((out.run_dir / kPipelineConfigFile).string()));
    return kExitStopped;
  }
  std::cerr << fmt::format("maintune pipeline: done; report in {}\n", out.report.string());
  return 0;
}

}  // namespace mt::cli
