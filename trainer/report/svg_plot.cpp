// SVG histograms and line charts (see svg_plot.h): nice-tick axes, text sanitizing and escaping,
// shared histogram bins, and the frame both charts draw on (title, grid, axes, legend, note).
// Numbers are written with fmt at fixed precision (fmt ignores the locale), so output is byte-stable.
#include "trainer/report/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <utility>

namespace mt {

namespace {

// Tableau 10: distinguishable on white and in most colour-vision deficiencies; cycles after ten.
constexpr std::array<const char*, 10> kPalette = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                                  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
// Values beyond this are drawn at it, so no span, tick or pixel computation can overflow.
constexpr double kLayoutLimit = 1e300;
// A range whose magnitude is below this is drawn as zero: steps that small would be subnormal.
constexpr double kTinyMagnitude = 1e-200;
constexpr int kMaxBins = 500;
constexpr int kMaxTicks = 64;
constexpr int kMinWidth = 240, kMinHeight = 180;
constexpr size_t kMaxLegendChars = 40;
// Text width estimate for layout: sans-serif averages about 0.6 em per character.
constexpr double kTickFontPx = 11, kCharWidthEm = 0.62;
constexpr double kLegendRowPx = 16;
constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr const char* kEllipsis = "\xE2\x80\xA6";     // U+2026

const char* colour(size_t series_index) { return kPalette[series_index % kPalette.size()]; }

double clamp_layout(double v) { return std::clamp(v, -kLayoutLimit, kLayoutLimit); }

// s as valid UTF-8 that XML 1.0 accepts: each byte of an invalid sequence, control characters and
// U+FFFE/U+FFFF become U+FFFD; tab and line breaks become spaces (SVG text is one line).
std::string clean_text(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '\t' || c == '\n' || c == '\r') {
        out += ' ';
      } else if (c < 0x20) {
        out += kReplacement;
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0, min_cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1Fu, min_cp = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0Fu, min_cp = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07u, min_cp = 0x10000;
    }
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      ok = (cont & 0xC0) == 0x80;
      cp = (cp << 6) | (cont & 0x3Fu);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid UTF-8.
    ok = ok && cp >= min_cp && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!ok) {
      out += kReplacement;
      ++i;  // resynchronize on the next byte
      continue;
    }
    if (cp == 0xFFFE || cp == 0xFFFF) {
      out += kReplacement;
    } else {
      out.append(s, i, len);
    }
    i += len;
  }
  return out;
}

// Byte offsets where the characters of valid UTF-8 text start.
std::vector<size_t> char_starts(const std::string& s) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  }
  return starts;
}

// clean_text(s), cut to max_chars characters, the last an ellipsis when cut.
std::string fit_text(const std::string& s, size_t max_chars) {
  std::string t = clean_text(s);
  const std::vector<size_t> starts = char_starts(t);
  if (starts.size() <= max_chars) return t;
  if (max_chars == 0) return "";
  return t.substr(0, starts[max_chars - 1]) + kEllipsis;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// User text ready for an SVG document: sanitized, cut to max_chars, escaped.
std::string text(const std::string& s, size_t max_chars) { return xml_escape(fit_text(s, max_chars)); }

// A pixel coordinate: two decimals, never "nan" or "-0.00".
std::string px(double v) {
  if (!std::isfinite(v)) v = 0;
  std::string s = fmt::format("{:.2f}", v);
  if (s == "-0.00") s = "0.00";
  return s;
}

// A data value in a tooltip.
std::string short_number(double v) { return fmt::format("{:.6g}", v + 0.0); }

// "2.50" -> "2.5", "3.000" -> "3", "-0" -> "0".
std::string strip_zeros(std::string s) {
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

// A tick label with just the digits the step needs: fixed notation for everyday magnitudes,
// otherwise a compact exponent ("1.5e30", "2e-31").
std::string tick_label(double v, int step_exponent, bool fixed) {
  if (v == 0) return "0";
  if (fixed) return strip_zeros(fmt::format("{:.{}f}", v, std::max(0, -step_exponent)));
  const int value_exponent = static_cast<int>(std::floor(std::log10(std::fabs(v))));
  const int digits = std::clamp(value_exponent - step_exponent, 0, 16);
  const std::string s = fmt::format("{:.{}e}", v, digits);  // "1.50e+30"
  const size_t e = s.find('e');
  return strip_zeros(s.substr(0, e)) + "e" + std::to_string(std::stoi(s.substr(e + 1)));
}

// [lo, hi] wide enough to draw and label: a range narrower than a billionth of its magnitude (all
// values equal, or beyond what doubles can tell apart) gets 10% of the magnitude each side of its
// middle; one at zero (or below kTinyMagnitude) becomes [-1, 1].
std::pair<double, double> widen_degenerate(double lo, double hi) {
  const double magnitude = std::max(std::fabs(lo), std::fabs(hi));
  if (magnitude < kTinyMagnitude) return {-1.0, 1.0};
  if (hi - lo > magnitude * 1e-9) return {lo, hi};
  const double mid = lo / 2 + hi / 2, pad = magnitude * 0.1;
  return {mid - pad, mid + pad};
}

// The whole document and the plot area inside it, in pixels (y grows downward).
struct PlotArea {
  int width = 0, height = 0;
  double left = 0, top = 0, right = 0, bottom = 0;
};

PlotArea plot_area(const PlotOptions& o, const AxisTicks& y_ticks, bool has_note) {
  PlotArea a;
  a.width = std::max(o.width, kMinWidth);
  a.height = std::max(o.height, kMinHeight);
  size_t widest_label = 1;
  for (const std::string& label : y_ticks.labels) widest_label = std::max(widest_label, label.size());
  a.left = (o.y_label.empty() ? 10 : 30) + static_cast<double>(widest_label) * kTickFontPx * kCharWidthEm + 8;
  a.top = o.title.empty() ? 16 : 40;
  a.right = a.width - 24;
  a.bottom = a.height - 24 - (o.x_label.empty() ? 0 : 18) - (has_note ? 16 : 0);
  return a;
}

// How many ticks fit along an axis of `pixels`, one per `spacing` pixels.
int tick_target(double pixels, double spacing, int most) {
  return std::clamp(static_cast<int>(pixels / spacing), 2, most);
}

// The plot area with its two axes: maps data to pixels.
struct Canvas {
  PlotArea area;
  AxisTicks x, y;
  double to_px_x(double v) const {
    return area.left + (clamp_layout(v) - x.lo) / (x.hi - x.lo) * (area.right - area.left);
  }
  double to_px_y(double v) const {
    return area.bottom - (clamp_layout(v) - y.lo) / (y.hi - y.lo) * (area.bottom - area.top);
  }
};

// The plot area around y ticks already chosen, x ticks for [x_lo, x_hi] fitted to its width, and
// room at both ends for the first and last x labels, which are centred on the axis ends.
Canvas make_canvas(const PlotOptions& o, AxisTicks y_ticks, bool has_note, double x_lo, double x_hi, bool integer_x) {
  Canvas c;
  c.y = std::move(y_ticks);
  c.area = plot_area(o, c.y, has_note);
  c.x = nice_ticks(x_lo, x_hi, tick_target(c.area.right - c.area.left, 90, 10), integer_x);
  const auto half_label = [](const std::string& label) {
    return static_cast<double>(label.size()) * kTickFontPx * kCharWidthEm / 2 + 6;
  };
  c.area.left = std::max(c.area.left, half_label(c.x.labels.front()));
  c.area.right = std::min(c.area.right, c.area.width - half_label(c.x.labels.back()));
  return c;
}

// <svg> root, tooltip title, white background (readable in dark-mode viewers) and the title line.
void open_document(std::string& out, const PlotArea& a, const PlotOptions& o) {
  out += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"{2}\">\n",
      a.width, a.height, kTickFontPx);
  const size_t title_chars = static_cast<size_t>((a.width - 20) / (14 * kCharWidthEm));
  if (!o.title.empty()) out += fmt::format("<title>{}</title>\n", text(o.title, 500));
  out += fmt::format("<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n", a.width, a.height);
  if (!o.title.empty()) {
    out += fmt::format(
        "<text class=\"title\" x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        px(a.width / 2.0), text(o.title, title_chars));
  }
}

// Grid lines, axis lines, ticks with their labels (data-value: the exact tick), axis labels.
void draw_axes(std::string& out, const Canvas& c, const PlotOptions& o) {
  const PlotArea& a = c.area;
  for (size_t i = 0; i < c.y.values.size(); ++i) {
    const std::string y = px(c.to_px_y(c.y.values[i]));
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e6e6e6\"/>\n", px(a.left), y,
                       px(a.right), y);
    out += fmt::format(
        "<text class=\"tick-label\" data-axis=\"y\" data-value=\"{}\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
        c.y.values[i], px(a.left - 6), px(c.to_px_y(c.y.values[i]) + 4), xml_escape(c.y.labels[i]));
  }
  for (size_t i = 0; i < c.x.values.size(); ++i) {
    const std::string x = px(c.to_px_x(c.x.values[i]));
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333333\"/>\n", x, px(a.bottom), x,
                       px(a.bottom + 5));
    out += fmt::format(
        "<text class=\"tick-label\" data-axis=\"x\" data-value=\"{}\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
        c.x.values[i], x, px(a.bottom + 17), xml_escape(c.x.labels[i]));
  }
  out += fmt::format("<path d=\"M{} {} V{} H{}\" fill=\"none\" stroke=\"#333333\"/>\n", px(a.left), px(a.top),
                     px(a.bottom), px(a.right));
  const double label_px = 13 * kCharWidthEm;
  if (!o.x_label.empty()) {
    out += fmt::format("<text class=\"x-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\">{}</text>\n",
                       px((a.left + a.right) / 2), px(a.bottom + 35),
                       text(o.x_label, static_cast<size_t>((a.right - a.left) / label_px)));
  }
  if (!o.y_label.empty()) {
    const double mid = (a.top + a.bottom) / 2;
    out += fmt::format(
        "<text class=\"y-label\" x=\"14\" y=\"{0}\" transform=\"rotate(-90 14 {0})\" text-anchor=\"middle\" "
        "font-size=\"13\" dominant-baseline=\"middle\">{1}</text>\n",
        px(mid), text(o.y_label, static_cast<size_t>((a.bottom - a.top) / label_px)));
  }
}

// Top-right box, one row per series (swatch and label); rows that do not fit become "+N more".
void draw_legend(std::string& out, const Canvas& c, const std::vector<std::string>& labels, bool line_swatch) {
  if (labels.empty()) return;
  const PlotArea& a = c.area;
  const size_t fit = static_cast<size_t>(std::max(1.0, (a.bottom - a.top - 16) / kLegendRowPx));
  const size_t shown = labels.size() <= fit ? labels.size() : fit - 1;
  std::vector<std::string> rows;
  for (size_t i = 0; i < shown; ++i) rows.push_back(fit_text(labels[i], kMaxLegendChars));
  if (shown < labels.size()) rows.push_back(fmt::format("+{} more", labels.size() - shown));
  size_t widest = 0;
  for (const std::string& row : rows) widest = std::max(widest, char_starts(row).size());
  const double w = 36 + static_cast<double>(widest) * kTickFontPx * kCharWidthEm;
  const double h = 8 + kLegendRowPx * static_cast<double>(rows.size());
  const double x0 = a.right - w - 6, y0 = a.top + 6;
  out += fmt::format(
      "<g class=\"legend\">\n<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#ffffff\" fill-opacity=\"0.85\" "
      "stroke=\"#cccccc\"/>\n",
      px(x0), px(y0), px(w), px(h));
  for (size_t i = 0; i < rows.size(); ++i) {
    const double y = y0 + 4 + kLegendRowPx * (static_cast<double>(i) + 0.5);
    if (i < shown && line_swatch) {
      out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>\n", px(x0 + 6),
                         px(y), px(x0 + 24), px(y), colour(i));
      out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"/>\n", px(x0 + 15), px(y), colour(i));
    } else if (i < shown) {
      out += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"18\" height=\"10\" fill=\"{}\" fill-opacity=\"0.45\" stroke=\"{}\"/>\n",
          px(x0 + 6), px(y - 5), colour(i), colour(i));
    }
    out += fmt::format("<text class=\"legend-label\" x=\"{}\" y=\"{}\">{}</text>\n", px(x0 + 30), px(y + 4),
                       xml_escape(rows[i]));
  }
  out += "</g>\n";
}

// The note under the plot (what was not shown) and "no data" when nothing could be drawn.
void draw_notes(std::string& out, const Canvas& c, const std::string& note, bool no_data) {
  if (no_data) {
    out += fmt::format("<text class=\"no-data\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666666\">no data</text>\n",
                       px((c.area.left + c.area.right) / 2), px((c.area.top + c.area.bottom) / 2));
  }
  if (!note.empty()) {
    out += fmt::format("<text class=\"note\" x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#666666\">{}</text>\n",
                       px(c.area.left), px(c.area.height - 8), xml_escape(note));
  }
}

std::string count_phrase(int64_t n, const char* what) {
  return fmt::format("{} {}{} not shown", n, what, n == 1 ? "" : "s");
}

std::string series_name(const PlotSeries& s, size_t index) {
  return s.label.empty() ? fmt::format("series {}", index + 1) : s.label;
}

}  // namespace

AxisTicks nice_ticks(double lo, double hi, int target_count, bool integer_steps) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  lo = clamp_layout(lo), hi = clamp_layout(hi);
  if (lo > hi) std::swap(lo, hi);
  std::tie(lo, hi) = widen_degenerate(lo, hi);
  const int target = std::clamp(target_count, 1, kMaxTicks / 2);
  // Step: the first of 1, 2, 5, 10 x 10^k at least range/target (the slack absorbs rounding).
  const double raw = (hi - lo) / target;
  int exponent = static_cast<int>(std::floor(std::log10(raw)));
  const double f = raw / std::pow(10.0, exponent);
  int mantissa = f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10;
  if (mantissa == 10) mantissa = 1, ++exponent;
  if (integer_steps && exponent < 0) mantissa = 1, exponent = 0;
  AxisTicks t;
  t.step = mantissa * std::pow(10.0, exponent);
  const double first = std::floor(lo / t.step + 1e-9);
  double last = std::ceil(hi / t.step - 1e-9);
  if (last <= first) last = first + 1;
  for (double k = first; k <= last && t.values.size() < static_cast<size_t>(kMaxTicks); k += 1) {
    t.values.push_back(k * t.step + 0.0);  // + 0.0: no "-0" tick
  }
  t.lo = t.values.front();
  t.hi = t.values.back();
  const double magnitude = std::max(std::fabs(t.lo), std::fabs(t.hi));
  // Fixed notation while it stays short: magnitudes 0.001 to 999999, steps down to 0.00001.
  const bool fixed = exponent >= -5 && (magnitude == 0 || (magnitude >= 1e-3 && magnitude < 1e6));
  for (double v : t.values) t.labels.push_back(tick_label(v, exponent, fixed));
  return t;
}

std::string svg_histogram(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  // Shared bins: one range over every series' finite samples.
  int64_t non_finite = 0, finite = 0;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const PlotSeries& s : series) {
    for (double v : s.values) {
      if (!std::isfinite(v)) {
        ++non_finite;
        continue;
      }
      ++finite;
      lo = std::min(lo, clamp_layout(v));
      hi = std::max(hi, clamp_layout(v));
    }
  }
  const int bins = std::clamp(options.bins, 1, kMaxBins);
  const auto [bin_lo, bin_hi] = finite > 0 ? widen_degenerate(lo, hi) : std::pair<double, double>{0.0, 1.0};
  std::vector<std::vector<int64_t>> counts(series.size(), std::vector<int64_t>(bins, 0));
  std::vector<int64_t> series_finite(series.size(), 0);
  int64_t max_count = 0;
  for (size_t s = 0; s < series.size(); ++s) {
    for (double v : series[s].values) {
      if (!std::isfinite(v)) continue;
      const double t = (clamp_layout(v) - bin_lo) / (bin_hi - bin_lo);
      const int b = std::clamp(static_cast<int>(t * bins), 0, bins - 1);  // the maximum lands in the last bin
      max_count = std::max(max_count, ++counts[s][b]);
      ++series_finite[s];
    }
  }

  const std::string note = non_finite > 0 ? count_phrase(non_finite, "non-finite value") : "";
  const Canvas c = make_canvas(options,
                               nice_ticks(0, static_cast<double>(std::max<int64_t>(max_count, 1)),
                                          tick_target(std::max(options.height, kMinHeight) - 110, 45, 8), true),
                               !note.empty(), bin_lo, bin_hi, false);

  std::string out;
  open_document(out, c.area, options);
  draw_axes(out, c, options);
  if (finite > 0) {
    for (size_t s = 0; s < series.size(); ++s) {
      const std::string name = text(series_name(series[s], s), kMaxLegendChars);
      out += fmt::format("<g class=\"series\" data-series=\"{}\">\n", s);
      for (int b = 0; b < bins; ++b) {
        const double edge0 = bin_lo + (bin_hi - bin_lo) * b / bins;
        const double edge1 = bin_lo + (bin_hi - bin_lo) * (b + 1) / bins;
        const double x0 = c.to_px_x(edge0), x1 = c.to_px_x(edge1), y = c.to_px_y(static_cast<double>(counts[s][b]));
        out += fmt::format(
            "<rect class=\"bar\" data-series=\"{}\" data-bin=\"{}\" data-count=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" "
            "height=\"{}\" fill=\"{}\" fill-opacity=\"0.45\"",
            s, b, counts[s][b], px(x0), px(y), px(std::max(0.0, x1 - x0)), px(std::max(0.0, c.area.bottom - y)),
            colour(s));
        // Tooltips on the bars that show; empty bins stay bare to keep the document small.
        if (counts[s][b] > 0) {
          out += fmt::format("><title>{}: {} in [{}, {})</title></rect>\n", name, counts[s][b], short_number(edge0),
                             short_number(edge1));
        } else {
          out += "/>\n";
        }
      }
      out += "</g>\n";
    }
  }
  std::vector<std::string> legend;
  for (size_t s = 0; s < series.size(); ++s) {
    legend.push_back(fmt::format("{} (n={})", fit_text(series_name(series[s], s), kMaxLegendChars - 10),
                                 series_finite[s]));
  }
  draw_legend(out, c, legend, false);
  draw_notes(out, c, note, finite == 0);
  out += "</svg>\n";
  return out;
}

std::string svg_line_chart(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  struct Point {
    double x = 0, y = 0;
    bool shown = false;  // both coordinates finite
  };
  std::vector<std::vector<Point>> points(series.size());
  int64_t non_finite = 0, without_x = 0, shown = 0;
  bool index_x = true;  // every series uses 0, 1, 2, ...: integer x ticks
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (size_t s = 0; s < series.size(); ++s) {
    const PlotSeries& ser = series[s];
    const size_t n = ser.x.empty() ? ser.values.size() : std::min(ser.x.size(), ser.values.size());
    if (!ser.x.empty()) index_x = false;
    without_x += static_cast<int64_t>(ser.values.size() - n);
    for (size_t i = 0; i < n; ++i) {
      Point p{ser.x.empty() ? static_cast<double>(i) : ser.x[i], ser.values[i], false};
      p.shown = std::isfinite(p.x) && std::isfinite(p.y);
      if (!p.shown) {
        ++non_finite;
      } else {
        ++shown;
        x_lo = std::min(x_lo, clamp_layout(p.x)), x_hi = std::max(x_hi, clamp_layout(p.x));
        y_lo = std::min(y_lo, clamp_layout(p.y)), y_hi = std::max(y_hi, clamp_layout(p.y));
      }
      points[s].push_back(p);
    }
  }
  if (shown == 0) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;

  std::string note;
  if (non_finite > 0) note = count_phrase(non_finite, "non-finite value");
  if (without_x > 0) note += (note.empty() ? "" : "; ") + count_phrase(without_x, "value") + " (no x)";
  const int y_target = tick_target(std::max(options.height, kMinHeight) - 110, 45, 8);
  const Canvas c = make_canvas(options, nice_ticks(y_lo, y_hi, y_target), !note.empty(), x_lo, x_hi, index_x);

  std::string out;
  open_document(out, c.area, options);
  draw_axes(out, c, options);
  for (size_t s = 0; s < series.size(); ++s) {
    const std::string name = text(series_name(series[s], s), kMaxLegendChars);
    out += fmt::format("<g class=\"series\" data-series=\"{}\">\n", s);
    // One polyline per run of consecutive shown points: a non-finite point breaks the line.
    std::string run;
    size_t run_points = 0;
    const auto flush_run = [&] {
      if (run_points >= 2) {
        out += fmt::format(
            "<polyline class=\"line\" data-series=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n",
            s, run, colour(s));
      }
      run.clear();
      run_points = 0;
    };
    for (const Point& p : points[s]) {
      if (!p.shown) {
        flush_run();
        continue;
      }
      run += fmt::format("{}{},{}", run.empty() ? "" : " ", px(c.to_px_x(p.x)), px(c.to_px_y(p.y)));
      ++run_points;
    }
    flush_run();
    for (const Point& p : points[s]) {
      if (!p.shown) continue;
      out += fmt::format(
          "<circle class=\"marker\" data-series=\"{}\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\">"
          "<title>{}: {}, {}</title></circle>\n",
          s, px(c.to_px_x(p.x)), px(c.to_px_y(p.y)), colour(s), name, short_number(p.x), short_number(p.y));
    }
    out += "</g>\n";
  }
  std::vector<std::string> legend;
  for (size_t s = 0; s < series.size(); ++s) legend.push_back(series_name(series[s], s));
  draw_legend(out, c, legend, true);
  draw_notes(out, c, note, shown == 0);
  out += "</svg>\n";
  return out;
}

}  // namespace mt
