// `maintune data preview --config RUN.yaml [--set key=value]... [--n 3] [--first I] [--tokens]
// [--color auto|always|never] [--world-size W]`: the training data of a run config as training
// would see it, examples with the loss mask marked and the statistics of lengths, truncation and
// packing (trainer/loop/data_preview.h). Nothing is trained and no run directory is made.
#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "trainer/cli/commands.h"
#include "trainer/cli/output.h"
#include "trainer/cli/run_config_options.h"
#include "trainer/loop/data_preview.h"

namespace mt::cli {

namespace {

const char* kDataUsage =
    "usage: maintune data preview --config FILE [--set key=value | key=value]... [options]\n"
    "\n"
    "Subcommands:\n"
    "  preview   the training data as a run renders it: examples with the trained-on tokens marked,\n"
    "            token counts, lengths, truncation and packing (run 'maintune data preview --help')\n";

bool color_from_args(const Args& args) {
  const std::string c = args.get("color", "auto");
  if (c == "always") return true;
  if (c == "never") return false;
  if (c != "auto") throw UsageError(fmt::format("--color must be auto, always or never, got '{}'", c));
  return ::isatty(STDOUT_FILENO) == 1;
}

int cmd_data_preview(int argc, char** argv) {
  std::vector<OptionSpec> spec =
      run_config_options("YAML run config whose data to preview",
                         "override a config key, as --set key=value or bare key=value (repeatable)");
  spec.push_back({"n", true, "examples shown (0: statistics only)", "3"});
  spec.push_back({"first", true, "the first example shown, in the order the sources give them", "0"});
  spec.push_back({"tokens", false, "also every token of each example shown: position, id, target, piece", ""});
  spec.push_back({"color", true, "mark trained-on tokens in colour: auto (when stdout is a terminal), always, never; "
                                 "else they are inside [[ ]]",
                  "auto"});
  spec.push_back({"world-size", true, "ranks the run will have, for batches per epoch", "1"});
  const auto parsed = parse_command_line(argc, argv, spec,
                                         "usage: maintune data preview --config FILE [--set key=value | key=value]... "
                                         "[--n N] [--first I] [--tokens] [--color auto|always|never] [--world-size W]");
  if (!parsed) return 0;
  const Args& args = *parsed;
  require_config_or_set(args);
  PreviewOptions options;
  options.count = args.get_int("n", 3);
  options.first = args.get_int("first", 0);
  options.world_size = args.get_int("world-size", 1);
  if (options.count < 0 || options.first < 0 || options.world_size < 1)
    throw UsageError("--n and --first must be non-negative, --world-size at least 1");
  options.tokens = args.has("tokens");
  options.color = color_from_args(args);
  const TrainConfig config = run_config_from_args(args);
  out().write(data_preview(config, options, [](const std::string& m) { std::cerr << "maintune: " << m << "\n"; }));
  return 0;
}

}  // namespace

int cmd_data(int argc, char** argv) {
  if (argc >= 1 && std::strcmp(argv[0], "preview") == 0) return cmd_data_preview(argc - 1, argv + 1);
  if (argc >= 1 && (std::strcmp(argv[0], "--help") == 0 || std::strcmp(argv[0], "-h") == 0)) {
    out().write(kDataUsage);
    return 0;
  }
  throw UsageError(argc == 0 ? "give a subcommand: preview" : fmt::format("unknown data subcommand '{}'; known: preview", argv[0]));
}

}  // namespace mt::cli
