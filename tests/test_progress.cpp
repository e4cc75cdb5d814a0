// The progress display (trainer/report/progress.h), written to a tmpfile(): lines mode prints every
// log_every steps and at the last step with all fields; bar mode redraws one '\r' line under 100
// columns and keeps messages on their own lines; none prints nothing; duration and SI formatting.
#include <cstdio>
#include <functional>
#include <limits>
#include <string>

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
        "step 10/25 loss 2.3412 lr 1.20e-05 grad_norm 0.812 tok/s 51.1k ETA 15s\n"
        "step 20/25 loss 2.3412 lr 1.20e-05 grad_norm 0.812 tok/s 51.1k ETA 5s\n"
        "step 25/25 loss 2.3412 lr 1.20e-05 grad_norm 0.812 tok/s 51.1k ETA 0s\n");
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
        "step 37/200 loss 2.3412 lr 1.20e-05 grad_norm 0.812 tok/s 51.1k ETA ?\n"
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
    mt::Progress p("bar", 200, 10, f);
    CHECK(p.is_bar());
    p.update(stats(36));
    p.update(stats(37));
  });
  const std::string bar37 = " 37/200 [###.................]  18% loss 2.3412 lr 1.20e-05 tok/s 51.1k ETA 2m43s";
  CHECK(out.find('\n') == std::string::npos);
  CHECK(mt::test::occurrences(out, "\r") == 2);
  CHECK(mt::test::occurrences(out, "\x1b[K") == 2);
  CHECK(out.size() >= bar37.size() + 4);
  CHECK(out.substr(out.size() - bar37.size() - 4) == "\r" + bar37 + "\x1b[K");
  CHECK(out.find(" 36/200 [###.................]  18% ") != std::string::npos);

  const std::string done = capture([](std::FILE* f) {
    mt::Progress p("bar", 200, 10, f);
    p.update(stats(200));
    p.finish();
    p.finish();  // a second finish adds nothing
  });
  CHECK(done == "\r200/200 [####################] 100% loss 2.3412 lr 1.20e-05 tok/s 51.1k ETA 0s\x1b[K\n");
}

TEST_CASE("progress: the bar fits in 100 columns whatever the values", "[progress]") {
  const std::string out = capture([](std::FILE* f) {
    mt::Progress p("bar", 123456789012LL, 1, f);
    mt::ProgressStats s = stats(98765432101LL);
    s.loss = -1.234567e300;
    s.lr = 9.99e-300;
    s.tokens_per_s = 1.5e25;
    s.elapsed_s = 1e12;
    p.update(s);
  });
  REQUIRE(out.rfind('\r', 0) == 0);
  const std::string line = out.substr(1, out.size() - 1 - 3);  // without '\r' and "\x1b[K"
  CHECK(out.substr(out.size() - 3) == "\x1b[K");
  CHECK(line.size() <= 100);
  CHECK(line.find(" 98765432101/123456789012 [################....]  80% ") == 0);
}

TEST_CASE("progress: a message in bar mode clears the bar, prints, and redraws it", "[progress]") {
  const std::string bar = " 37/200 [###.................]  18% loss 2.3412 lr 1.20e-05 tok/s 51.1k ETA 2m43s";
  const std::string out = capture([](std::FILE* f) {
    mt::Progress p("bar", 200, 10, f);
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

TEST_CASE("progress: none prints nothing", "[progress]") {
  const std::string out = capture([](std::FILE* f) {
    mt::Progress p("none", 10, 1, f);
    CHECK_FALSE(p.is_bar());
    for (int64_t step = 1; step <= 10; ++step) p.update(stats(step));
    p.message("not shown");
    p.finish();
  });
  CHECK(out.empty());
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
