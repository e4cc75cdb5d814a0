// A sweep's settings (see sweep_settings.h and sweep.h): the grid expanded into settings and run
// names, each setting's overrides and run folder, and its resolved, checked config.
#include "trainer/sweep/sweep_settings.h"

#include <fmt/format.h>

#include <cctype>
#include <cstring>

#include "models/error.h"
#include "trainer/method/pipeline.h"

namespace mt {

namespace fs = std::filesystem;

namespace sweep {

// The index, then key=value pairs with brackets and quotes left out and every other run of
// characters outside [A-Za-z0-9._=-] replaced by one '-' ("final.models=[none, mutual]" ->
// "final.models=none-mutual"), at most 100 characters of them.
std::string make_run_name(int64_t index, const std::vector<SweepValue>& values) {
  std::string text;
  for (const auto& v : values) text += (text.empty() ? "" : " ") + v.key + "=" + v.value;
  std::string name;
  for (const char c : text) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '=' || c == '-';
    if (ok) name += c;
    else if (std::strchr("[]{}\"'", c) != nullptr) continue;
    else if (!name.empty() && name.back() != '-') name += '-';
  }
  while (!name.empty() && name.back() == '-') name.pop_back();
  if (name.size() > 100) name.resize(100);
  return fmt::format("{:03d}-{}", index, name);
}

std::vector<SweepSetting> expand_settings(std::vector<std::vector<SweepValue>> list_entries,
                                          const std::vector<std::vector<SweepValue>>& grid_axes) {
  std::vector<SweepSetting> settings;
  if (list_entries.empty()) list_entries.emplace_back();
  size_t points = 1;
  for (const auto& axis : grid_axes) points *= axis.size();
  for (const auto& entry : list_entries)
    for (size_t p = 0; p < points; ++p) {
      SweepSetting s;
      s.index = static_cast<int64_t>(settings.size()) + 1;
      s.values = entry;
      std::vector<SweepValue> chosen(grid_axes.size());
      size_t rest = p;
      for (size_t a = grid_axes.size(); a-- > 0;) {
        chosen[a] = grid_axes[a][rest % grid_axes[a].size()];
        rest /= grid_axes[a].size();
      }
      s.values.insert(s.values.end(), chosen.begin(), chosen.end());
      s.run_name = make_run_name(s.index, s.values);
      settings.push_back(std::move(s));
    }
  return settings;
}

std::vector<std::string> fixed_overrides(const SweepSpec& spec) {
  std::vector<std::string> out;
  for (const auto& v : spec.fixed) out.push_back(v.key + "=" + v.value);
  return out;
}

}  // namespace sweep

std::vector<std::string> sweep_overrides(const SweepSpec& spec, const SweepSetting& setting) {
  std::vector<std::string> out = sweep::fixed_overrides(spec);
  for (const auto& v : setting.values) out.push_back(v.key + "=" + v.value);
  return out;
}

fs::path sweep_run_dir(const fs::path& sweep_dir, const SweepSetting& setting) {
  return fs::absolute(sweep_dir).lexically_normal() / "runs" / setting.run_name;
}

std::vector<PipelineConfig> sweep_configs(const SweepSpec& spec, const fs::path& sweep_dir) {
  const fs::path overrides_dir = fs::absolute(spec.file).parent_path();
  const std::string file = spec.file.string();
  try {
    (void)load_pipeline_config(spec.base);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: base: {}", file, e.what()));
  }
  bool sets_cache_dir = false;
  for (const auto& v : spec.fixed) sets_cache_dir |= v.key == "data.cache_dir";
  for (const auto& k : spec.swept_keys) sets_cache_dir |= k == "data.cache_dir";
  std::vector<PipelineConfig> configs;
  for (const auto& s : spec.settings) {
    const std::vector<std::string> overrides = sweep_overrides(spec, s);
    PipelineConfig config;
    try {
      config = load_pipeline_config(spec.base, overrides, overrides_dir);
    } catch (const Error& e) {
      // Name the value that is refused: the first override whose addition fails.
      std::vector<SweepValue> values = spec.fixed;
      values.insert(values.end(), s.values.begin(), s.values.end());
      std::vector<std::string> prefix;
      for (const auto& v : values) {
        prefix.push_back(v.key + "=" + v.value);
        try {
          (void)load_pipeline_config(spec.base, prefix, overrides_dir);
        } catch (const Error& first) {
          throw Error(fmt::format("{}: {}: {} (setting {}, run {})", v.place, v.key, first.what(), s.index, s.run_name));
        }
      }
      throw Error(fmt::format("{}: setting {} (run {}): {}", file, s.index, s.run_name, e.what()));
    }
    config.output.run_dir = sweep_run_dir(sweep_dir, s).string();
    if (!sets_cache_dir && config.data.cache_dir.empty())
      config.data.cache_dir = (fs::absolute(sweep_dir).lexically_normal() / "cache").string();
    try {
      check_pipeline_config(config);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: setting {} (run {}): {}", file, s.index, s.run_name, e.what()));
    }
    configs.push_back(std::move(config));
  }
  return configs;
}

}  // namespace mt
