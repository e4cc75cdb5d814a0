// `maintune sweep --config SWEEP.yaml --run-dir DIR [--jobs N] [--dry-run]`: an ablation sweep of
// MAIN pipeline runs over config keys (trainer/sweep/sweep.h, docs/sweeps.md). Exit 0 when every setting
// finished; kExitStopped (75) when the sweep was stopped by a signal (the same command resumes); 1 on
// bad input or when a setting failed; 2 on misuse.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "trainer/base/exit_codes.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/output.h"
#include "trainer/sweep/sweep.h"

namespace mt::cli {

int cmd_sweep(int argc, char** argv) {
  const std::vector<OptionSpec> spec = {
      {"config", true, "YAML sweep file: base config, set:, grid: and/or list: (docs/sweeps.md)", ""},
      {"run-dir", true, "the sweep's folder: runs/, cache/, sweep.json, summary.csv, summary.md, plots/", ""},
      {"jobs", true,
       "settings run at once at most, as child processes (a setting waits while a running one computes a stage "
       "it shares), each on the GPU with the fewest runs when there are GPUs",
       "1"},
      {"dry-run", false, "print each setting, its run folder and the stages it would reuse, and run nothing", ""},
  };
  const auto parsed = parse_command_line(argc, argv, spec, "usage: maintune sweep --config SWEEP.yaml --run-dir DIR [--jobs N] [--dry-run]");
  if (!parsed) return 0;
  const Args& args = *parsed;
  const std::string file = args.require("config");
  const std::string run_dir = args.require("run-dir");
  const int64_t jobs = args.get_int("jobs", 1);
  if (jobs < 1) throw UsageError(fmt::format("--jobs must be at least 1, got {}", jobs));
  const SweepSpec sweep = load_sweep_spec(file);
  if (args.has("dry-run")) {
    out().write(describe_sweep_plan(sweep, run_dir));
    return 0;
  }
  SweepOptions options;
  options.run_dir = run_dir;
  options.jobs = jobs;
  std::error_code ec;
  options.executable = std::filesystem::read_symlink("/proc/self/exe", ec);
  const SweepOutcome out = run_sweep(sweep, options);
  const std::filesystem::path summary = std::filesystem::path(run_dir) / "summary.md";
  if (out.stopped) {
    std::cerr << fmt::format("maintune sweep: stopped; continue with: maintune sweep --config {} --run-dir {}\n", file,
                             run_dir);
    return out.failed > 0 ? kExitError : kExitStopped;
  }
  std::cerr << fmt::format("maintune sweep: {} of {} setting(s) complete ({} skipped as finished before){}; summary in {}\n",
                           out.complete, sweep.settings.size(), out.skipped,
                           out.failed > 0 ? fmt::format(", {} failed", out.failed) : "", summary.string());
  return out.failed > 0 ? 1 : 0;
}

}  // namespace mt::cli
