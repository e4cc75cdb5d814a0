// The training progress display (see progress.h): a one-line bar redrawn in place with '\r' and
// "erase to end of line", fitted to the terminal's width, or plain log lines every log_every steps;
// the tokens/s window; and the duration / SI number formatting both use.
#include "trainer/report/progress.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "models/error.h"

namespace mt {

namespace {

constexpr int kBarWidth = 20, kMinBarWidth = 8;
constexpr size_t kDefaultColumns = 80;
constexpr size_t kMaxWindowSteps = 4096;  // bounds the window when steps take microseconds
constexpr const char* kEraseToEol = "\x1b[K";

std::string format_loss(double loss) {
  return std::fabs(loss) < 1e5 ? fmt::format("{:.4f}", loss) : fmt::format("{:.4g}", loss);
}

std::string format_grad_norm(double g) {
  const double a = std::fabs(g);
  return (a == 0 || (a >= 1e-3 && a < 1e5)) ? fmt::format("{:.3f}", g) : fmt::format("{:.3g}", g);
}

// ETA from this process's own pace: resumed steps done by an earlier run do not count.
std::string format_eta(const ProgressStats& s, int64_t total) {
  if (s.steps_this_run <= 0) return "?";
  const int64_t remaining = std::max<int64_t>(0, total - s.step);
  return format_duration(s.elapsed_s / static_cast<double>(s.steps_this_run) * static_cast<double>(remaining));
}

// The bar's fields in display order; `drop_rank` is the order they go in when the line is too long
// (1 first; 0 = never).
struct Field {
  std::string text;  // the bar itself is drawn at its width instead
  int drop_rank;
  bool is_bar = false;
};

std::string draw_bar(double frac, int width) {
  const int filled = static_cast<int>(frac * width);
  return "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') + "]";
}

}  // namespace

void ThroughputWindow::add(double elapsed_s, double tokens_per_s) {
  if (!std::isfinite(tokens_per_s) || tokens_per_s <= 0 || !std::isfinite(elapsed_s)) return;
  if (!steps_.empty() && elapsed_s < steps_.back().first) {  // a new clock: start over
    steps_.clear();
  }
  steps_.emplace_back(elapsed_s, 1.0 / tokens_per_s);
  while (steps_.size() > 1 && (steps_.front().first < elapsed_s - window_s_ || steps_.size() > kMaxWindowSteps))
    steps_.pop_front();
}

double ThroughputWindow::tokens_per_s() const {
  if (steps_.empty()) return std::nan("");
  double sum = 0;
  for (const auto& st : steps_) sum += st.second;
  return static_cast<double>(steps_.size()) / sum;
}

std::string render_progress_line(const ProgressStats& s, int64_t total) {
  return fmt::format("step {}/{} loss {} lr {:.2e} grad_norm {} tok/s {} elapsed {} ETA {}", s.step, total,
                     format_loss(s.loss), s.lr, format_grad_norm(s.grad_norm), format_si(s.tokens_per_s),
                     format_duration(s.elapsed_s), format_eta(s, total));
}

std::string render_progress_bar(const ProgressStats& s, int64_t total, size_t columns) {
  const size_t limit = columns > 1 ? columns - 1 : 1;
  const double frac = total > 0 ? std::clamp(static_cast<double>(s.step) / static_cast<double>(total), 0.0, 1.0) : 0.0;
  const std::string total_str = std::to_string(total);
  const std::vector<Field> fields = {
      {fmt::format("{:>{}}/{}", s.step, total_str.size(), total_str), 0},
      {"", 2, true},
      {fmt::format("{:3d}%", static_cast<int>(frac * 100)), 3},
      {"loss " + format_loss(s.loss), 7},
      {fmt::format("lr {:.2e}", s.lr), 1},
      {"gnorm " + format_grad_norm(s.grad_norm), 4},
      {"tok/s " + format_si(s.tokens_per_s), 5},
      // elapsed<remaining, as tqdm writes it
      {format_duration(s.elapsed_s) + "<" + format_eta(s, total), 6},
  };
  constexpr int kLastRank = 7;
  for (int dropped = 0; dropped <= kLastRank; ++dropped) {
    size_t fixed = 0;  // the kept fields other than the bar, with one space before each but the first
    bool with_bar = false;
    for (const Field& f : fields) {
      if (f.drop_rank != 0 && f.drop_rank <= dropped) continue;
      if (f.is_bar) with_bar = true;
      else fixed += (fixed > 0 ? 1 : 0) + f.text.size();
    }
    int bar_width = 0;
    if (with_bar) {
      const size_t room = limit > fixed + 3 ? limit - fixed - 3 : 0;  // a space and the brackets
      if (room < static_cast<size_t>(kMinBarWidth)) continue;
      bar_width = static_cast<int>(std::min<size_t>(room, kBarWidth));
    } else if (fixed > limit) {
      continue;
    }
    std::string line;
    for (const Field& f : fields) {
      if (f.drop_rank != 0 && f.drop_rank <= dropped) continue;
      if (!line.empty()) line += ' ';
      line += f.is_bar ? draw_bar(frac, bar_width) : f.text;
    }
    return line;
  }
  std::string line = fields.front().text;  // the step count alone is still too long: cut it
  if (line.size() > limit) line.resize(limit);
  return line;
}

size_t terminal_columns(std::FILE* out) {
  winsize ws{};
  if (::ioctl(::fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* env = std::getenv("COLUMNS"); env != nullptr) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0) return static_cast<size_t>(v);
  }
  return kDefaultColumns;
}

Progress::Progress(const std::string& mode, int64_t total_steps, int64_t log_every, std::FILE* out, size_t columns)
    : out_(out), total_(total_steps), log_every_(std::max<int64_t>(1, log_every)), columns_(columns) {
  if (mode == "auto") {
    bar_ = ::isatty(::fileno(out)) == 1;
  } else if (mode == "bar") {
    bar_ = true;
  } else if (mode == "none") {
    none_ = true;
  } else if (mode != "lines") {
    throw Error(fmt::format("progress: unknown mode '{}' (expected auto, bar, lines or none)", mode));
  }
}

std::string Progress::bar_line(const ProgressStats& shown) const {
  return render_progress_bar(shown, total_, columns_ > 0 ? columns_ : terminal_columns(out_));
}

void Progress::update(const ProgressStats& s) {
  if (none_) return;
  throughput_.add(s.elapsed_s, s.tokens_per_s);
  ProgressStats shown = s;
  shown.tokens_per_s = throughput_.tokens_per_s();
  if (!bar_) {
    if (!is_log_step(s.step, total_, log_every_)) return;
    std::fprintf(out_, "%s\n", render_progress_line(shown, total_).c_str());
    std::fflush(out_);
    return;
  }
  last_shown_ = shown;
  std::fprintf(out_, "\r%s%s", bar_line(shown).c_str(), kEraseToEol);
  std::fflush(out_);
  bar_drawn_ = true;
}

void Progress::message(const std::string& line) {
  const char* newline = (!line.empty() && line.back() == '\n') ? "" : "\n";
  if (bar_ && bar_drawn_) {
    // Replace the bar by the message, then draw the bar again below it.
    std::fprintf(out_, "\r%s%s%s%s%s", kEraseToEol, line.c_str(), newline, bar_line(last_shown_).c_str(), kEraseToEol);
  } else {
    std::fprintf(out_, "%s%s", line.c_str(), newline);
  }
  std::fflush(out_);
}

void Progress::finish() {
  if (bar_ && bar_drawn_) std::fputc('\n', out_);
  bar_drawn_ = false;
  std::fflush(out_);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds >= 3600.0 * 100000) return ">99999h";  // nonsense ETAs early in a run; keeps llround defined
  const long long s = std::llround(seconds);
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string format_si(double value) {
  if (!std::isfinite(value)) return "?";
  if (value < 0) return "-" + format_si(-value);
  static const char* const kUnits[] = {"", "k", "M", "G", "T", "P", "E"};
  constexpr int kLastUnit = 6;
  int unit = 0;
  double m = value;
  // 999.5 and above would round up to "1000": show it as 1.00 of the next unit instead.
  while (m >= 999.5 && unit < kLastUnit) {
    m /= 1000.0;
    ++unit;
  }
  // Three significant digits; plain integers below 1000 print as they are.
  if (m >= 99.95 || (unit == 0 && m == std::floor(m))) return fmt::format("{:.0f}{}", m, kUnits[unit]);
  if (m >= 9.995) return fmt::format("{:.1f}{}", m, kUnits[unit]);
  return fmt::format("{:.2f}{}", m, kUnits[unit]);
}

}  // namespace mt
