// The progress display (trainer/report/progress.h), written to a tmpfile(): lines mode prints every
// log_every steps and at the last step with all fields; bar mode redraws one '\r' line that fits
// the terminal width, dropping the least important fields first, and keeps messages on their own
// lines; tokens/s is the mean of a window of recent steps; none prints messages only; duration and SI
// formatting.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "models/error.h"
#include "trainer/report/progress.h"
#include "tests/test_util.h"

namespace {

// What fn writes to a fresh temporary FILE.
std::string capture(const std::function<void(std::FILE*)>& fn) {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  fn(f);
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

// Fixed stats for `step`: one second per step, so the ETA is the number of steps left.
mt::ProgressStats stats(int64_t step) {
  mt::ProgressStats s;
  s.step = step;
  s.loss = 2.3412;
  s.lr = 1.2e-5;
  s.grad_norm = 0.812;
  s.tokens_per_s = 51100;
  s.elapsed_s = static_cast<double>(step);
  s.steps_this_run = step;
  return s;
}

}  // namespace

TEST_CASE("progress: lines mode prints every log_every steps and the last step", "[progress]") {
  const std::string out = capture([](std::FILE* f) {
    mt::Progress p("lines", 25, 10, f);
    CHECK_FALSE(p.is_bar());
    for (int64_t step = 1; step <= 25; ++step) p.update(stats(step));
    p.finish();
  });
  CHECK(out ==
        "step 10/25 loss 2.3412 lr 1.20e-05 grad_norm 0.812 tok/s 51.1k elapsed 10s ETA 15s\n"
        "step 20/25 loss 2.3412 lr 1.20e-05 grad_norm 0.812 tok/s 51.1k elapsed 20s ETA 5s\n"
        "step 25/25 loss 2.3412 lr 1.20e-05 grad_norm 0.812 tok/s 51.1k elapsed 25s ETA 0s\n");
  CHECK(out.find('\r') == std::string::npos);
  CHECK(out.find('\x1b') == std::string::npos);
}

TEST_CASE("progress: lines mode message and an unknown ETA", "[progress]") {
  const std::string out = capture([](std::FILE* f) {
    mt::Progress p("lines", 200, 1, f);
    mt::ProgressStats s = stats(37);
    s.steps_this_run = 0;  // nothing done by this process yet: no pace to extrapolate
    s.elapsed_s = 185;
    p.update(s);
    p.message("saved checkpoint-37");
  });
  CHECK(out ==
        "step 37/200 loss 2.3412 lr 1.20e-05 grad_norm 0.812 tok/s 51.1k elapsed 3m05s ETA ?\n"
        "saved checkpoint-37\n");
}

TEST_CASE("progress: auto mode on a file that is not a terminal prints lines", "[progress]") {
  const std::string out = capture([](std::FILE* f) {
    mt::Progress p("auto", 4, 2, f);
    CHECK_FALSE(p.is_bar());
    for (int64_t step = 1; step <= 4; ++step) p.update(stats(step));
  });
  CHECK(mt::test::occurrences(out, "\n") == 2);
  CHECK(out.rfind("step 2/4 ", 0) == 0);
  CHECK(out.find("step 4/4 ") != std::string::npos);
}

TEST_CASE("progress: bar mode redraws one line in place", "[progress]") {
  const std::string out = capture([](std::FILE* f) {
    mt::Progress p("bar", 200, 10, f, 100);
    CHECK(p.is_bar());
    p.update(stats(36));
    p.update(stats(37));
  });
  const std::string bar37 = " 37/200 [###.................]  18% loss 2.3412 lr 1.20e-05 gnorm 0.812 tok/s 51.1k 37s<2m43s";
  CHECK(bar37 == mt::render_progress_bar(stats(37), 200, 100));
  CHECK(out.find('\n') == std::string::npos);
  CHECK(mt::test::occurrences(out, "\r") == 2);
  CHECK(mt::test::occurrences(out, "\x1b[K") == 2);
  CHECK(out.size() >= bar37.size() + 4);
  CHECK(out.substr(out.size() - bar37.size() - 4) == "\r" + bar37 + "\x1b[K");
  CHECK(out.find(" 36/200 [###.................]  18% ") != std::string::npos);

  const std::string done = capture([](std::FILE* f) {
    mt::Progress p("bar", 200, 10, f, 100);
    p.update(stats(200));
    p.finish();
    p.finish();  // a second finish adds nothing
  });
  CHECK(done == "\r200/200 [####################] 100% loss 2.3412 lr 1.20e-05 gnorm 0.812 tok/s 51.1k 3m20s<0s\x1b[K\n");
}

TEST_CASE("progress: at 60 columns the bar keeps loss, grad norm, tokens/s, elapsed and ETA", "[progress]") {
  const std::string out = capture([](std::FILE* f) {
    mt::Progress p("bar", 200, 10, f, 60);
    for (int64_t step = 1; step <= 200; ++step) p.update(stats(step));
    p.message("eval loss 2.1000");
    p.finish();
  });
  // Every drawn line: split at '\r' and '\n', without the erase-to-end-of-line codes.
  std::vector<std::string> lines;
  std::string cur;
  for (char c : out + "\n") {
    if (c == '\r' || c == '\n') {
      for (size_t at; (at = cur.find("\x1b[K")) != std::string::npos;) cur.erase(at, 3);
      if (!cur.empty()) lines.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  REQUIRE(lines.size() == 202);  // 200 redraws, the message, the bar again
  for (const std::string& l : lines) {
    INFO(l);
    CHECK(l.size() < 60);
    if (l == "eval loss 2.1000") continue;
    CHECK(l.find("loss 2.3412") != std::string::npos);
    CHECK(l.find("gnorm 0.812") != std::string::npos);
    CHECK(l.find("tok/s 51.1k") != std::string::npos);
  }
  CHECK(lines[36].find(" 37/200 ") == 0);
  CHECK(lines[36].find(" 37s<2m43s") != std::string::npos);  // elapsed<ETA
  CHECK(lines[199].find("200/200 100% ") == 0);
}

namespace {

// The fields a bar line shows, by a mark each one alone contains.
std::vector<bool> shown_fields(const std::string& line) {
  std::vector<bool> shown;
  for (const char* mark : {"[", "%", "loss ", "lr ", "gnorm ", "tok/s ", "<"})
    shown.push_back(line.find(mark) != std::string::npos);
  return shown;
}

}  // namespace

TEST_CASE("progress: the bar fits any width, and a wider terminal never shows fewer fields", "[progress]") {
  mt::ProgressStats huge = stats(98765432101LL);
  huge.loss = -1.234567e300;
  huge.lr = 9.99e-300;
  huge.grad_norm = 3.5e200;
  huge.tokens_per_s = 1.5e25;
  huge.elapsed_s = 1e12;
  struct Case {
    mt::ProgressStats s;
    int64_t total;
  };
  for (const Case& c : {Case{stats(37), 200}, Case{stats(1), 1}, Case{huge, 123456789012LL}}) {
    std::optional<std::vector<bool>> narrower;
    for (size_t columns = 0; columns <= 200; ++columns) {
      const std::string line = mt::render_progress_bar(c.s, c.total, columns);
      INFO("columns " << columns << ": " << line);
      CHECK(line.size() <= std::max<size_t>(columns, 2) - 1);
      CHECK(!line.empty());
      CHECK(line.find('\n') == std::string::npos);
      if (line.size() >= std::to_string(c.total).size() * 2 + 1) {
        CHECK(line.find(std::to_string(c.s.step) + "/" + std::to_string(c.total)) != std::string::npos);
      }
      const std::vector<bool> shown = shown_fields(line);
      if (narrower) {
        for (size_t i = 0; i < shown.size(); ++i) CHECK((shown[i] || !(*narrower)[i]));
      }
      narrower = shown;
    }
    // Wide enough, every field is there.
    for (bool b : shown_fields(mt::render_progress_bar(c.s, c.total, 200))) CHECK(b);
  }
  // Narrower: the bar shrinks to 8 first, then the least important field goes (lr), not the bar
  // or the percentage.
  const std::string full = mt::render_progress_bar(stats(37), 200, 200);
  const auto bar_width = [](const std::string& line) { return line.find(']') - line.find('[') - 1; };
  REQUIRE(bar_width(full) == 20);
  CHECK(mt::render_progress_bar(stats(37), 200, full.size() + 1) == full);
  const std::string shrunk = mt::render_progress_bar(stats(37), 200, full.size());
  CHECK(shrunk.size() == full.size() - 1);
  CHECK(bar_width(shrunk) == 19);
  const std::string narrowest = mt::render_progress_bar(stats(37), 200, full.size() - 11);
  CHECK(bar_width(narrowest) == 8);
  CHECK(narrowest.find("lr ") != std::string::npos);
  const std::string no_lr = mt::render_progress_bar(stats(37), 200, full.size() - 12);
  CHECK(no_lr.find("lr ") == std::string::npos);
  CHECK(no_lr.find('[') != std::string::npos);
  CHECK(no_lr.find('%') != std::string::npos);
}

namespace {

// Steps of 1000 tokens each taking `seconds[i]`, through a ThroughputWindow, and through Progress in
// lines mode: what each shows after each step, with the tokens/s over the steps of the window.
struct Smoothed {
  std::vector<double> shown, honest;
  std::string lines;
};
Smoothed smooth(const std::vector<double>& seconds, double window_s) {
  Smoothed r;
  mt::ThroughputWindow w(window_s);
  std::vector<double> ends;
  double t = 0;
  std::vector<mt::ProgressStats> steps;
  for (size_t i = 0; i < seconds.size(); ++i) {
    t += seconds[i];
    ends.push_back(t);
    w.add(t, 1000.0 / seconds[i]);
    r.shown.push_back(w.tokens_per_s());
    double tokens = 0, time = 0;
    for (size_t j = 0; j <= i; ++j)
      if (j == i || ends[j] >= t - window_s) {
        tokens += 1000;
        time += seconds[j];
      }
    r.honest.push_back(tokens / time);
    mt::ProgressStats s = stats(static_cast<int64_t>(i + 1));
    s.elapsed_s = t;
    s.tokens_per_s = 1000.0 / seconds[i];
    steps.push_back(s);
  }
  r.lines = capture([&](std::FILE* f) {
    mt::Progress p("lines", static_cast<int64_t>(steps.size()), 1, f);
    for (const auto& s : steps) p.update(s);
  });
  return r;
}

}  // namespace

TEST_CASE("progress: tokens/s is the mean over the last steps, one odd step barely moves it", "[progress]") {
  // 40 steps of one second, one of them 10x faster (a step whose wait landed in the next one) and
  // one 10x slower (a data stall): the raw rates jump 10x, the shown figure stays near 1000.
  std::vector<double> seconds(40, 1.0);
  seconds[20] = 0.1;
  seconds[30] = 10.0;
  const Smoothed r = smooth(seconds, 20.0);
  for (size_t i = 0; i < seconds.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(std::abs(r.shown[i] - r.honest[i]) <= 1e-9 * r.honest[i]);
    if (i >= 1) CHECK(r.shown[i] / r.shown[i - 1] < 2.0);
    if (i >= 1) CHECK(r.shown[i - 1] / r.shown[i] < 2.0);
  }
  CHECK(r.shown[20] < 1060);  // the fast step: 1000 tok/s raw 10000
  CHECK(r.shown[30] > 500);   // the stall: raw 100; it took half of the window's 20 s
  // Lines mode shows that figure.
  std::istringstream in(r.lines);
  std::string line;
  for (size_t i = 0; std::getline(in, line); ++i) {
    INFO(line);
    REQUIRE(i < seconds.size());
    CHECK(line.find(" tok/s " + mt::format_si(r.shown[i]) + " ") != std::string::npos);
  }
}

TEST_CASE("progress: the tokens/s window forgets steps older than its length", "[progress]") {
  // 30 s at 1000 tok/s, then 30 s at 2000 tok/s: after 20 s of the new pace only it is shown.
  std::vector<double> seconds(30, 1.0);
  for (int i = 0; i < 60; ++i) seconds.push_back(0.5);
  const Smoothed r = smooth(seconds, 20.0);
  CHECK(std::abs(r.shown[29] - 1000) < 1e-6);
  CHECK(r.shown[40] > 1000);
  CHECK(r.shown[40] < 2000);
  CHECK(std::abs(r.shown.back() - 2000) < 1e-6);
  // Steps longer than the window: the latest step alone.
  const Smoothed slow = smooth({30.0, 60.0}, 20.0);
  CHECK(std::abs(slow.shown[1] - 1000.0 / 60.0) < 1e-9);

  mt::ThroughputWindow w;
  CHECK(std::isnan(w.tokens_per_s()));
  w.add(1, 0);  // no usable rate
  w.add(2, std::nan(""));
  CHECK(std::isnan(w.tokens_per_s()));
  w.add(3, 500);
  CHECK(w.tokens_per_s() == 500);
}

TEST_CASE("progress: terminal_columns falls back to $COLUMNS, then 80", "[progress]") {
  const char* old = std::getenv("COLUMNS");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  std::FILE* f = std::tmpfile();  // not a terminal
  REQUIRE(f != nullptr);
  ::setenv("COLUMNS", "60", 1);
  CHECK(mt::terminal_columns(f) == 60);
  ::setenv("COLUMNS", "wide", 1);
  CHECK(mt::terminal_columns(f) == 80);
  ::setenv("COLUMNS", "0", 1);
  CHECK(mt::terminal_columns(f) == 80);
  ::unsetenv("COLUMNS");
  CHECK(mt::terminal_columns(f) == 80);
  std::fclose(f);
  if (saved) ::setenv("COLUMNS", saved->c_str(), 1);
}

TEST_CASE("progress: a message in bar mode clears the bar, prints, and redraws it", "[progress]") {
  const std::string bar = " 37/200 [###.................]  18% loss 2.3412 lr 1.20e-05 gnorm 0.812 tok/s 51.1k 37s<2m43s";
  const std::string out = capture([](std::FILE* f) {
    mt::Progress p("bar", 200, 10, f, 100);
    p.message("before any bar");
    p.update(stats(37));
    p.message("eval loss 2.1000");
    p.finish();
  });
  CHECK(out == "before any bar\n"
               "\r" + bar + "\x1b[K"
               "\r\x1b[Keval loss 2.1000\n" +
               bar + "\x1b[K\n");
}

TEST_CASE("progress: none prints no step progress, but its messages (warnings) still print", "[progress]") {
  const std::string out = capture([](std::FILE* f) {
    mt::Progress p("none", 10, 1, f);
    CHECK_FALSE(p.is_bar());
    for (int64_t step = 1; step <= 10; ++step) p.update(stats(step));
    p.message("warning: 3 of 4 records not used");
    p.finish();
  });
  CHECK(out == "warning: 3 of 4 records not used\n");
}

TEST_CASE("progress: an unknown mode is an mt::Error", "[progress]") {
  mt::test::require_error([] { mt::Progress p("fancy", 10, 1, stderr); }, {"fancy", "auto", "lines"});
}

TEST_CASE("progress: format_duration", "[progress]") {
  CHECK(mt::format_duration(0) == "0s");
  CHECK(mt::format_duration(12) == "12s");
  CHECK(mt::format_duration(12.4) == "12s");
  CHECK(mt::format_duration(59.6) == "1m00s");
  CHECK(mt::format_duration(185) == "3m05s");
  CHECK(mt::format_duration(3599.4) == "59m59s");
  CHECK(mt::format_duration(3600) == "1h00m");
  CHECK(mt::format_duration(3725) == "1h02m");
  CHECK(mt::format_duration(100 * 3600 + 5 * 60) == "100h05m");
  CHECK(mt::format_duration(-1) == "?");
  CHECK(mt::format_duration(std::numeric_limits<double>::quiet_NaN()) == "?");
  CHECK(mt::format_duration(std::numeric_limits<double>::infinity()) == "?");
  CHECK(mt::format_duration(1e300) == ">99999h");
}

TEST_CASE("progress: format_si", "[progress]") {
  CHECK(mt::format_si(51100) == "51.1k");
  CHECK(mt::format_si(1.2e6) == "1.20M");
  CHECK(mt::format_si(950) == "950");
  CHECK(mt::format_si(0) == "0");
  CHECK(mt::format_si(12.5) == "12.5");
  CHECK(mt::format_si(3.14159) == "3.14");
  CHECK(mt::format_si(999.4) == "999");
  CHECK(mt::format_si(999.6) == "1.00k");  // not "1000"
  CHECK(mt::format_si(1000) == "1.00k");
  CHECK(mt::format_si(123456) == "123k");
  CHECK(mt::format_si(99960) == "100k");
  CHECK(mt::format_si(2.5e9) == "2.50G");
  CHECK(mt::format_si(-2500) == "-2.50k");
  CHECK(mt::format_si(std::numeric_limits<double>::quiet_NaN()) == "?");
}
