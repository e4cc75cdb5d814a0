// The sweep's plots (see sweep_plots.h): for each metric and swept key, the key's values as x (as
// numbers, or their positions in sweep order), the settings grouped by the other keys that vary on
// their own, one line per column and group, labels as short as tell the lines apart.
#include "trainer/sweep/sweep_plots.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <set>

#include "models/atomic_file.h"
#include "trainer/report/svg_plot.h"
#include "trainer/sweep/sweep_context.h"
#include "trainer/sweep/sweep_metrics.h"

namespace mt::sweep {
namespace {

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

// The columns a metric plots. When every setting has one final model, "accuracy" is that model's
// accuracy whichever rule it is: one column, so settings with different final.models fall on one line.
std::vector<std::string> plotted_columns(const std::string& metric, const std::vector<std::string>& columns,
                                         const std::vector<std::vector<std::string>>& own_columns, SummaryRows& rows) {
  std::vector<std::string> cols = metric_columns_of(metric, columns);
  if (cols.size() > 1 && std::all_of(own_columns.begin(), own_columns.end(), [&](const auto& own) {
        return metric_columns_of(metric, own).size() <= 1;
      })) {
    for (size_t i = 0; i < own_columns.size(); ++i) {
      const auto own = metric_columns_of(metric, own_columns[i]);
      rows.metrics[i][metric] = own.empty() ? json() : rows.metrics[i][own.front()];
    }
    cols = {metric};
  }
  return cols;
}

// x: a swept key's values as numbers, or their positions in sweep order.
struct KeyAxis {
  std::vector<std::string> distinct;  // the key's values in sweep order
  bool numeric = false;
  double x_of(const std::string& v) const {
    return numeric ? *as_number(v) : static_cast<double>(std::find(distinct.begin(), distinct.end(), v) - distinct.begin());
  }
};

KeyAxis key_axis(const SummaryRows& rows, size_t k) {
  KeyAxis axis;
  for (const auto& v : rows.values) add_unique(axis.distinct, v[k]);
  axis.numeric = std::all_of(axis.distinct.begin(), axis.distinct.end(), [](const std::string& v) { return as_number(v).has_value(); });
  return axis;
}

// Each setting's group for a plot against key k: the values of the other swept keys that vary on
// their own. A key set together with this one (a list entry's filter.rule and final.models) is no
// group: each group would be one point.
std::vector<std::string> groups_of_settings(const SweepSpec& spec, const SummaryRows& rows, size_t k) {
  const std::vector<std::vector<std::string>>& values = rows.values;
  const size_t n = values.size();
  auto follows_key = [&](size_t o) {
    std::map<std::string, std::string> seen;
    for (size_t i = 0; i < n; ++i)
      if (!seen.emplace(values[i][k], values[i][o]).second && seen[values[i][k]] != values[i][o]) return false;
    return true;
  };
  std::vector<size_t> group_keys;
  for (size_t o = 0; o < spec.swept_keys.size(); ++o)
    if (o != k && !follows_key(o)) group_keys.push_back(o);
  std::vector<std::string> group_of(n);
  for (size_t i = 0; i < n; ++i) {
    std::vector<std::string> others;
    for (const size_t o : group_keys) others.push_back(spec.swept_keys[o] + "=" + values[i][o]);
    group_of[i] = fmt::format("{}", fmt::join(others, " "));
  }
  return group_of;
}

struct Line {
  std::string column, group;
  PlotSeries series;
};

// One line per column and group (groups in order of first appearance), its points sorted by x.
std::vector<Line> metric_lines(const std::vector<std::string>& cols, const std::vector<std::string>& group_of,
                               const KeyAxis& axis, SummaryRows& rows, size_t k) {
  std::vector<std::string> groups;
  for (const auto& g : group_of) add_unique(groups, g);
  std::vector<Line> lines;
  for (const auto& col : cols)
    for (const auto& g : groups) {
      Line line{col, g, {}};
      std::vector<std::pair<double, double>> points;
      for (size_t i = 0; i < group_of.size(); ++i)
        if (group_of[i] == g)
          points.emplace_back(axis.x_of(rows.values[i][k]),
                              rows.metrics[i][col].is_number() ? rows.metrics[i][col].get<double>() : std::nan(""));
      std::stable_sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [x, y] : points) {
        line.series.x.push_back(x);
        line.series.values.push_back(y);
      }
      lines.push_back(std::move(line));
    }
  return lines;
}

// A column a group's settings do not have (another final model) is no line; when nothing is
// measured at all, the empty lines stay so the chart says so.
void drop_empty_lines(std::vector<Line>& lines) {
  auto has_point = [](const Line& l) {
    return std::any_of(l.series.values.begin(), l.series.values.end(), [](double v) { return std::isfinite(v); });
  };
  if (std::any_of(lines.begin(), lines.end(), has_point))
    lines.erase(std::remove_if(lines.begin(), lines.end(), [&](const Line& l) { return !has_point(l); }), lines.end());
}

// Labels as short as tell the lines apart: the column, the other keys' values, or both.
std::vector<PlotSeries> labelled_series(std::vector<Line>& lines) {
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
  return series;
}

PlotOptions plot_options(const SweepSpec& spec, const std::string& metric, size_t k, const KeyAxis& axis) {
  PlotOptions o;
  o.title = fmt::format("{}: {} vs {}", spec.name, metric, spec.swept_keys[k]);
  if (axis.numeric) {
    o.x_label = spec.swept_keys[k];
  } else {
    std::vector<std::string> legend;
    for (size_t d = 0; d < axis.distinct.size(); ++d) legend.push_back(fmt::format("{} = {}", d, axis.distinct[d]));
    o.x_label = fmt::format("{} ({})", spec.swept_keys[k], fmt::join(legend, ", "));
  }
  o.y_label = metric;
  return o;
}

// plots/<metric>-vs-<key>.svg for swept key k; returns its file name.
std::string write_plot(const fs::path& sweep_dir, const SweepSpec& spec, const std::string& metric,
                       const std::vector<std::string>& cols, size_t k, SummaryRows& rows) {
  const KeyAxis axis = key_axis(rows, k);
  std::vector<Line> lines = metric_lines(cols, groups_of_settings(spec, rows, k), axis, rows, k);
  drop_empty_lines(lines);
  const std::vector<PlotSeries> series = labelled_series(lines);
  const std::string file = fmt::format("{}-vs-{}.svg", file_part(metric), file_part(spec.swept_keys[k]));
  write_text_file_atomically(sweep_dir / "plots" / file, svg_line_chart(series, plot_options(spec, metric, k, axis)));
  return file;
}

}  // namespace

std::vector<std::string> write_sweep_plots(const fs::path& sweep_dir, const SweepSpec& spec,
                                           const std::vector<std::string>& columns,
                                           const std::vector<std::vector<std::string>>& own_columns, SummaryRows& rows) {
  std::vector<std::string> plots;
  fs::create_directories(sweep_dir / "plots");
  for (const auto& metric : spec.metrics) {
    const std::vector<std::string> cols = plotted_columns(metric, columns, own_columns, rows);
    if (cols.empty()) continue;
    for (size_t k = 0; k < spec.swept_keys.size(); ++k) plots.push_back(write_plot(sweep_dir, spec, metric, cols, k, rows));
  }
  return plots;
}

}  // namespace mt::sweep
