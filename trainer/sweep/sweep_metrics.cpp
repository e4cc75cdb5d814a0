// The sweep's metric names, columns and per-run values (see sweep_metrics.h).
#include "trainer/sweep/sweep_metrics.h"

#include <algorithm>

#include "trainer/base/jsonl.h"
#include "trainer/method/mutual_filter.h"
#include "trainer/method/run_layout.h"
#include "trainer/sweep/sweep_context.h"

namespace mt {

std::vector<std::string> sweep_metric_columns(const std::vector<PipelineConfig>& configs) {
  std::vector<std::string> final_rules, filter_rules;
  for (const auto& c : configs) {
    for (const auto& r : c.final_tuning.models) sweep::add_unique(final_rules, r);
    for (const auto& r : compared_filter_rules(c.filter)) sweep::add_unique(filter_rules, r);
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

namespace sweep {

const std::vector<std::string>& short_metric_names() {
  static const std::vector<std::string> names = {"accuracy", "heldout_nll", "precision", "kept", "seconds"};
  return names;
}

bool is_metric(const std::string& m) {
  const auto& short_names = short_metric_names();
  if (std::find(short_names.begin(), short_names.end(), m) != short_names.end()) return true;
  for (const auto& rule : filter_rule_names())
    if (m == "final." + rule + ".accuracy" || m == "final." + rule + ".heldout_nll" || m == "filter." + rule + ".precision")
      return true;
  return false;
}

std::map<std::string, json> run_metrics(const fs::path& run_dir, const std::vector<std::string>& columns, const json& run) {
  const json s5 = read_json_or_null(run_dir / kStage5Final / kStageRecordFile);
  json summary = read_json_or_null(run_dir / kReportDir / kReportSummaryFile);
  const json s4 = read_json_or_null(run_dir / kStage4Filter / kStageRecordFile);
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

}  // namespace sweep
}  // namespace mt
