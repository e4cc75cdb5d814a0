// What the user sees during training: on a terminal, one progress line redrawn in place (step/total,
// a bar, loss, lr, tokens/s, ETA); elsewhere, plain log lines every N steps. Messages (eval results,
// checkpoint saves, warnings) print on their own line without breaking the bar.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace mt {

struct ProgressStats {
  int64_t step = 0;          // optimizer steps done
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0;
  double elapsed_s = 0;      // since this process started training (for ETA)
  int64_t steps_this_run = 0;  // steps done by this process (ETA = elapsed / steps_this_run * remaining)
};

class Progress {
 public:
  // mode: "auto" (bar when `out` is a TTY, else lines) | "bar" | "lines" | "none".
  Progress(const std::string& mode, int64_t total_steps, int64_t log_every, std::FILE* out = stderr);
  void update(const ProgressStats& stats);   // bar: redraw; lines: print when step % log_every == 0 or last step
  void message(const std::string& line);     // always printed (except mode none) on its own line
  void finish();                             // ends the bar line
  bool is_bar() const { return bar_; }

 private:
  std::FILE* out_;
  int64_t total_, log_every_;
  bool bar_ = false, none_ = false, bar_drawn_ = false;
  std::string last_bar_;  // the bar line last drawn, redrawn after a message()
};

// "1h02m", "3m05s", "12s"; "?" for non-finite or negative.
std::string format_duration(double seconds);
// 51100 -> "51.1k", 1.2e6 -> "1.20M", 950 -> "950".
std::string format_si(double value);

}  // namespace mt
