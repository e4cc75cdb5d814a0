// --config FILE, --set key=value (repeatable; a bare key=value argument is the same) and --run-dir
// DIR: how train, pipeline and config name the run config they load (trainer/config/config.h).
#pragma once
#include <string>
#include <vector>

#include "trainer/cli/args.h"
#include "trainer/config/config.h"

namespace mt::cli {

// The three options in that order; only the help of --config and --set differs between commands.
std::vector<OptionSpec> run_config_options(const std::string& config_help, const std::string& set_help);

// Misuse (UsageError) unless --config or some --set names the config.
void require_config_or_set(const Args& args);

// `s` as one word for a POSIX shell, so a printed resume command works when pasted: unchanged when
// it has only safe characters, else in single quotes (a quote inside as '\'').
std::string shell_quoted(const std::string& s);

// The config the options name: file + --set overrides + --run-dir (as output.run_dir); train keeps
// its TrainConfig part.
PipelineConfig run_config_from_args(const Args& args);

}  // namespace mt::cli
