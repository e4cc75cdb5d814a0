// `maintune sweep --dry-run` (see describe_sweep_plan in sweep.h): each setting, its run folder, its
// state, and the stages it would copy from which run, assuming the runs before it finish. Reads the
// sweep folder; writes nothing.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <utility>

#include "trainer/base/jsonl.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"
#include "trainer/sweep/stage_reuse.h"
#include "trainer/sweep/sweep.h"
#include "trainer/sweep/sweep_context.h"
#include "trainer/sweep/sweep_report.h"
#include "trainer/sweep/sweep_settings.h"

namespace mt {
namespace sweep {
namespace {

// Run name -> its status in DIR/sweep.json, from an earlier invocation.
std::map<std::string, std::string> recorded_statuses(const fs::path& dir) {
  const json before = read_json_or_null(dir / "sweep.json");
  std::map<std::string, std::string> recorded_status;
  if (before.is_object() && before.contains("runs") && before["runs"].is_array())
    for (const auto& r : before["runs"])
      if (r.is_object() && r.contains("run") && r.contains("status")) recorded_status[r["run"]] = r["status"];
  return recorded_status;
}

// Stage key -> the run that has it finished on disk (the first in sweep order).
std::map<std::string, std::string> finished_stage_providers(Sweep& sw) {
  std::map<std::string, std::string> provider;
  for (size_t j = 0; j < sw.spec.settings.size(); ++j)
    if (const StageKeys* k = keys_of_saved_run(sw, j))
      for (const auto& [stage, key] : *k)
        if (stage_complete(sw.run_dir(j) / stage)) provider.emplace(key, sw.spec.settings[j].run_name);
  return provider;
}

// The "finished", "reuses" and "computes" lines of setting i: its stages in order, finished in its
// folder, then copied from a provider's run, then computed from the first it cannot copy on.
std::string describe_stages(Sweep& sw, size_t i, const std::map<std::string, std::string>& provider) {
  const SweepSetting& s = sw.spec.settings[i];
  std::vector<std::pair<std::string, std::string>> reuse;  // stage, from
  std::vector<std::string> has, computes;
  bool copying = true;
  for (const auto& [stage, key] : sw.keys[i]) {
    if (copying && stage_complete(sw.run_dir(i) / stage)) {
      has.push_back(stage);
      continue;
    }
    if (copying && !fs::exists(sw.run_dir(i) / stage))
      if (auto p = provider.find(key); p != provider.end() && p->second != s.run_name) {
        reuse.emplace_back(stage, p->second);
        continue;
      }
    copying = false;
    computes.push_back(stage);
  }
  std::string out;
  if (!has.empty()) out += fmt::format("  finished:   {}\n", fmt::join(has, ", "));
  json reused = json::array();
  for (const auto& [stage, from] : reuse) reused.push_back({{"stage", stage}, {"from", from}});
  out += fmt::format("  reuses:     {}\n", reused.empty() ? std::string("nothing") : describe_reused_stages(reused));
  out += fmt::format("  computes:   {}\n", computes.empty() ? std::string("nothing (the report only)") : fmt::format("{}", fmt::join(computes, ", ")));
  return out;
}

// Setting i's paragraph. A setting still to run becomes the provider of its stage keys for the
// settings after it.
std::string describe_setting(Sweep& sw, size_t i, const std::map<std::string, std::string>& recorded_status,
                             std::map<std::string, std::string>& provider) {
  const SweepSetting& s = sw.spec.settings[i];
  std::vector<std::string> values;
  for (const auto& v : s.values) values.push_back(v.key + "=" + v.value);
  std::string out = fmt::format("\n[{}/{}] {}\n  setting:    {}\n  run folder: {}\n", s.index, sw.spec.settings.size(),
                                s.run_name, fmt::join(values, " "), sw.run_dir(i).string());
  const auto it = recorded_status.find(s.run_name);
  if (it != recorded_status.end() && it->second == "complete" && run_finished(sw.run_dir(i)))
    return out + "  state:      complete (skipped)\n";
  out += fmt::format("  state:      {}\n", fs::exists(sw.run_dir(i) / kPipelineConfigFile) ? "started (resumes)" : "new");
  out += describe_stages(sw, i, provider);
  for (const auto& [stage, key] : sw.keys[i]) provider.emplace(key, s.run_name);
  return out;
}

}  // namespace
}  // namespace sweep

std::string describe_sweep_plan(const SweepSpec& spec, const std::filesystem::path& sweep_dir) {
  using namespace sweep;
  Sweep sw = open_sweep(spec, sweep_dir);
  const std::map<std::string, std::string> recorded_status = recorded_statuses(sw.dir);
  // Stage key -> the run that has it finished (on disk) or will (an earlier setting, once it ran).
  std::map<std::string, std::string> provider = finished_stage_providers(sw);
  std::string out = fmt::format("sweep {}: {} setting(s) from {} over base {}; run directory {}\n", spec.name,
                                spec.settings.size(), spec.file.string(), spec.base.string(), sw.dir.string());
  if (!spec.fixed.empty()) out += fmt::format("fixed: {}\n", fmt::join(fixed_overrides(spec), " "));
  for (size_t i = 0; i < spec.settings.size(); ++i) out += describe_setting(sw, i, recorded_status, provider);
  return out;
}

}  // namespace mt
