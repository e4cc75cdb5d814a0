// What the user sees during training: on a terminal, one progress line redrawn in place (step/total,
// a bar, loss, lr, grad norm, tokens/s, elapsed<ETA) that fits the terminal's width; elsewhere, plain
// log lines every N steps. Messages (eval results, checkpoint saves, warnings) print on their own
// line without breaking the bar. Tokens/s is a mean over the last steps, not one step's rate.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <utility>

namespace mt {

struct ProgressStats {
  int64_t step = 0;          // optimizer steps done
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0;
  double elapsed_s = 0;      // since this process started training (for ETA)
  int64_t steps_this_run = 0;  // steps done by this process (ETA = elapsed / steps_this_run * remaining)
};

// Tokens/s over the steps reported in the last `window_s` seconds (always at least the latest):
// the mean time per token, inverted, i.e. the window's tokens over its time when steps carry equal
// token counts. One odd step (a data stall, a fast step after a slow one) then moves the figure
// by its share of the window's time instead of by its own ratio.
class ThroughputWindow {
 public:
  explicit ThroughputWindow(double window_s = 20.0) : window_s_(window_s) {}
  // One step's rate, reported at `elapsed_s`; non-finite or non-positive rates are left out.
  void add(double elapsed_s, double tokens_per_s);
  double tokens_per_s() const;  // NaN before any usable step

 private:
  double window_s_;
  std::deque<std::pair<double, double>> steps_;  // (elapsed_s, seconds per token), oldest first
};

// The bar line for `s` (its tokens_per_s is the figure shown) in a terminal `columns` wide: at most
// columns - 1 characters (writing the last column makes some terminals wrap, and '\r' then redraws
// on the wrong line). Fields that do not fit go, least important first: lr, the bar (after shrinking),
// the percentage, grad norm, tokens/s, elapsed<ETA, loss; the step count stays.
std::string render_progress_bar(const ProgressStats& s, int64_t total, size_t columns);
// The plain log line for `s` (lines mode), every field, no width limit.
std::string render_progress_line(const ProgressStats& s, int64_t total);
// Whether lines mode logs step `step` of `total`: every `log_every` steps (at least 1) and the last.
inline bool is_log_step(int64_t step, int64_t total, int64_t log_every) {
  return step % (log_every < 1 ? 1 : log_every) == 0 || step == total;
}
// The width of the terminal `out` writes to (ioctl TIOCGWINSZ), else $COLUMNS, else 80.
size_t terminal_columns(std::FILE* out);

class Progress {
 public:
  // mode: "auto" (bar when `out` is a TTY, else lines) | "bar" | "lines" | "none" (no step progress;
  // messages still print: a warning must not depend on how progress is shown). columns: the bar's
  // terminal width; 0 = terminal_columns(out), asked at each redraw so a resize takes effect.
  Progress(const std::string& mode, int64_t total_steps, int64_t log_every, std::FILE* out = stderr,
           size_t columns = 0);
  void update(const ProgressStats& stats);   // bar: redraw; lines: print when step % log_every == 0 or last step
  void message(const std::string& line);     // always printed, on its own line
  void finish();                             // ends the bar line
  bool is_bar() const { return bar_; }

 private:
  std::string bar_line(const ProgressStats& shown) const;

  std::FILE* out_;
  int64_t total_, log_every_;
  size_t columns_;
  bool bar_ = false, none_ = false, bar_drawn_ = false;
  ThroughputWindow throughput_;
  ProgressStats last_shown_;  // the stats last drawn in the bar, redrawn after a message()
};

// "1h02m", "3m05s", "12s"; "?" for non-finite or negative.
std::string format_duration(double seconds);
// 51100 -> "51.1k", 1.2e6 -> "1.20M", 950 -> "950".
std::string format_si(double value);

}  // namespace mt
