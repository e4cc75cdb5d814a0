// The sweep's summary (see sweep_report.h): CSV by hand (RFC 4180 quoting), Markdown tables, and
// line charts of each chosen metric against each swept key, one series per metric column and per
// combination of the other swept keys' values.
#include "trainer/sweep/sweep_report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "models/atomic_file.h"
#include "trainer/base/jsonl.h"
#include "trainer/report/svg_plot.h"

namespace mt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void add_unique(std::vector<std::string>& list, const std::string& item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

// The filter rules stage 4 scores: filter.compare plus filter.rule (as the pipeline does).
std::vector<std::string> compared_rules(const TrainConfig& c) {
  std::vector<std::string> rules = c.filter.compare;
  if (std::find(rules.begin(), rules.end(), c.filter.rule) == rules.end()) rules.insert(rules.begin(), c.filter.rule);
  return rules;
}

std::string yaml_flow(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << node;
  return out.c_str();
}

// The value of `key` ("final.alpha", "data.sources[0].format") in a config's YAML; "" when absent.
std::string config_value(const YAML::Node& tree, const std::string& key) {
  YAML::Node node;
  node.reset(tree);
  size_t start = 0;
  while (start <= key.size()) {
    const size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    std::optional<size_t> index;
    if (const size_t b = part.find('['); b != std::string::npos) {
      index = static_cast<size_t>(std::strtoull(part.c_str() + b + 1, nullptr, 10));
      part = part.substr(0, b);
    }
    // reset(), not operator=: assigning a YAML::Node writes into the tree it refers to.
    if (!node.IsMap() || !node[part]) return "";
    node.reset(node[part]);
    if (index) {
      if (!node.IsSequence() || *index >= node.size()) return "";
      node.reset(node[*index]);
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return yaml_flow(node);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// A Markdown table cell: no pipes or newlines.
std::string md_cell(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

std::string file_part(const std::string& s) {
  std::string out;
  for (const char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '=' || c == '-' ? c : '_';
  return out;
}

std::optional<double> as_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// One setting's metrics: column -> value (null when not measured or not there yet).
std::map<std::string, json> run_metrics(const fs::path& run_dir, const std::vector<std::string>& columns, const json& run) {
  const json s5 = read_json_or_null(run_dir / "stage5_final" / "stage.json");
  json summary = read_json_or_null(run_dir / "report" / "summary.json");
  const json s4 = read_json_or_null(run_dir / "stage4_filter" / "stage.json");
  std::map<std::string, json> out;
  for (const auto& col : columns) {
    json v;
    const size_t a = col.find('.'), b = col.rfind('.');
    if (col == "kept") {
      if (summary.is_object()) v = summary.value("budget", json());
      else if (s4.is_object()) v = s4.value("budget", json());
    } else if (col == "seconds") {
      v = run.value("seconds", json());
      if (v.is_number() && v.get<double>() == 0.0 && run.value("status", "") != "complete") v = json();
    } else if (col.rfind("final.", 0) == 0 && s5.is_object()) {
      const std::string rule = col.substr(a + 1, b - a - 1), what = col.substr(b + 1);
      if (s5.contains("models") && s5["models"].contains(rule)) v = s5["models"][rule].value(what, json());
    } else if (col.rfind("filter.", 0) == 0) {
      const std::string rule = col.substr(a + 1, b - a - 1), what = col.substr(b + 1);
      if (summary.is_object() && summary.contains("filter") && summary["filter"].contains(rule))
        v = summary["filter"][rule].value(what, json());
      else if (s4.is_object() && s4.contains("rules") && s4["rules"].contains(rule))
        v = s4["rules"][rule].value(what, json());
    }
    out[col] = v.is_number() ? v : json();
  }
  return out;
}

std::string csv_number(const json& v) {
  if (!v.is_number()) return "";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return fmt::format("{}", v.get<double>());
}

std::string md_number(const std::string& column, const json& v) {
  if (!v.is_number()) return "n/a";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (column == "seconds") return fmt::format("{:.0f}", v.get<double>());
  return fmt::format("{:.4f}", v.get<double>());
}

}  // namespace

std::string describe_reused_stages(const json& reused) {
  if (!reused.is_array() || reused.empty()) return "";
  std::vector<std::string> parts;
  std::vector<std::string> stages;
  std::string from;
  auto flush = [&] {
    if (stages.empty()) return;
    const std::string list = stages.size() > 2 ? stages.front() + ".." + stages.back() : fmt::format("{}", fmt::join(stages, ", "));
    parts.push_back(fmt::format("{} from {}", list, from));
    stages.clear();
  };
  for (const auto& r : reused) {
    const std::string f = r.value("from", ""), stage = r.value("stage", "");
    if (f != from) {
      flush();
      from = f;
    }
    stages.push_back(stage);
  }
  flush();
  return fmt::format("{}", fmt::join(parts, "; "));
}

std::vector<std::string> sweep_metric_columns(const std::vector<TrainConfig>& configs) {
  std::vector<std::string> final_rules, filter_rules;
  for (const auto& c : configs) {
    for (const auto& r : c.final_tuning.models) add_unique(final_rules, r);
    for (const auto& r : compared_rules(c)) add_unique(filter_rules, r);
  }
  std::vector<std::string> columns;
  for (const auto& r : final_rules) {
    columns.push_back("final." + r + ".heldout_nll");
    columns.push_back("final." + r + ".accuracy");
  }
  for (const auto& r : filter_rules) columns.push_back("filter." + r + ".precision");
  columns.push_back("kept");
  columns.push_back("seconds");
  return columns;
}

std::vector<std::string> metric_columns_of(const std::string& metric, const std::vector<std::string>& columns) {
  std::vector<std::string> out;
  for (const auto& c : columns) {
    const std::string last = c.substr(c.rfind('.') + 1);
    if (c == metric || last == metric) out.push_back(c);
  }
  return out;
}

void write_sweep_summary(const fs::path& sweep_dir, const SweepSpec& spec, const std::vector<TrainConfig>& configs,
                         const json& record) {
  const std::vector<std::string> columns = sweep_metric_columns(configs);
  const json& runs = record.at("runs");
  const size_t n = spec.settings.size();
  // The swept keys' resolved values and the metrics of every setting.
  std::vector<std::vector<std::string>> values(n);
  std::vector<std::map<std::string, json>> metrics(n);
  for (size_t i = 0; i < n; ++i) {
    const YAML::Node tree = YAML::Load(train_config_to_yaml(configs[i]));
    for (const auto& key : spec.swept_keys) values[i].push_back(config_value(tree, key));
    metrics[i] = run_metrics(sweep_run_dir(sweep_dir, spec.settings[i]), columns, runs[i]);
  }

  // summary.csv
  std::vector<std::string> header = {"index", "run"};
  header.insert(header.end(), spec.swept_keys.begin(), spec.swept_keys.end());
  header.push_back("status");
  for (const auto& c : columns)
    if (c != "seconds") header.push_back(c);
  header.push_back("reused");
  header.push_back("seconds");
  std::string csv;
  auto csv_row = [&](const std::vector<std::string>& fields) {
    std::string line;
    for (size_t f = 0; f < fields.size(); ++f) line += (f > 0 ? "," : "") + csv_field(fields[f]);
    csv += line + "\n";
  };
  csv_row(header);
  for (size_t i = 0; i < n; ++i) {
    std::vector<std::string> row = {std::to_string(spec.settings[i].index), spec.settings[i].run_name};
    row.insert(row.end(), values[i].begin(), values[i].end());
    row.push_back(runs[i].value("status", ""));
    for (const auto& c : columns)
      if (c != "seconds") row.push_back(csv_number(metrics[i][c]));
    row.push_back(describe_reused_stages(runs[i].value("reused", json::array())));
    row.push_back(csv_number(metrics[i]["seconds"]));
    csv_row(row);
  }
  write_text_file_atomically(sweep_dir / "summary.csv", csv);

  // plots/<metric>-vs-<key>.svg
  std::vector<std::string> plots;
  fs::create_directories(sweep_dir / "plots");
  std::vector<std::vector<std::string>> own_columns(n);  // the columns each setting's own config has
  for (size_t i = 0; i < n; ++i) own_columns[i] = sweep_metric_columns({configs[i]});
  for (const auto& metric : spec.metrics) {
    std::vector<std::string> cols = metric_columns_of(metric, columns);
    if (cols.empty()) continue;
    // When every setting has one final model, "accuracy" is that model's accuracy whichever rule
    // it is: one column, so settings with different final.models fall on one line.
    if (cols.size() > 1 && std::all_of(own_columns.begin(), own_columns.end(), [&](const auto& own) {
          return metric_columns_of(metric, own).size() <= 1;
        })) {
      for (size_t i = 0; i < n; ++i) {
        const auto own = metric_columns_of(metric, own_columns[i]);
        metrics[i][metric] = own.empty() ? json() : metrics[i][own.front()];
      }
      cols = {metric};
    }
    for (size_t k = 0; k < spec.swept_keys.size(); ++k) {
      // x: the key's values as numbers, or their positions in sweep order.
      std::vector<std::string> distinct;
      for (size_t i = 0; i < n; ++i) add_unique(distinct, values[i][k]);
      const bool numeric = std::all_of(distinct.begin(), distinct.end(), [](const std::string& v) { return as_number(v).has_value(); });
      auto x_of = [&](const std::string& v) {
        return numeric ? *as_number(v)
                       : static_cast<double>(std::find(distinct.begin(), distinct.end(), v) - distinct.begin());
      };
      // Groups: the values of the other swept keys that vary on their own. A key set together with
      // this one (a list entry's filter.rule and final.models) is no group: each group would be one point.
      auto follows_key = [&](size_t o) {
        std::map<std::string, std::string> seen;
        for (size_t i = 0; i < n; ++i)
          if (!seen.emplace(values[i][k], values[i][o]).second && seen[values[i][k]] != values[i][o]) return false;
        return true;
      };
      std::vector<size_t> group_keys;
      for (size_t o = 0; o < spec.swept_keys.size(); ++o)
        if (o != k && !follows_key(o)) group_keys.push_back(o);
      std::vector<std::string> groups;
      std::vector<std::string> group_of(n);
      for (size_t i = 0; i < n; ++i) {
        std::vector<std::string> others;
        for (const size_t o : group_keys) others.push_back(spec.swept_keys[o] + "=" + values[i][o]);
        group_of[i] = fmt::format("{}", fmt::join(others, " "));
        add_unique(groups, group_of[i]);
      }
      struct Line {
        std::string column, group;
        PlotSeries series;
      };
      std::vector<Line> lines;
      for (const auto& col : cols)
        for (const auto& g : groups) {
          Line line{col, g, {}};
          std::vector<std::pair<double, double>> points;
          for (size_t i = 0; i < n; ++i)
            if (group_of[i] == g)
              points.emplace_back(x_of(values[i][k]),
                                  metrics[i][col].is_number() ? metrics[i][col].get<double>() : std::nan(""));
          std::stable_sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
          for (const auto& [x, y] : points) {
            line.series.x.push_back(x);
            line.series.values.push_back(y);
          }
          lines.push_back(std::move(line));
        }
      // A column a group's settings do not have (another final model) is no line; when nothing is
      // measured at all, the empty lines stay so the chart says so.
      auto has_point = [](const Line& l) {
        return std::any_of(l.series.values.begin(), l.series.values.end(), [](double v) { return std::isfinite(v); });
      };
      if (std::any_of(lines.begin(), lines.end(), has_point))
        lines.erase(std::remove_if(lines.begin(), lines.end(), [&](const Line& l) { return !has_point(l); }), lines.end());
      // Labels as short as tell the lines apart: the column, the other keys' values, or both.
      std::set<std::string> line_columns, line_groups;
      for (const auto& l : lines) {
        line_columns.insert(l.column);
        line_groups.insert(l.group);
      }
      const bool groups_tell = line_groups.size() == lines.size() && !line_groups.count("");
      const bool columns_tell = line_columns.size() == lines.size();
      std::vector<PlotSeries> series;
      for (auto& l : lines) {
        l.series.label = groups_tell ? l.group : columns_tell ? l.column : l.column + " | " + l.group;
        series.push_back(std::move(l.series));
      }
      PlotOptions o;
      o.title = fmt::format("{}: {} vs {}", spec.name, metric, spec.swept_keys[k]);
      if (numeric) {
        o.x_label = spec.swept_keys[k];
      } else {
        std::vector<std::string> legend;
        for (size_t d = 0; d < distinct.size(); ++d) legend.push_back(fmt::format("{} = {}", d, distinct[d]));
        o.x_label = fmt::format("{} ({})", spec.swept_keys[k], fmt::join(legend, ", "));
      }
      o.y_label = metric;
      const std::string file = fmt::format("{}-vs-{}.svg", file_part(metric), file_part(spec.swept_keys[k]));
      write_text_file_atomically(sweep_dir / "plots" / file, svg_line_chart(series, o));
      plots.push_back(file);
    }
  }

  // summary.md
  int64_t complete = 0;
  for (size_t i = 0; i < n; ++i) complete += runs[i].value("status", "") == "complete";
  std::string md = fmt::format("# Sweep {}\n\n", spec.name);
  md += fmt::format("Sweep file `{}`, base config `{}`: {} setting(s), {} complete.", spec.file.string(),
                    spec.base.string(), n, complete);
  if (!spec.fixed.empty()) {
    std::vector<std::string> fixed;
    for (const auto& v : spec.fixed) fixed.push_back("`" + v.key + "=" + v.value + "`");
    md += fmt::format(" Fixed for every setting: {}.", fmt::join(fixed, ", "));
  }
  md += "\n\nheldout_nll: the final model's pooled mean NLL on the held-out pairs; accuracy: its exact-match accuracy; "
        "precision: the fraction of a rule's kept pairs that are correct (with a checker); kept: pairs every rule "
        "keeps; reused: stages copied from another run of the sweep with the same stage keys (docs/sweeps.md). "
        "n/a: not measured, or not there yet.\n\n";
  std::vector<std::string> md_header = {"#", "run"};
  md_header.insert(md_header.end(), spec.swept_keys.begin(), spec.swept_keys.end());
  md_header.push_back("status");
  for (const auto& c : columns)
    if (c != "seconds") md_header.push_back(c);
  md_header.push_back("reused");
  md_header.push_back("seconds");
  std::vector<std::string> cells;
  for (const auto& h : md_header) cells.push_back(md_cell(h));
  md += fmt::format("| {} |\n", fmt::join(cells, " | "));
  md += "|";
  for (size_t c = 0; c < md_header.size(); ++c) md += "---|";
  md += "\n";
  for (size_t i = 0; i < n; ++i) {
    cells = {std::to_string(spec.settings[i].index), md_cell(spec.settings[i].run_name)};
    for (const auto& v : values[i]) cells.push_back(md_cell(v));
    cells.push_back(md_cell(runs[i].value("status", "")));
    for (const auto& c : columns)
      if (c != "seconds") cells.push_back(md_number(c, metrics[i][c]));
    const std::string reused = describe_reused_stages(runs[i].value("reused", json::array()));
    cells.push_back(reused.empty() ? "-" : md_cell(reused));
    cells.push_back(md_number("seconds", metrics[i]["seconds"]));
    md += fmt::format("| {} |\n", fmt::join(cells, " | "));
  }
  bool any_error = false;
  for (size_t i = 0; i < n; ++i)
    if (runs[i].contains("error")) {
      if (!any_error) md += "\n## Failed runs\n\n";
      any_error = true;
      md += fmt::format("- {}: {}\n", spec.settings[i].run_name, md_cell(runs[i]["error"].get<std::string>()));
    }
  if (!plots.empty()) {
    md += "\n## Plots\n\n";
    for (const auto& p : plots) md += fmt::format("![{}](plots/{})\n\n", p.substr(0, p.size() - 4), p);
  }
  write_text_file_atomically(sweep_dir / "summary.md", md);
}

}  // namespace mt
