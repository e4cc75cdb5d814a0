// `maintune train --config run.yaml [--set key=value | key=value]... [--run-dir DIR] [--resume auto|PATH]`:
// loads and checks the config, then runs the training loop. Exit 0 when the run is done; after a
// graceful stop on SIGTERM/SIGINT/SIGHUP (a checkpoint was saved) kExitStopped (75), with a resume command
// that works as pasted; 1 on bad input or a failed run; 2 on misuse (trainer/base/exit_codes.h).
#include <fmt/format.h>

#include <iostream>

#include "trainer/base/exit_codes.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/output.h"
#include "trainer/cli/run_config_options.h"
#include "trainer/config/config.h"
#include "trainer/loop/train.h"

namespace mt::cli {

namespace {

std::vector<OptionSpec> train_options() {
  std::vector<OptionSpec> spec =
      run_config_options("YAML run config (see 'maintune config --schema')",
                         "override a config key, e.g. --set training.max_steps=100 or bare training.max_steps=100 (repeatable)");
  spec.push_back({"resume", true, "auto (newest valid checkpoint of the run, if any) or a checkpoint folder", ""});
  return spec;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  const auto parsed = parse_command_line(
      argc, argv, train_options(),
      "usage: maintune train --config FILE [--set key=value | key=value]... [--run-dir DIR] [--resume auto|PATH]");
  if (!parsed) return 0;
  const Args& args = *parsed;
  require_config_or_set(args);
  const TrainConfig config = run_config_from_args(args);
  const TrainOutcome out = run_training(config, args.get("resume"));
  if (!out.main_rank) return out.interrupted ? kExitStopped : kExitOk;  // rank 0 reports for the job
  if (out.interrupted) {
    // RUN/config.yaml is the resolved config with every override applied and output.run_dir set.
    std::cerr << fmt::format("maintune train: stopped at step {} of {}; continue with: maintune train --config {} "
                             "--resume auto\n",
                             out.step, out.total_steps, shell_quoted((std::filesystem::path(config.output.run_dir) / "config.yaml").string()));
    return kExitStopped;
  }
  const std::string where = out.final_dir.empty() ? "" : ", model in " + out.final_dir.string();
  if (out.steps_this_run == 0)
    std::cerr << fmt::format("maintune train: the run had already finished at step {}{}\n", out.step, where);
  else
    std::cerr << fmt::format("maintune train: done, {} steps, last loss {:.4f}{}\n", out.step, out.last_loss, where);
  return 0;
}

int cmd_config(int argc, char** argv) {
  std::vector<OptionSpec> spec = {{"schema", false, "print every key with its type, default and documentation", ""}};
  for (auto& o : run_config_options("print this config resolved (defaults filled, paths absolute, overrides applied)",
                                    "override a config key, as --set key=value or bare key=value (repeatable)"))
    spec.push_back(o);
  const auto parsed = parse_command_line(argc, argv, spec, "usage: maintune config --schema | --config FILE [--set key=value | key=value]...");
  if (!parsed) return 0;
  const Args& args = *parsed;
  if (args.has("schema")) {
    out().write(format_config_schema());
    return 0;
  }
  if (!args.has("config") && args.get_all("set").empty() && !args.has("run-dir"))
    throw UsageError("give --schema, or --config FILE to print it resolved");
  out().write(pipeline_config_to_yaml(run_config_from_args(args)));
  return 0;
}

}  // namespace mt::cli
