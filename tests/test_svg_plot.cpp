// The SVG charts (trainer/report/svg_plot.h), read back with a small XML checker written here: documents
// are well-formed (balanced tags, quoted attributes, escaped text, valid UTF-8), hostile and invalid
// UTF-8 labels are escaped or replaced, bars per series equal bins and their data-count values sum
// to the finite samples, ticks are nice and cover the data, degenerate inputs draw, output is stable.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "trainer/report/svg_plot.h"
#include "tests/test_util.h"

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
const std::string kReplacement = "\xEF\xBF\xBD";

// One start tag: its attributes as written (entities not decoded) and the text right after it.
struct Element {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::string text;
};

// Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80                  ? 1
                       : (c >= 0xC2 && c <= 0xDF) ? 2
                       : (c >= 0xE0 && c <= 0xEF) ? 3
                       : (c >= 0xF0 && c <= 0xF4) ? 4
                                                  : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t k = 1; k < len; ++k) {
      const auto cont = static_cast<unsigned char>(s[i + k]);
      if ((cont & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cont & 0x3Fu);
    }
    const uint32_t min_cp = len == 1 ? 0 : len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// Length of the entity reference starting at s[i] ('&'), or 0 when it is not one XML defines.
size_t entity_length(const std::string& s, size_t i) {
  for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"}) {
    if (s.compare(i, std::strlen(e), e) == 0) return std::strlen(e);
  }
  if (s.compare(i, 2, "&#") != 0) return 0;
  size_t j = i + 2;
  const bool hex = j < s.size() && s[j] == 'x';
  if (hex) ++j;
  const size_t digits = j;
  const auto digit = [hex](char c) {
    return hex ? std::isxdigit(static_cast<unsigned char>(c)) != 0 : std::isdigit(static_cast<unsigned char>(c)) != 0;
  };
  while (j < s.size() && digit(s[j])) ++j;
  return j > digits && j < s.size() && s[j] == ';' ? j + 1 - i : 0;
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.';
}

// What makes `doc` not well-formed XML (of the subset the plots write: elements, attributes, text
// and entity references; no comments, CDATA or declarations), or "" when it is. Start tags go to
// *elements in document order. Stricter than XML in one way: a raw '>' in text is refused too.
std::string xml_problem(const std::string& doc, std::vector<Element>* elements = nullptr) {
  if (!valid_utf8(doc)) return "invalid UTF-8";
  const size_t n = doc.size();
  const auto at = [](size_t pos) { return " at byte " + std::to_string(pos); };
  const auto read_name = [&](size_t& j) {
    const size_t start = j;
    while (j < n && is_name_char(doc[j])) ++j;
    return doc.substr(start, j - start);
  };
  std::vector<std::string> open;
  int roots = 0;
  size_t i = 0;
  while (i < n) {
    const char c = doc[i];
    if (c == '<' && doc.compare(i, 2, "</") == 0) {
      size_t j = i + 2;
      const std::string name = read_name(j);
      if (j >= n || doc[j] != '>') return "malformed end tag" + at(i);
      if (open.empty() || open.back() != name) return "</" + name + "> does not close the open element" + at(i);
      open.pop_back();
      i = j + 1;
    } else if (c == '<') {
      size_t j = i + 1;
      Element e;
      e.name = read_name(j);
      if (e.name.empty()) return "'<' without a tag name" + at(i);
      if (open.empty() && ++roots > 1) return "a second root element" + at(i);
      bool self_closing = false;
      while (true) {
        const size_t before_space = j;
        while (j < n && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
        if (j >= n) return "unterminated tag" + at(i);
        if (doc[j] == '>') {
          ++j;
          break;
        }
        if (doc.compare(j, 2, "/>") == 0) {
          j += 2;
          self_closing = true;
          break;
        }
        if (j == before_space) return "attribute not preceded by whitespace" + at(j);
        const std::string attr = read_name(j);
        if (attr.empty() || j >= n || doc[j] != '=') return "attribute without '='" + at(j);
        ++j;
        if (j >= n || (doc[j] != '"' && doc[j] != '\'')) return "unquoted attribute value" + at(j);
        const char quote = doc[j++];
        const size_t close = doc.find(quote, j);
        if (close == std::string::npos) return "unterminated attribute value" + at(j);
        const std::string value = doc.substr(j, close - j);
        for (size_t k = 0; k < value.size(); ++k) {
          if (value[k] == '<') return "raw '<' in an attribute value" + at(j + k);
          if (value[k] == '&' && entity_length(value, k) == 0) return "raw '&' in an attribute value" + at(j + k);
        }
        if (!e.attrs.emplace(attr, value).second) return "duplicate attribute " + attr + at(j);
        j = close + 1;
      }
      if (!self_closing) open.push_back(e.name);
      const size_t next_tag = doc.find('<', j);
      e.text = doc.substr(j, next_tag == std::string::npos ? std::string::npos : next_tag - j);
      if (elements != nullptr) elements->push_back(e);
      i = j;
    } else if (open.empty() && !std::isspace(static_cast<unsigned char>(c))) {
      return "text outside the root element" + at(i);
    } else if (c == '>') {
      return "raw '>' in text" + at(i);
    } else if (c == '&') {
      const size_t len = entity_length(doc, i);
      if (len == 0) return "raw '&' in text" + at(i);
      i += len;
    } else {
      ++i;
    }
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (roots != 1) return "no root element";
  return "";
}

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    static const std::map<std::string, char> kEntities = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    const size_t end = s.find(';', i);
    REQUIRE(end != std::string::npos);
    const auto found = kEntities.find(s.substr(i, end + 1 - i));
    REQUIRE(found != kEntities.end());
    out += found->second;
    i = end;
  }
  return out;
}

double parse_number(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  INFO("number: '" << s << "'");
  REQUIRE(!s.empty());
  REQUIRE(*end == '\0');
  return v;
}

// The document's start tags, after checking it is well-formed, a standalone SVG root, has no blank
// lines (so it can sit inline in Markdown), and every coordinate is a finite number.
std::vector<Element> read_svg(const std::string& doc) {
  std::vector<Element> elements;
  const std::string problem = xml_problem(doc, &elements);
  INFO(problem);
  REQUIRE(problem.empty());
  CHECK(doc.find("\n\n") == std::string::npos);
  const Element& root = elements.front();
  REQUIRE(root.name == "svg");
  CHECK(root.attrs.at("xmlns") == "http://www.w3.org/2000/svg");
  CHECK(root.attrs.at("viewBox") == "0 0 " + root.attrs.at("width") + " " + root.attrs.at("height"));
  for (const Element& e : elements) {
    for (const auto& [name, value] : e.attrs) {
      static const std::set<std::string> kCoordinates = {"x",  "y",  "x1", "y1",    "x2",    "y2",
                                                         "cx", "cy", "r",  "width", "height"};
      if (kCoordinates.count(name) > 0) {
        const double v = parse_number(value);
        CHECK(std::isfinite(v));
        if (name == "width" || name == "height" || name == "r") CHECK(v >= 0);
      }
      if (name == "points") {
        std::string numbers = value;
        std::replace(numbers.begin(), numbers.end(), ',', ' ');
        char* p = numbers.data();
        char* end = nullptr;
        for (double v = std::strtod(p, &end); end != p; p = end, v = std::strtod(p, &end)) CHECK(std::isfinite(v));
        CHECK(std::string(p).find_first_not_of(' ') == std::string::npos);
      }
    }
  }
  return elements;
}

std::vector<Element> with_class(const std::vector<Element>& all, const std::string& cls) {
  std::vector<Element> out;
  for (const Element& e : all) {
    const auto found = e.attrs.find("class");
    if (found != e.attrs.end() && found->second == cls) out.push_back(e);
  }
  return out;
}

std::vector<Element> of_series(const std::vector<Element>& all, size_t series) {
  std::vector<Element> out;
  for (const Element& e : all) {
    if (e.attrs.count("data-series") > 0 && e.attrs.at("data-series") == std::to_string(series)) out.push_back(e);
  }
  return out;
}

int64_t sum_counts(const std::vector<Element>& bars) {
  int64_t sum = 0;
  for (const Element& bar : bars) sum += static_cast<int64_t>(parse_number(bar.attrs.at("data-count")));
  return sum;
}

// The data-value of each tick label on `axis` ("x" or "y"), in document order.
std::vector<double> tick_values(const std::vector<Element>& all, const std::string& axis) {
  std::vector<double> values;
  for (const Element& e : with_class(all, "tick-label")) {
    if (e.attrs.at("data-axis") == axis) values.push_back(parse_number(e.attrs.at("data-value")));
  }
  return values;
}

// The note under the plot, or "" when there is none.
std::string note_of(const std::vector<Element>& all) {
  const std::vector<Element> notes = with_class(all, "note");
  return notes.empty() ? "" : unescape(notes.front().text);
}

// Deterministic samples spread over [lo, hi].
std::vector<double> spread(size_t n, double lo, double hi) {
  std::vector<double> v;
  uint64_t state = 12345;
  for (size_t i = 0; i < n; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    v.push_back(lo + (hi - lo) * static_cast<double>(state >> 11) / 9007199254740992.0);
  }
  return v;
}

// step is 1, 2 or 5 x 10^k.
bool nice_step(double step) {
  if (!(step > 0)) return false;
  const double mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (std::fabs(mantissa - m) < 1e-9 * m) return true;
  }
  return false;
}

// Ticks that are evenly spaced multiples of a nice step and enclose [lo, hi]. The step is the first
// difference unless given (a difference of large ticks loses the digits a small step needs).
void check_nice_cover(const std::vector<double>& ticks, double lo, double hi, double step = 0) {
  INFO("range [" << lo << ", " << hi << "], " << ticks.size() << " ticks");
  REQUIRE(ticks.size() >= 2);
  if (step == 0) step = ticks[1] - ticks[0];
  CHECK(nice_step(step));
  for (size_t i = 0; i < ticks.size(); ++i) {
    const double k = ticks[i] / step;
    CHECK(std::fabs(k - std::round(k)) < 1e-6);
    if (i > 0) CHECK(std::fabs(ticks[i] - ticks[i - 1] - step) <= 1e-9 * step + 1e-15 * std::fabs(ticks[i]));
  }
  CHECK(ticks.front() <= lo + 1e-9 * step);
  CHECK(ticks.back() >= hi - 1e-9 * step);
}

}  // namespace

TEST_CASE("svg_plot: the XML checker refuses broken documents", "[svg_plot]") {
  std::vector<Element> elements;
  CHECK(xml_problem("<svg a=\"1\" b='&amp;'><g><text>x &lt; y &#233; &#xE9;</text></g><rect/></svg>\n", &elements)
            .empty());
  REQUIRE(elements.size() == 4);
  CHECK(elements[2].text == "x &lt; y &#233; &#xE9;");
  for (const char* bad : {"<svg><g></svg>", "<svg>", "<svg a=1/>", "<svg a=\"1\"b=\"2\"/>", "<svg a=\"1\" a=\"2\"/>",
                          "<svg a=\"<\"/>", "<svg a=\"&\"/>", "<svg>a & b</svg>", "<svg>a > b</svg>", "<svg>&foo;</svg>",
                          "<svg/><svg/>", "x<svg/>", "<svg>\xff</svg>", "<svg>\xed\xa0\x80</svg>", "<svg></g></svg>", ""}) {
    INFO(bad);
    CHECK_FALSE(xml_problem(bad).empty());
  }
}

TEST_CASE("svg_plot: histogram of two series: bars per bin, counts, legend", "[svg_plot]") {
  mt::PlotOptions options;
  options.title = "Reward scores";
  options.x_label = "score";
  options.y_label = "candidates";
  options.bins = 25;
  const std::vector<mt::PlotSeries> series = {{"kept", spread(200, 0.5, 1.0), {}}, {"dropped", spread(73, -0.2, 0.6), {}}};
  const std::string doc = mt::svg_histogram(series, options);
  const std::vector<Element> all = read_svg(doc);
  CHECK(all.front().attrs.at("width") == "640");
  CHECK(all.front().attrs.at("height") == "360");
  CHECK(doc.find("<title>Reward scores</title>") != std::string::npos);

  const std::vector<Element> bars = with_class(all, "bar");
  CHECK(bars.size() == 50);
  for (size_t s = 0; s < 2; ++s) {
    const std::vector<Element> mine = of_series(bars, s);
    REQUIRE(mine.size() == 25);
    CHECK(sum_counts(mine) == static_cast<int64_t>(series[s].values.size()));
    for (size_t b = 0; b < mine.size(); ++b) CHECK(mine[b].attrs.at("data-bin") == std::to_string(b));
    // Semi-transparent, one colour per series; the same bin of both series is the same rect.
    CHECK(mine[0].attrs.at("fill-opacity") == "0.45");
    CHECK(mine[3].attrs.at("x") == of_series(bars, 1 - s)[3].attrs.at("x"));
    CHECK(mine[3].attrs.at("width") == of_series(bars, 1 - s)[3].attrs.at("width"));
  }
  CHECK(of_series(bars, 0)[0].attrs.at("fill") != of_series(bars, 1)[0].attrs.at("fill"));
  // Every bar stands on the x axis, and more samples make a taller bar.
  const std::vector<Element> kept = of_series(bars, 0);
  const auto bottom = [](const Element& e) { return parse_number(e.attrs.at("y")) + parse_number(e.attrs.at("height")); };
  const auto height_per_count = [](const Element& e) {
    return parse_number(e.attrs.at("height")) / parse_number(e.attrs.at("data-count"));
  };
  for (const Element& b : kept) {
    CHECK(bottom(b) == Approx(bottom(kept[0])).margin(0.02));
    if (b.attrs.at("data-count") != "0") CHECK(height_per_count(b) == Approx(height_per_count(kept.back())).epsilon(0.01));
  }

  const std::vector<Element> legend = with_class(all, "legend-label");
  REQUIRE(legend.size() == 2);
  CHECK(legend[0].text == "kept (n=200)");
  CHECK(legend[1].text == "dropped (n=73)");
  CHECK(with_class(all, "x-label").front().text == "score");
  CHECK(with_class(all, "y-label").front().text == "candidates");
  CHECK(with_class(all, "title").front().text == "Reward scores");
  CHECK(note_of(all).empty());
  CHECK(with_class(all, "no-data").empty());
}

TEST_CASE("svg_plot: non-finite samples are skipped and counted in a note", "[svg_plot]") {
  const std::vector<mt::PlotSeries> series = {{"a", {0.1, kNaN, 0.4, kInf, 0.9}, {}}, {"b", {-kInf, 0.3}, {}}};
  mt::PlotOptions options;
  options.bins = 7;
  const std::vector<Element> all = read_svg(mt::svg_histogram(series, options));
  const std::vector<Element> bars = with_class(all, "bar");
  CHECK(sum_counts(of_series(bars, 0)) == 3);
  CHECK(sum_counts(of_series(bars, 1)) == 1);
  CHECK(of_series(bars, 1).size() == 7);
  CHECK(note_of(all) == "3 non-finite values not shown");
  CHECK(with_class(all, "legend-label")[1].text == "b (n=1)");

  const std::vector<Element> one = read_svg(mt::svg_histogram({{"a", {1, kNaN, 2}, {}}}, options));
  CHECK(note_of(one) == "1 non-finite value not shown");

  const std::vector<Element> line = read_svg(mt::svg_line_chart({{"loss", {2.0, kNaN, 1.5, 1.2}, {}}}, options));
  CHECK(with_class(line, "marker").size() == 3);
  CHECK(note_of(line) == "1 non-finite value not shown");
}

TEST_CASE("svg_plot: hostile labels are escaped everywhere", "[svg_plot]") {
  const std::string hostile = "</svg><script>&\"'";
  const std::string escaped = "&lt;/svg&gt;&lt;script&gt;&amp;&quot;&apos;";
  mt::PlotOptions options;
  options.title = hostile;
  options.x_label = hostile;
  options.y_label = hostile;
  const std::vector<mt::PlotSeries> series = {{hostile, {1, 2, 2, 3}, {}}, {"a & b < c", {2, 3}, {0, 1}}};
  for (const std::string& doc : {mt::svg_histogram(series, options), mt::svg_line_chart(series, options)}) {
    const std::vector<Element> all = read_svg(doc);
    CHECK(doc.find("<script") == std::string::npos);
    CHECK(mt::test::occurrences(doc, "</svg>") == 1);
    CHECK(mt::test::occurrences(doc, escaped) >= 5);  // <title>, title line, both axis labels, legend
    CHECK(unescape(with_class(all, "title").front().text) == hostile);
    CHECK(unescape(with_class(all, "y-label").front().text) == hostile);
    CHECK(unescape(with_class(all, "legend-label")[1].text).rfind("a & b < c", 0) == 0);
    CHECK(doc.find("<title>" + escaped + ": ") != std::string::npos);  // bar or marker tooltips
  }
}

TEST_CASE("svg_plot: invalid UTF-8 and control characters are replaced", "[svg_plot]") {
  // Stray byte, truncated pair, surrogate, control, U+FFFE, past U+10FFFF, truncated at the end.
  const std::string label = "ok \xff\xc3( \xed\xa0\x80 \x01 caf\xc3\xa9\tx \xef\xbf\xbe \xf4\x90\x80\x80 end\xc3";
  const std::string R = kReplacement;
  const std::string expected = "ok " + R + R + "( " + R + R + R + " " + R + " caf\xc3\xa9 x " + R + " " + R + R + R + R +
                               " end" + R;
  mt::PlotOptions options;
  options.title = label;
  options.x_label = label;
  for (const std::string& doc : {mt::svg_histogram({{label, {1, 2}, {}}}, options),
                                 mt::svg_line_chart({{label, {1, 2}, {}}}, options)}) {
    const std::vector<Element> all = read_svg(doc);  // the checker refuses invalid UTF-8
    CHECK(with_class(all, "title").front().text == expected);
    CHECK(with_class(all, "x-label").front().text == expected);
    CHECK(with_class(all, "legend-label").front().text.rfind(expected.substr(0, 20), 0) == 0);  // cut to fit
    CHECK(doc.find('\x01') == std::string::npos);
    CHECK(doc.find('\t') == std::string::npos);
  }
}

TEST_CASE("svg_plot: long labels are cut with an ellipsis on a character boundary", "[svg_plot]") {
  std::string long_label;
  for (int i = 0; i < 100; ++i) long_label += "\xc3\xa9";  // 100 two-byte characters
  mt::PlotOptions options;
  options.title = long_label;
  const std::vector<Element> all = read_svg(mt::svg_histogram({{long_label, {1}, {}}}, options));
  const std::string title = with_class(all, "title").front().text;
  CHECK(title.size() < long_label.size());
  CHECK(title.substr(title.size() - 3) == "\xE2\x80\xA6");
  const std::string legend = with_class(all, "legend-label").front().text;
  CHECK(legend.find("\xE2\x80\xA6 (n=1)") != std::string::npos);
}

TEST_CASE("svg_plot: nice ticks", "[svg_plot]") {
  const mt::AxisTicks unit = mt::nice_ticks(0, 1, 5);
  CHECK(unit.labels == std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1"});
  CHECK(unit.step == Approx(0.2));
  CHECK(unit.lo == 0);
  CHECK(unit.hi == Approx(1));
  CHECK(mt::nice_ticks(0, 97, 5).labels == std::vector<std::string>{"0", "20", "40", "60", "80", "100"});
  CHECK(mt::nice_ticks(-3.7, 12.2, 5).labels == std::vector<std::string>{"-5", "0", "5", "10", "15"});
  CHECK(mt::nice_ticks(1e30, 5e30, 5).labels == std::vector<std::string>{"1e30", "2e30", "3e30", "4e30", "5e30"});
  CHECK(mt::nice_ticks(1e-30, 3e-30, 5).labels ==
        std::vector<std::string>{"1e-30", "1.5e-30", "2e-30", "2.5e-30", "3e-30"});
  CHECK(mt::nice_ticks(0, 2.5e6, 5).labels == std::vector<std::string>{"0", "5e5", "1e6", "1.5e6", "2e6", "2.5e6"});
  CHECK(mt::nice_ticks(0.0011, 0.0013, 4).labels ==
        std::vector<std::string>{"0.0011", "0.00115", "0.0012", "0.00125", "0.0013"});
  CHECK(mt::nice_ticks(0, 1, 5, true).labels == std::vector<std::string>{"0", "1"});
  CHECK(mt::nice_ticks(0, 3, 8, true).labels == std::vector<std::string>{"0", "1", "2", "3"});

  struct Range {
    double lo, hi;
    int target;
  };
  const std::vector<Range> ranges = {
      {0, 1, 5},       {-3.7, 12.2, 5},     {1e-30, 3e-30, 5}, {1e30, 5e30, 7},   {-1e6, -2, 4},  {0.001, 0.0013, 6},
      {5, 5, 5},       {0, 0, 5},           {-7, -7, 3},       {1e-30, 1e-30, 5}, {1e30, 1e30, 5}, {2.31, 0.87, 6},
      {1e30, 1e30 + 1e14, 5}, {-1e300, 1e300, 8}, {123456789, 123456790, 5}, {0.1, 0.7, 1}, {0, 1, 0}, {0, 1, -4}};
  for (const Range& r : ranges) {
    const mt::AxisTicks t = mt::nice_ticks(r.lo, r.hi, r.target);
    const double lo = std::min(r.lo, r.hi), hi = std::max(r.lo, r.hi);
    INFO("nice_ticks(" << r.lo << ", " << r.hi << ", " << r.target << ")");
    check_nice_cover(t.values, lo, hi, t.step);
    CHECK(nice_step(t.step));
    CHECK(t.values.size() <= static_cast<size_t>(std::max(r.target, 1)) + 3);
    CHECK(t.lo == t.values.front());
    CHECK(t.hi == t.values.back());
    REQUIRE(t.labels.size() == t.values.size());
    CHECK(std::set<std::string>(t.labels.begin(), t.labels.end()).size() == t.labels.size());
    for (size_t i = 0; i < t.labels.size(); ++i) {
      INFO(t.labels[i]);
      // Compact: no "e+30", no trailing zeros after the decimal point.
      const std::string mantissa = t.labels[i].substr(0, t.labels[i].find('e'));
      CHECK(t.labels[i].find('+') == std::string::npos);
      CHECK((mantissa.find('.') == std::string::npos || (mantissa.back() != '0' && mantissa.back() != '.')));
      CHECK(std::fabs(parse_number(t.labels[i]) - t.values[i]) <= 1e-6 * t.step);
    }
  }
  // Non-finite ends fall back to [0, 1] instead of looping or dividing by zero.
  CHECK(mt::nice_ticks(kNaN, 1, 5).labels == unit.labels);
  CHECK(mt::nice_ticks(0, kInf, 5).labels == unit.labels);
}

TEST_CASE("svg_plot: ticks in the document cover the data", "[svg_plot]") {
  const std::vector<double> scores = spread(300, -3.7, 12.2);
  const std::vector<Element> hist = read_svg(mt::svg_histogram({{"s", scores, {}}}, mt::PlotOptions{}));
  const double lo = *std::min_element(scores.begin(), scores.end()), hi = *std::max_element(scores.begin(), scores.end());
  check_nice_cover(tick_values(hist, "x"), lo, hi);
  const std::vector<double> y = tick_values(hist, "y");
  int64_t tallest = 0;
  for (const Element& bar : with_class(hist, "bar")) {
    tallest = std::max(tallest, static_cast<int64_t>(parse_number(bar.attrs.at("data-count"))));
  }
  check_nice_cover(y, 0, static_cast<double>(tallest));
  CHECK(y.front() == 0);
  CHECK(nice_step(y[1] - y[0]));
  CHECK(y[1] - y[0] >= 1);  // counts: whole-number steps

  // Losses per round: y spans the data (not forced to zero), x the round indices.
  const std::vector<double> losses = {2.31, 1.74, 1.22, 1.05, 0.98, 0.91, 0.87};
  const std::vector<Element> line = read_svg(mt::svg_line_chart({{"train", losses, {}}}, mt::PlotOptions{}));
  check_nice_cover(tick_values(line, "y"), 0.87, 2.31);
  CHECK(tick_values(line, "y").front() > 0);
  const std::vector<double> x = tick_values(line, "x");
  check_nice_cover(x, 0, 6);
  CHECK(x[1] - x[0] >= 1);
}

TEST_CASE("svg_plot: line chart: markers, lines broken at gaps, explicit x", "[svg_plot]") {
  mt::PlotOptions options;
  options.title = "Loss per round";
  const std::vector<mt::PlotSeries> series = {
      {"train", {2.3, 1.9, kNaN, 1.2, 1.1, 1.0}, {}},
      {"eval", {2.4, 2.0, 1.6}, {0.5, 2.5, 4.5}},
      {"short x", {1, 2, 3, 4}, {0, 1}},
  };
  const std::vector<Element> all = read_svg(mt::svg_line_chart(series, options));
  const std::vector<Element> markers = with_class(all, "marker");
  const std::vector<Element> lines = with_class(all, "line");
  CHECK(of_series(markers, 0).size() == 5);
  CHECK(of_series(lines, 0).size() == 2);  // the NaN breaks the line in two
  CHECK(of_series(markers, 1).size() == 3);
  CHECK(of_series(lines, 1).size() == 1);
  CHECK(of_series(markers, 2).size() == 2);
  CHECK(note_of(all) == "1 non-finite value not shown; 2 values not shown (no x)");
  // x ticks cover the explicit x values of "eval" as well as the indices of "train".
  check_nice_cover(tick_values(all, "x"), 0, 5);
  // Markers sit left to right in x order within a series.
  const std::vector<Element> eval = of_series(markers, 1);
  CHECK(parse_number(eval[0].attrs.at("cx")) < parse_number(eval[1].attrs.at("cx")));
  CHECK(parse_number(eval[0].attrs.at("cy")) < parse_number(eval[2].attrs.at("cy")));  // larger y is higher up
  CHECK(eval[0].text.empty());
  CHECK(of_series(lines, 1).front().attrs.at("stroke") == eval[0].attrs.at("fill"));
  const std::vector<Element> legend = with_class(all, "legend-label");
  REQUIRE(legend.size() == 3);
  CHECK(legend[1].text == "eval");
}

TEST_CASE("svg_plot: degenerate inputs draw without crashing", "[svg_plot]") {
  const double big = std::numeric_limits<double>::max(), denormal = std::numeric_limits<double>::denorm_min();
  const std::vector<std::vector<mt::PlotSeries>> inputs = {
      {},
      {{"empty", {}, {}}},
      {{"empty", {}, {}}, {"one", {0.5}, {}}},
      {{"same", {5, 5, 5, 5}, {}}},
      {{"zeros", {0, 0, 0}, {}}},
      {{"one point", {0.5}, {}}},
      {{"tiny", {1e-30, 2e-30, 3e-30}, {}}},
      {{"huge", {1e30, -1e30, 5e29}, {}}},
      {{"extreme", {big, -big, denormal, -denormal, 0}, {}}},
      {{"negative", {-5, -4, -1, -4.5}, {}}},
      {{"all nan", {kNaN, kInf, -kInf}, {}}},
      {{"nan x", {1, 2}, {kNaN, kInf}}},
      {{"x all equal", {1, 2, 3}, {7, 7, 7}}},
  };
  for (int bins : {30, 1, 0, -3, 100000}) {
    for (const std::vector<mt::PlotSeries>& series : inputs) {
      mt::PlotOptions options;
      options.bins = bins;
      options.width = bins == 0 ? 0 : 640;
      options.height = bins == 0 ? -5 : 360;
      int64_t finite = 0, finite_points = 0;
      for (const mt::PlotSeries& s : series) {
        for (size_t i = 0; i < s.values.size(); ++i) {
          finite += std::isfinite(s.values[i]) ? 1 : 0;
          const bool has_x = s.x.empty() || i < s.x.size();
          finite_points += has_x && std::isfinite(s.values[i]) && (s.x.empty() || std::isfinite(s.x[i])) ? 1 : 0;
        }
      }
      INFO("bins " << bins << ", " << series.size() << " series, first: " << (series.empty() ? "-" : series[0].label));
      const std::vector<Element> hist = read_svg(mt::svg_histogram(series, options));
      const std::vector<Element> bars = with_class(hist, "bar");
      const size_t effective_bins = static_cast<size_t>(std::clamp(bins, 1, 500));
      CHECK(bars.size() == (finite > 0 ? effective_bins * series.size() : 0));
      CHECK(sum_counts(bars) == finite);
      for (const Element& bar : bars) CHECK(parse_number(bar.attrs.at("width")) > 0);  // nonzero bin width
      CHECK(with_class(hist, "no-data").size() == (finite > 0 ? 0u : 1u));
      if (options.width < 240) CHECK(hist.front().attrs.at("width") == "240");

      const std::vector<Element> line = read_svg(mt::svg_line_chart(series, options));
      CHECK(with_class(line, "marker").size() == static_cast<size_t>(finite_points));
      CHECK(with_class(line, "no-data").size() == (finite_points > 0 ? 0u : 1u));
      CHECK(tick_values(line, "x").size() >= 2);
      CHECK(tick_values(line, "y").size() >= 2);
    }
  }
  // All values equal: one bin holds them all and its ticks enclose the value.
  const std::vector<Element> same = read_svg(mt::svg_histogram({{"same", {5, 5, 5, 5}, {}}}, mt::PlotOptions{}));
  int64_t fullest = 0;
  for (const Element& bar : with_class(same, "bar")) {
    fullest = std::max(fullest, static_cast<int64_t>(parse_number(bar.attrs.at("data-count"))));
  }
  CHECK(fullest == 4);
  check_nice_cover(tick_values(same, "x"), 5, 5);
}

TEST_CASE("svg_plot: output is deterministic and the palette cycles", "[svg_plot]") {
  std::vector<mt::PlotSeries> series;
  for (int i = 0; i < 12; ++i) series.push_back({"s" + std::to_string(i), spread(20 + i, i, i + 3.0), {}});
  mt::PlotOptions options;
  options.title = "twelve";
  options.height = 600;  // room for all twelve legend rows
  const std::string first = mt::svg_histogram(series, options);
  CHECK(first == mt::svg_histogram(series, options));
  CHECK(mt::svg_line_chart(series, options) == mt::svg_line_chart(series, options));

  const std::vector<Element> bars = with_class(read_svg(first), "bar");
  std::vector<std::string> fills;
  for (size_t s = 0; s < series.size(); ++s) fills.push_back(of_series(bars, s).front().attrs.at("fill"));
  CHECK(std::set<std::string>(fills.begin(), fills.begin() + 10).size() == 10);
  CHECK(fills[10] == fills[0]);
  CHECK(fills[11] == fills[1]);

  // A legend taller than the plot shows what fits and counts the rest.
  options.height = 200;
  const std::vector<Element> small = read_svg(mt::svg_line_chart(series, options));
  const std::vector<Element> rows = with_class(small, "legend-label");
  REQUIRE(rows.size() < series.size());
  CHECK(rows.back().text == "+" + std::to_string(series.size() - rows.size() + 1) + " more");
}
