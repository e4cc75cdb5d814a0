// The resume rule: which keys differ between a run's saved config and the resumed one and may not
// (every key not marked resume-safe in the schema; source lists compared entry by entry).
#include <fmt/format.h>

#include "trainer/config/key_def.h"

namespace mt {
using namespace config_detail;

namespace {

std::vector<std::string> incompatibilities(const PipelineConfig& saved, const PipelineConfig& resumed, bool train_only) {
  std::vector<std::string> lines;
  for (const auto& key : config_keys()) {
    if (key.resume_safe || (train_only && !key.read_by_train)) continue;
    const Value before = key.get(saved), after = key.get(resumed);
    if (key.kind != Kind::Sources) {
      if (render(before) != render(after))
        lines.push_back(fmt::format("{}: {} -> {}", key.path, render(before), render(after)));
      continue;
    }
    // Lists of sources: entry by entry, so the line names the field that changed.
    const auto& a = std::get<std::vector<DataSourceConfig>>(before);
    const auto& b = std::get<std::vector<DataSourceConfig>>(after);
    if (a.size() != b.size()) {
      auto entries = [](size_t n) { return fmt::format("{} entr{}", n, n == 1 ? "y" : "ies"); };
      lines.push_back(fmt::format("{}: {} -> {}", key.path, entries(a.size()), entries(b.size())));
      continue;
    }
    for (size_t i = 0; i < a.size(); ++i)
      for (const auto& source_key : source_keys()) {
        if (source_key.resume_safe) continue;
        const std::string x = render(source_key.get(a[i])), y = render(source_key.get(b[i]));
        if (x != y) lines.push_back(fmt::format("{}[{}].{}: {} -> {}", key.path, i, source_key.path, x, y));
      }
  }
  return lines;
}

}  // namespace

std::vector<std::string> resume_incompatibilities(const TrainConfig& saved, const TrainConfig& resumed) {
  PipelineConfig a, b;
  static_cast<TrainConfig&>(a) = saved;
  static_cast<TrainConfig&>(b) = resumed;
  return incompatibilities(a, b, true);
}

std::vector<std::string> resume_incompatibilities(const PipelineConfig& saved, const PipelineConfig& resumed) {
  return incompatibilities(saved, resumed, false);
}

}  // namespace mt
