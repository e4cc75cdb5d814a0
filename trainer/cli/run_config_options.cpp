// The run-config options of train, pipeline and config (see run_config_options.h).
#include "trainer/cli/run_config_options.h"

namespace mt::cli {

std::vector<OptionSpec> run_config_options(const std::string& config_help, const std::string& set_help) {
  return {
      {"config", true, config_help, ""},
      {"set", true, set_help, "", /*bare_key_value=*/true},
      {"run-dir", true, "run directory (overrides output.run_dir)", ""},
  };
}

void require_config_or_set(const Args& args) {
  if (!args.has("config") && args.get_all("set").empty())
    throw UsageError("--config is required (or give every key with --set)");
}

PipelineConfig run_config_from_args(const Args& args) {
  std::vector<std::string> overrides = args.get_all("set");
  if (args.has("run-dir")) overrides.push_back("output.run_dir=" + args.get("run-dir"));
  return load_pipeline_config(args.get("config"), overrides);
}

}  // namespace mt::cli
