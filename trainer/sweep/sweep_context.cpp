// The sweep's shared state and helpers (see sweep_context.h).
#include "trainer/sweep/sweep_context.h"

#include <algorithm>
#include <cstdio>

#include "models/atomic_file.h"
#include "trainer/method/pipeline.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"
#include "trainer/sweep/sweep_report.h"

namespace mt::sweep {

void log(const std::string& line) {
  std::fprintf(stderr, "sweep: %s\n", line.c_str());
  std::fflush(stderr);
}

void add_unique(std::vector<std::string>& list, const std::string& item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

bool run_finished(const fs::path& run_dir) { return fs::exists(run_dir / kReportDir / kReportSummaryFile); }

void Sweep::save() {
  write_text_file_atomically(dir / "sweep.json", record.dump(2) + "\n");
  write_sweep_summary(dir, spec, configs, record);
}

Sweep open_sweep(const SweepSpec& spec, const fs::path& sweep_dir) {
  Sweep sw{spec, fs::absolute(sweep_dir).lexically_normal(), {}, {}, {}, {}};
  sw.configs = sweep_configs(spec, sw.dir);
  for (const auto& c : sw.configs) sw.keys.push_back(pipeline_stage_keys(c));
  return sw;
}

}  // namespace mt::sweep
