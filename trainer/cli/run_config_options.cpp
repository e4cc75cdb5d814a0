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

std::string shell_quoted(const std::string& s) {
  const bool safe = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                      "0123456789_-./=:,+@%") == std::string::npos;
  if (safe) return s;
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

PipelineConfig run_config_from_args(const Args& args) {
  std::vector<std::string> overrides = args.get_all("set");
  if (args.has("run-dir")) overrides.push_back("output.run_dir=" + args.get("run-dir"));
  return load_pipeline_config(args.get("config"), overrides);
}

}  // namespace mt::cli
