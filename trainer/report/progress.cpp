// The training progress display (see progress.h): a one-line bar redrawn in place with '\r' and
// "erase to end of line", or plain log lines every log_every steps; and the duration / SI number
// formatting both use.
#include "trainer/report/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "models/error.h"

namespace mt {

namespace {

constexpr int kBarWidth = 20;
// A bar line stays below 100 columns: writing the last column of a 100-column terminal would make
// some terminals wrap, and '\r' would then redraw on the wrong line.
constexpr size_t kMaxBarColumns = 99;
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

}  // namespace

Progress::Progress(const std::string& mode, int64_t total_steps, int64_t log_every, std::FILE* out)
    : out_(out), total_(total_steps), log_every_(std::max<int64_t>(1, log_every)) {
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

void Progress::update(const ProgressStats& s) {
  if (none_) return;
  const std::string tail = fmt::format("loss {} lr {:.2e}", format_loss(s.loss), s.lr);
  const std::string speed = fmt::format("tok/s {} ETA {}", format_si(s.tokens_per_s), format_eta(s, total_));
  if (!bar_) {
    if (s.step % log_every_ != 0 && s.step != total_) return;
    std::fprintf(out_, "step %lld/%lld %s grad_norm %s %s\n", static_cast<long long>(s.step),
                 static_cast<long long>(total_), tail.c_str(), format_grad_norm(s.grad_norm).c_str(), speed.c_str());
    std::fflush(out_);
    return;
  }
  const double frac = total_ > 0 ? std::clamp(static_cast<double>(s.step) / static_cast<double>(total_), 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(frac * kBarWidth);
  const std::string total_str = std::to_string(total_);
  std::string line = fmt::format("{:>{}}/{} [{}{}] {:3d}% {} {}", s.step, total_str.size(), total_str,
                                 std::string(filled, '#'), std::string(kBarWidth - filled, '.'),
                                 static_cast<int>(frac * 100), tail, speed);
  if (line.size() > kMaxBarColumns) line.resize(kMaxBarColumns);
  last_bar_ = line;
  std::fprintf(out_, "\r%s%s", line.c_str(), kEraseToEol);
  std::fflush(out_);
  bar_drawn_ = true;
}

void Progress::message(const std::string& line) {
  if (none_) return;
  const char* newline = (!line.empty() && line.back() == '\n') ? "" : "\n";
  if (bar_ && bar_drawn_) {
    // Replace the bar by the message, then draw the bar again below it.
    std::fprintf(out_, "\r%s%s%s%s%s", kEraseToEol, line.c_str(), newline, last_bar_.c_str(), kEraseToEol);
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
