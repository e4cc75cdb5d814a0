// `maintune train --config run.yaml [--set key=value]... [--run-dir DIR] [--resume auto|PATH]`:
// loads and checks the config, then runs the training loop. Exit 0 also after a graceful stop on
// SIGTERM/SIGINT (a checkpoint was saved); 1 on bad input or a failed run; 2 on misuse.
#include <fmt/format.h>

#include <iostream>

#include "trainer/cli/commands.h"
#include "trainer/config/config.h"
#include "trainer/loop/train.h"

namespace mt::cli {

namespace {

const std::vector<OptionSpec> kTrainOptions = {
    {"config", true, "YAML run config (see 'maintune config --schema')", ""},
    {"set", true, "override a config key, e.g. --set training.max_steps=100 (repeatable)", ""},
    {"run-dir", true, "run directory (overrides output.run_dir)", ""},
    {"resume", true, "auto (newest valid checkpoint of the run, if any) or a checkpoint folder", ""},
};

}  // namespace

// The config a training-like command runs with: file + --set overrides + --run-dir.
TrainConfig train_config_from_args(const Args& args) {
  std::vector<std::string> overrides = args.get_all("set");
  if (args.has("run-dir")) overrides.push_back("output.run_dir=" + args.get("run-dir"));
  return load_train_config(args.get("config"), overrides);
}

int cmd_train(int argc, char** argv) {
  const Args args = parse_args(argc, argv, kTrainOptions);
  if (args.help) {
    std::cout << format_help("usage: maintune train --config FILE [--set key=value]... [--run-dir DIR] [--resume auto|PATH]",
                             kTrainOptions);
    return 0;
  }
  if (!args.has("config") && args.get_all("set").empty())
    throw UsageError("--config is required (or give every key with --set)");
  const TrainConfig config = train_config_from_args(args);
  const TrainOutcome out = run_training(config, args.get("resume"));
  if (out.interrupted) {
    std::cerr << fmt::format("maintune train: stopped at step {} of {}; continue with: maintune train --config {} "
                             "--run-dir {} --resume auto\n",
                             out.step, out.total_steps, args.get("config", "..."), config.output.run_dir);
    return 0;
  }
  const std::string where = out.final_dir.empty() ? "" : ", model in " + out.final_dir.string();
  if (out.steps_this_run == 0)
    std::cerr << fmt::format("maintune train: the run had already finished at step {}{}\n", out.step, where);
  else
    std::cerr << fmt::format("maintune train: done, {} steps, last loss {:.4f}{}\n", out.step, out.last_loss, where);
  return 0;
}

int cmd_config(int argc, char** argv) {
  const std::vector<OptionSpec> spec = {
      {"schema", false, "print every key with its type, default and documentation", ""},
      {"config", true, "print this config resolved (defaults filled, paths absolute, overrides applied)", ""},
      {"set", true, "override a config key (repeatable)", ""},
      {"run-dir", true, "run directory (overrides output.run_dir)", ""},
  };
  const Args args = parse_args(argc, argv, spec);
  if (args.help) {
    std::cout << format_help("usage: maintune config --schema | --config FILE [--set key=value]...", spec);
    return 0;
  }
  if (args.has("schema")) {
    std::cout << format_config_schema();
    return 0;
  }
  if (!args.has("config") && args.get_all("set").empty() && !args.has("run-dir"))
    throw UsageError("give --schema, or --config FILE to print it resolved");
  std::cout << train_config_to_yaml(train_config_from_args(args));
  return 0;
}

}  // namespace mt::cli
