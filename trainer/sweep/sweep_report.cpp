// The sweep's summary (see sweep_report.h): the rows gathered once (each setting's swept values
// from its resolved config, its metrics from its run's records), then CSV by hand (RFC 4180
// quoting), the plots (sweep_plots.h) and the Markdown page linking them.
#include "trainer/sweep/sweep_report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <optional>

#include "models/atomic_file.h"
#include "trainer/sweep/sweep_plots.h"

namespace mt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using sweep::SummaryRows;

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

// The swept keys' resolved values and the metrics of every setting.
SummaryRows gather_rows(const fs::path& sweep_dir, const SweepSpec& spec, const std::vector<PipelineConfig>& configs,
                        const std::vector<std::string>& columns, const json& runs) {
  const size_t n = spec.settings.size();
  SummaryRows rows{std::vector<std::vector<std::string>>(n), std::vector<std::map<std::string, json>>(n)};
  for (size_t i = 0; i < n; ++i) {
    const YAML::Node tree = YAML::Load(pipeline_config_to_yaml(configs[i]));
    for (const auto& key : spec.swept_keys) rows.values[i].push_back(config_value(tree, key));
    rows.metrics[i] = sweep::run_metrics(sweep_run_dir(sweep_dir, spec.settings[i]), columns, runs[i]);
  }
  return rows;
}

// The tables' columns, the CSV's and the Markdown's alike: index, run, the swept keys, status, the
// metric columns but seconds, reused, seconds.
std::vector<std::string> table_header(const std::string& index_title, const SweepSpec& spec,
                                      const std::vector<std::string>& columns) {
  std::vector<std::string> header = {index_title, "run"};
  header.insert(header.end(), spec.swept_keys.begin(), spec.swept_keys.end());
  header.push_back("status");
  for (const auto& c : columns)
    if (c != "seconds") header.push_back(c);
  header.push_back("reused");
  header.push_back("seconds");
  return header;
}

void write_summary_csv(const fs::path& sweep_dir, const SweepSpec& spec, const std::vector<std::string>& columns,
                       SummaryRows& rows, const json& runs) {
  std::string csv;
  auto csv_row = [&](const std::vector<std::string>& fields) {
    std::string line;
    for (size_t f = 0; f < fields.size(); ++f) line += (f > 0 ? "," : "") + csv_field(fields[f]);
    csv += line + "\n";
  };
  csv_row(table_header("index", spec, columns));
  for (size_t i = 0; i < spec.settings.size(); ++i) {
    std::vector<std::string> row = {std::to_string(spec.settings[i].index), spec.settings[i].run_name};
    row.insert(row.end(), rows.values[i].begin(), rows.values[i].end());
    row.push_back(runs[i].value("status", ""));
    for (const auto& c : columns)
      if (c != "seconds") row.push_back(csv_number(rows.metrics[i][c]));
    row.push_back(describe_reused_stages(runs[i].value("reused", json::array())));
    row.push_back(csv_number(rows.metrics[i]["seconds"]));
    csv_row(row);
  }
  write_text_file_atomically(sweep_dir / "summary.csv", csv);
}

// The page's title, what the sweep is, and what the columns mean.
std::string summary_md_intro(const SweepSpec& spec, const json& runs) {
  const size_t n = spec.settings.size();
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
  return md;
}

std::string summary_md_table(const SweepSpec& spec, const std::vector<std::string>& columns, SummaryRows& rows,
                             const json& runs) {
  const std::vector<std::string> md_header = table_header("#", spec, columns);
  std::vector<std::string> cells;
  for (const auto& h : md_header) cells.push_back(md_cell(h));
  std::string md = fmt::format("| {} |\n", fmt::join(cells, " | "));
  md += "|";
  for (size_t c = 0; c < md_header.size(); ++c) md += "---|";
  md += "\n";
  for (size_t i = 0; i < spec.settings.size(); ++i) {
    cells = {std::to_string(spec.settings[i].index), md_cell(spec.settings[i].run_name)};
    for (const auto& v : rows.values[i]) cells.push_back(md_cell(v));
    cells.push_back(md_cell(runs[i].value("status", "")));
    for (const auto& c : columns)
      if (c != "seconds") cells.push_back(md_number(c, rows.metrics[i][c]));
    const std::string reused = describe_reused_stages(runs[i].value("reused", json::array()));
    cells.push_back(reused.empty() ? "-" : md_cell(reused));
    cells.push_back(md_number("seconds", rows.metrics[i]["seconds"]));
    md += fmt::format("| {} |\n", fmt::join(cells, " | "));
  }
  return md;
}

// "## Failed runs" with each recorded error; "" when there is none.
std::string failed_runs_section(const SweepSpec& spec, const json& runs) {
  std::string md;
  bool any_error = false;
  for (size_t i = 0; i < spec.settings.size(); ++i)
    if (runs[i].contains("error")) {
      if (!any_error) md += "\n## Failed runs\n\n";
      any_error = true;
      md += fmt::format("- {}: {}\n", spec.settings[i].run_name, md_cell(runs[i]["error"].get<std::string>()));
    }
  return md;
}

std::string plots_section(const std::vector<std::string>& plots) {
  if (plots.empty()) return "";
  std::string md = "\n## Plots\n\n";
  for (const auto& p : plots) md += fmt::format("![{}](plots/{})\n\n", p.substr(0, p.size() - 4), p);
  return md;
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

void write_sweep_summary(const fs::path& sweep_dir, const SweepSpec& spec, const std::vector<PipelineConfig>& configs,
                         const json& record) {
  const std::vector<std::string> columns = sweep_metric_columns(configs);
  const json& runs = record.at("runs");
  SummaryRows rows = gather_rows(sweep_dir, spec, configs, columns, runs);
  write_summary_csv(sweep_dir, spec, columns, rows, runs);
  std::vector<std::vector<std::string>> own_columns(spec.settings.size());  // the columns each setting's own config has
  for (size_t i = 0; i < spec.settings.size(); ++i) own_columns[i] = sweep_metric_columns({configs[i]});
  const std::vector<std::string> plots = sweep::write_sweep_plots(sweep_dir, spec, columns, own_columns, rows);
  const std::string md = summary_md_intro(spec, runs) + summary_md_table(spec, columns, rows, runs) +
                         failed_runs_section(spec, runs) + plots_section(plots);
  write_text_file_atomically(sweep_dir / "summary.md", md);
}

}  // namespace mt
