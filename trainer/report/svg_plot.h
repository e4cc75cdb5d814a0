// Small standalone SVG charts for report.md: overlaid score histograms (kept vs dropped filter
// candidates) and line charts (losses per round). Output is a complete, deterministic SVG document
// (same input -> same bytes) with every piece of text sanitized to valid UTF-8 and XML-escaped,
// and it has no blank lines, so it can be written to a .svg file or pasted inline into Markdown.
#pragma once
#include <string>
#include <vector>

namespace mt {

struct PlotSeries {
  std::string label;
  std::vector<double> values;  // histogram: raw samples; line chart: y values
  std::vector<double> x;       // line chart only: x values (empty = 0, 1, 2, ...)
};

struct PlotOptions {
  std::string title, x_label, y_label;
  int width = 640, height = 360;  // pixels; raised to at least 240 x 180 so the plot area stays positive
  int bins = 30;                  // histogram; clamped to 1..500
};

// Overlaid histograms: semi-transparent bars, one rect per bin per series (empty bins too) on bins
// shared over all series' finite values; axes with ticks and labels; a legend with each series'
// sample count. Each bar carries data-series, data-bin and data-count attributes. NaN/Inf samples
// are skipped and counted in a note ("3 non-finite values not shown").
std::string svg_histogram(const std::vector<PlotSeries>& series, const PlotOptions& options);

// Lines with point markers, one per series, on shared axes, with a legend. A point whose x or y is
// not finite is skipped (and counted in the note) and breaks the line there. When x is given but
// shorter than values, the values without an x are not drawn (also counted in the note).
std::string svg_line_chart(const std::vector<PlotSeries>& series, const PlotOptions& options);

// One axis: "nice" ticks (step 1, 2 or 5 x 10^k) whose first and last tick enclose [lo, hi].
// A degenerate range (lo == hi, or narrower than double precision can label) is widened around
// its middle first; integer_steps keeps the step >= 1 (counts, indices). Labels are compact:
// "0.25", "1500", "2e-31", "1.5e30".
struct AxisTicks {
  double lo = 0, hi = 1;  // the axis ends: the first and the last tick
  double step = 1;
  std::vector<double> values;
  std::vector<std::string> labels;
};
AxisTicks nice_ticks(double lo, double hi, int target_count, bool integer_steps = false);

}  // namespace mt
