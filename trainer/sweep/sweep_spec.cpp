// The sweep file (see sweep.h): load_sweep_spec reads its YAML and checks it as named steps - the
// top-level keys (name, base), `set:`, `list:`, `grid:`, a key fixed and swept, `metrics:` - then
// expands the settings (sweep_settings.h). Every error is "FILE:LINE:COL: <where>: what is wrong".
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/depthguard.h>  // YAML::DeepRecursion (not in yaml.h)
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "models/error.h"
#include "models/read_file.h"
#include "trainer/sweep/sweep.h"
#include "trainer/sweep/sweep_metrics.h"
#include "trainer/sweep/sweep_settings.h"

namespace mt {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kTopLevelKeys = {"name", "base", "set", "grid", "list", "metrics"};
// Keys the sweep itself sets for every run.
const std::vector<std::string> kSweepOwnedKeys = {"output.run_dir"};
// A sweep file is a few KB; one near this is not one.
constexpr size_t kMaxSweepFileBytes = size_t{16} << 20;
// Each setting is a pipeline run: far more than anyone runs, and expanding 10^10 would exhaust memory.
constexpr size_t kMaxSweepSettings = 10000;

struct SweepFile {
  std::string file;

  std::string at(const YAML::Mark& mark) const {
    if (mark.is_null() || mark.line < 0) return file;
    return fmt::format("{}:{}:{}", file, mark.line + 1, mark.column + 1);
  }
  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& what) const { throw Error(at(mark) + ": " + what); }
};

// "" when `key` names a config key a setting may set: a config_schema() path ("final.alpha"), or an
// entry of a list of sources or a key of one ("data.sources[0]", "data.sources[0].format");
// otherwise what is wrong with it.
std::string config_key_problem(const std::string& key) {
  const auto& schema = config_schema();
  std::vector<std::string> paths;
  for (const auto& k : schema) paths.push_back(k.path);
  auto find = [&](const std::string& path) -> const ConfigKeyDoc* {
    for (const auto& k : schema)
      if (k.path == path) return &k;
    return nullptr;
  };
  if (std::find(kSweepOwnedKeys.begin(), kSweepOwnedKeys.end(), key) != kSweepOwnedKeys.end())
    return fmt::format("'{}' is set by the sweep (each run's folder under DIR/runs)", key);
  const size_t bracket = key.find('[');
  if (bracket == std::string::npos) {
    if (key.find('.') != std::string::npos && find(key) != nullptr) return "";
    return fmt::format("'{}' is not a config key{}; see 'maintune config --schema'", key, did_you_mean_hint(key, paths));
  }
  const std::string list = key.substr(0, bracket);
  const size_t close = key.find(']', bracket);
  const std::string index = close == std::string::npos ? "" : key.substr(bracket + 1, close - bracket - 1);
  const ConfigKeyDoc* def = find(list);
  if (def == nullptr || def->type != "list of sources")
    return fmt::format("'{}' is not a config key: {} is not a list of sources", key, list);
  if (index.empty() || !std::all_of(index.begin(), index.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return fmt::format("'{}' is not a config key: expected {}[N] with N an entry's index", key, list);
  const std::string rest = key.substr(close + 1);
  if (rest.empty()) return "";
  if (rest[0] == '.' && find("data.sources[]." + rest.substr(1)) != nullptr) return "";
  std::vector<std::string> fields;
  for (const auto& k : schema)
    if (k.path.rfind("data.sources[].", 0) == 0) fields.push_back(k.path.substr(15));
  return fmt::format("'{}' is not a config key: a source has no key '{}'{}", key, rest.substr(rest[0] == '.' ? 1 : 0),
                     did_you_mean_hint(rest.substr(rest[0] == '.' ? 1 : 0), fields));
}

void check_key(const SweepFile& sf, const YAML::Node& key_node, const std::string& where, const std::string& key) {
  if (const std::string problem = config_key_problem(key); !problem.empty())
    sf.fail(key_node.Mark(), fmt::format("{}: {}", where, problem));
}

// A value as the YAML text of a --set override; a quoted scalar stays a quoted string.
std::string value_text(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  if (node.IsScalar() && node.Tag() == "!")
    out << YAML::DoubleQuoted << node.Scalar();
  else
    out << node;
  return out.c_str();
}

// A config key's value as a setting holds it, placed at the value (or at the key when it is empty).
SweepValue sweep_value(const SweepFile& sf, const std::string& key, const YAML::Node& k, const YAML::Node& v) {
  return {key, value_text(v), sf.at(v.Mark().is_null() ? k.Mark() : v.Mark())};
}

// Calls fn(key name, key node, value node) for each entry of a map, refusing non-name and repeated
// keys (yaml-cpp keeps both entries of a repeated key).
template <typename Fn>
void for_each_entry(const SweepFile& sf, const YAML::Node& map, const std::string& where, Fn&& fn) {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    const YAML::Node key = entry.first, value = entry.second;
    if (!key.IsScalar()) sf.fail(key.Mark(), fmt::format("{}a key must be a name", where));
    if (!seen.insert(key.Scalar()).second)
      sf.fail(key.Mark(), fmt::format("{}'{}' is given twice", where, key.Scalar()));
    fn(key.Scalar(), key, value);
  }
}

// The sections of the sweep file that hold settings, each with where its key is.
struct Sections {
  std::optional<YAML::Node> grid, list, set, metrics;  // given or not
  std::map<std::string, YAML::Mark> key_marks;
  // Where a section's value is, or its key when the value is empty ("list:" with nothing after it).
  YAML::Mark mark_of(const YAML::Node& value, const std::string& name) const {
    return value.Mark().is_null() || value.IsNull() ? key_marks.at(name) : value.Mark();
  }
};

YAML::Node parse_sweep_yaml(const SweepFile& sf, const fs::path& file) {
  const std::string text = read_file(file, "the sweep file", kMaxSweepFileBytes);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    sf.fail(e.mark, "invalid YAML: nested too deeply");
  } catch (const YAML::Exception& e) {
    sf.fail(e.mark, "invalid YAML: " + e.msg);
  }
  if (!root.IsMap())
    sf.fail(root.Mark(), "a sweep file is a map with base:, grid: and/or list: (and optionally set:, metrics:, name:)");
  return root;
}

// `base:`, resolved against the sweep file's folder; it must be a file.
fs::path read_base(const SweepFile& sf, const fs::path& file, const YAML::Node& key, const YAML::Node& value) {
  if (!value.IsScalar() || value.Scalar().empty())
    sf.fail(key.Mark(), "base: expected the path of the base config (relative to the sweep file)");
  const fs::path base = fs::path(value.Scalar());
  const fs::path resolved = (base.is_absolute() ? base : fs::absolute(file).parent_path() / base).lexically_normal();
  std::error_code ec;
  if (!fs::is_regular_file(resolved, ec)) sf.fail(value.Mark(), fmt::format("base: {} is not a file", resolved.string()));
  return resolved;
}

// The top-level keys in file order: name: and base: into the spec, the other sections kept for
// the steps after; an unknown key or a missing base: is an error.
Sections read_top_level(const SweepFile& sf, const YAML::Node& root, const fs::path& file, SweepSpec& spec) {
  Sections sections;
  bool have_base = false;
  for_each_entry(sf, root, "", [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
    sections.key_marks[name] = key.Mark();
    if (name == "name") {
      if (!value.IsScalar()) sf.fail(key.Mark(), "name: expected a string");
      spec.name = value.Scalar();
    } else if (name == "base") {
      spec.base = read_base(sf, file, key, value);
      have_base = true;
    } else if (name == "set") {
      sections.set = value;
    } else if (name == "grid") {
      sections.grid = value;
    } else if (name == "list") {
      sections.list = value;
    } else if (name == "metrics") {
      sections.metrics = value;
    } else {
      sf.fail(key.Mark(), fmt::format("unknown key '{}'{}; a sweep file has {}", name, did_you_mean_hint(name, kTopLevelKeys),
                                      fmt::join(kTopLevelKeys, ", ")));
    }
  });
  if (!have_base) sf.fail(root.Mark(), "base: missing (the base config the settings override)");
  return sections;
}

// `set:`: the keys fixed for every setting, in file order.
void read_fixed(const SweepFile& sf, const Sections& sections, SweepSpec& spec) {
  if (!sections.set) return;
  const YAML::Node& set = *sections.set;
  if (!set.IsMap()) sf.fail(sections.mark_of(set, "set"), "set: expected a map of config keys to values");
  for_each_entry(sf, set, "set: ", [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) {
    check_key(sf, k, "set", key);
    spec.fixed.push_back(sweep_value(sf, key, k, v));
  });
}

// `list:`: each entry's values; its keys join spec.swept_keys.
std::vector<std::vector<SweepValue>> read_list(const SweepFile& sf, const Sections& sections, SweepSpec& spec) {
  std::vector<std::vector<SweepValue>> list_entries;
  if (!sections.list) return list_entries;
  const YAML::Node& list = *sections.list;
  if (!list.IsSequence() || list.size() == 0)
    sf.fail(sections.mark_of(list, "list"), "list: expected a non-empty list of settings (maps of config keys to values)");
  for (size_t e = 0; e < list.size(); ++e) {
    const YAML::Node entry = list[e];
    const std::string where = fmt::format("list[{}]", e);
    if (!entry.IsMap() || entry.size() == 0)
      sf.fail(entry.Mark(), fmt::format("{}: expected a non-empty map of config keys to values", where));
    std::vector<SweepValue> values;
    for_each_entry(sf, entry, where + ": ", [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) {
      check_key(sf, k, where, key);
      values.push_back(sweep_value(sf, key, k, v));
      if (std::find(spec.swept_keys.begin(), spec.swept_keys.end(), key) == spec.swept_keys.end())
        spec.swept_keys.push_back(key);
    });
    list_entries.push_back(std::move(values));
  }
  return list_entries;
}

// `grid:`: one axis of values per key, in file order; a key no list entry sets.
std::vector<std::vector<SweepValue>> read_grid(const SweepFile& sf, const Sections& sections, SweepSpec& spec) {
  std::vector<std::vector<SweepValue>> grid_axes;
  if (!sections.grid) return grid_axes;
  const YAML::Node& grid = *sections.grid;
  if (!grid.IsMap() || grid.size() == 0)
    sf.fail(sections.mark_of(grid, "grid"), "grid: expected a map of config keys to lists of values");
  for_each_entry(sf, grid, "grid: ", [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) {
    check_key(sf, k, "grid", key);
    if (!v.IsSequence())
      sf.fail(v.Mark().is_null() ? k.Mark() : v.Mark(), fmt::format("grid: {}: expected a list of values, e.g. {}: [a, b]", key, key));
    if (v.size() == 0) sf.fail(v.Mark(), fmt::format("grid: {}: an empty list (give at least one value)", key));
    if (std::find(spec.swept_keys.begin(), spec.swept_keys.end(), key) != spec.swept_keys.end())
      sf.fail(k.Mark(), fmt::format("grid: {}: also set by a list entry; sweep a key in one of them", key));
    std::vector<SweepValue> axis;
    for (const auto& item : v) axis.push_back({key, value_text(item), sf.at(item.Mark())});
    grid_axes.push_back(std::move(axis));
    spec.swept_keys.push_back(key);
  });
  return grid_axes;
}

void check_fixed_not_swept(const SweepSpec& spec) {
  for (const auto& f : spec.fixed)
    if (std::find(spec.swept_keys.begin(), spec.swept_keys.end(), f.key) != spec.swept_keys.end())
      throw Error(fmt::format("{}: set: {}: also swept (grid: or list:); a key is either fixed or swept", f.place, f.key));
}

// `metrics:`, or accuracy, heldout_nll and precision.
void read_metrics(const SweepFile& sf, const Sections& sections, SweepSpec& spec) {
  if (!sections.metrics) {
    spec.metrics = {"accuracy", "heldout_nll", "precision"};
    return;
  }
  const YAML::Node& metrics = *sections.metrics;
  if (!metrics.IsSequence() || metrics.size() == 0)
    sf.fail(sections.mark_of(metrics, "metrics"), "metrics: expected a non-empty list of metric names");
  for (const auto& m : metrics) {
    if (!m.IsScalar() || !sweep::is_metric(m.Scalar()))
      sf.fail(m.Mark(), fmt::format("metrics: '{}' is not a metric; metrics are {} or a column such as "
                                    "final.mutual.accuracy, final.mutual.heldout_nll, filter.mutual.precision",
                                    m.IsScalar() ? m.Scalar() : std::string("(not a name)"),
                                    fmt::join(sweep::short_metric_names(), ", ")));
    spec.metrics.push_back(m.Scalar());
  }
}

// Refuses more than kMaxSweepSettings settings before they are expanded (the product may overflow).
void check_setting_count(const SweepFile& sf, size_t list_size, const std::vector<std::vector<SweepValue>>& grid_axes) {
  std::vector<std::string> factors;
  if (list_size > 0) factors.push_back(fmt::format("{} list entries", list_size));
  double count = list_size > 0 ? static_cast<double>(list_size) : 1.0;
  for (const auto& axis : grid_axes) {
    factors.push_back(fmt::format("{}", axis.size()));
    count *= static_cast<double>(axis.size());
  }
  if (count > static_cast<double>(kMaxSweepSettings))
    sf.fail(YAML::Mark::null_mark(), fmt::format("{:.0f} settings ({}), more than the {} a sweep may have", count,
                                                  fmt::join(factors, " x "), kMaxSweepSettings));
}

}  // namespace

SweepSpec load_sweep_spec(const fs::path& file) {
  const SweepFile sf{file.string()};
  const YAML::Node root = parse_sweep_yaml(sf, file);
  SweepSpec spec;
  spec.file = file;
  spec.name = file.stem().string();
  const Sections sections = read_top_level(sf, root, file, spec);
  read_fixed(sf, sections, spec);
  std::vector<std::vector<SweepValue>> list_entries = read_list(sf, sections, spec);
  const std::vector<std::vector<SweepValue>> grid_axes = read_grid(sf, sections, spec);
  if (grid_axes.empty() && list_entries.empty()) sf.fail(root.Mark(), "nothing to sweep: give grid: and/or list:");
  check_fixed_not_swept(spec);
  read_metrics(sf, sections, spec);
  check_setting_count(sf, list_entries.size(), grid_axes);
  spec.settings = sweep::expand_settings(std::move(list_entries), grid_axes);
  return spec;
}

}  // namespace mt
