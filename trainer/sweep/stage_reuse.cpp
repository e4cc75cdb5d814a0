// Stage reuse between the runs of a sweep (see stage_reuse.h).
#include "trainer/sweep/stage_reuse.h"

#include <fmt/format.h>

#include <optional>

#include "models/atomic_file.h"
#include "models/error.h"
#include "trainer/base/jsonl.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"
#include "trainer/method/stage_keys.h"

namespace mt::sweep {
namespace {

// In a stage folder the sweep copied: the run it came from.
constexpr const char* kCopiedFromFile = "sweep_copied_from.json";

// Another run of the sweep whose `stage` is complete and has `key` (the first in sweep order).
std::optional<size_t> finished_stage_source(Sweep& sw, size_t i, const std::string& stage, const std::string& key) {
  for (size_t j = 0; j < sw.spec.settings.size(); ++j) {
    if (j == i || !stage_complete(sw.run_dir(j) / stage)) continue;
    const StageKeys* k = keys_of_saved_run(sw, j);
    if (k == nullptr) continue;
    for (const auto& [s, kk] : *k)
      if (s == stage && kk == key) return j;
  }
  return std::nullopt;
}

}  // namespace

bool is_copy_in_progress(const fs::path& p) {
  const std::string name = p.filename().string();
  const std::string suffix = ".sweep-copy";
  return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

json copied_stages(const fs::path& run_dir, const StageKeys& keys) {
  json out = json::array();
  for (const auto& [stage, key] : keys) {
    const json from = read_json_or_null(run_dir / stage / kCopiedFromFile);
    if (from.is_object() && from.contains("from")) out.push_back({{"stage", stage}, {"from", from["from"]}});
  }
  return out;
}

const StageKeys* keys_of_saved_run(Sweep& sw, size_t j) {
  if (auto it = sw.saved_keys.find(j); it != sw.saved_keys.end()) return &it->second;
  const fs::path saved = sw.run_dir(j) / kPipelineConfigFile;
  if (!fs::exists(saved)) return nullptr;
  try {
    return &(sw.saved_keys[j] = pipeline_stage_keys(load_pipeline_config(saved)));
  } catch (const Error& e) {  // not a run to copy from; its own turn reports the problem
    log(fmt::format("{}: not used as a source of stages: {}", sw.run_dir(j).string(), e.what()));
    return nullptr;
  }
}

json copy_shared_stages(Sweep& sw, size_t i) {
  const fs::path run = sw.run_dir(i);
  std::vector<fs::path> interrupted;  // copies a kill cut short
  for (const auto& entry : fs::directory_iterator(run))
    if (is_copy_in_progress(entry.path())) interrupted.push_back(entry.path());
  for (const auto& p : interrupted) fs::remove_all(p);
  json copied = json::array();
  for (const auto& [stage, key] : sw.keys[i]) {
    const fs::path dst = run / stage;
    if (stage_complete(dst)) continue;
    if (fs::exists(dst)) break;  // started here: the pipeline resumes it
    const auto source = finished_stage_source(sw, i, stage, key);
    if (!source) break;
    const fs::path src = sw.run_dir(*source) / stage, tmp = run / (stage + ".sweep-copy");
    try {
      fs::copy(src, tmp, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
      // Where the stage came from travels with it, so the record survives a kill after the rename.
      write_text_file_atomically(tmp / kCopiedFromFile,
                                 json{{"from", sw.spec.settings[*source].run_name}, {"stage_key", key}}.dump() + "\n");
      fs::rename(tmp, dst);
      fsync_directory(run);
    } catch (const fs::filesystem_error& e) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      throw Error(fmt::format("{}: cannot copy the finished stage from {}: {}", dst.string(), src.string(), e.what()));
    }
    copied.push_back({{"stage", stage}, {"from", sw.spec.settings[*source].run_name}});
  }
  return copied;
}

}  // namespace mt::sweep
