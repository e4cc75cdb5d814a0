// Learning-rate schedules (trainer/engine/lr_schedule.h): warmup values, each type at the start, middle
// and end of its decay, min_lr_ratio, monotonicity, and the checks on bad schedules.
#include <cmath>

#include "trainer/engine/lr_schedule.h"
#include "tests/test_util.h"

namespace {

mt::LrSchedule schedule(const std::string& type, int64_t warmup, int64_t total, double min_ratio = 0.0) {
  mt::LrSchedule s;
  s.type = type;
  s.base_lr = 1e-3;
  s.warmup_steps = warmup;
  s.total_steps = total;
  s.min_lr_ratio = min_ratio;
  return s;
}

}  // namespace

TEST_CASE("lr schedule: linear warmup from base / (warmup + 1) up to base", "[lr_schedule]") {
  for (const std::string type : {"constant", "linear", "cosine"}) {
    INFO("type " << type);
    const auto s = schedule(type, 4, 20);
    CHECK(mt::lr_at(s, 0) == Approx(1e-3 * 1 / 5));
    CHECK(mt::lr_at(s, 1) == Approx(1e-3 * 2 / 5));
    CHECK(mt::lr_at(s, 3) == Approx(1e-3 * 4 / 5));
    CHECK(mt::lr_at(s, 4) == Approx(1e-3));  // first step after warmup: the decay's start
  }
}

TEST_CASE("lr schedule: each type at the start, middle and end of the decay", "[lr_schedule]") {
  // warmup 10, total 31: the decay runs over steps 10..30, p = (step - 10) / 20.
  SECTION("constant") {
    const auto s = schedule("constant", 10, 31, 0.5);  // min_lr_ratio does not apply
    for (int64_t step : {10, 20, 30, 100}) CHECK(mt::lr_at(s, step) == Approx(1e-3));
  }
  SECTION("linear") {
    const auto s = schedule("linear", 10, 31);
    CHECK(mt::lr_at(s, 10) == Approx(1e-3));
    CHECK(mt::lr_at(s, 15) == Approx(0.75e-3));
    CHECK(mt::lr_at(s, 20) == Approx(0.5e-3));
    CHECK(mt::lr_at(s, 30) == Approx(0.0).margin(1e-15));
    CHECK(mt::lr_at(s, 40) == Approx(0.0).margin(1e-15));  // past the end: stays at the minimum
  }
  SECTION("cosine") {
    const auto s = schedule("cosine", 10, 31);
    CHECK(mt::lr_at(s, 10) == Approx(1e-3));
    CHECK(mt::lr_at(s, 15) == Approx(1e-3 * (1 + std::cos(M_PI / 4)) / 2));
    CHECK(mt::lr_at(s, 20) == Approx(0.5e-3));
    CHECK(mt::lr_at(s, 30) == Approx(0.0).margin(1e-15));
    CHECK(mt::lr_at(s, 31) == Approx(0.0).margin(1e-15));
  }
  SECTION("no warmup") {
    CHECK(mt::lr_at(schedule("linear", 0, 11), 0) == Approx(1e-3));
    CHECK(mt::lr_at(schedule("linear", 0, 11), 5) == Approx(0.5e-3));
    CHECK(mt::lr_at(schedule("cosine", 0, 11), 10) == Approx(0.0).margin(1e-15));
  }
}

TEST_CASE("lr schedule: min_lr_ratio sets the end of the decay", "[lr_schedule]") {
  for (const std::string type : {"linear", "cosine"}) {
    INFO("type " << type);
    const auto s = schedule(type, 2, 12, 0.1);  // decay over steps 2..11
    CHECK(mt::lr_at(s, 2) == Approx(1e-3));
    CHECK(mt::lr_at(s, 11) == Approx(1e-4));
    CHECK(mt::lr_at(s, 50) == Approx(1e-4));
    // Halfway (p = 0.5) both are at the mean of base and min.
    const auto mid = schedule(type, 0, 3, 0.1);
    CHECK(mt::lr_at(mid, 1) == Approx(0.55e-3));
  }
  CHECK(mt::lr_at(schedule("cosine", 0, 5, 1.0), 3) == Approx(1e-3));  // ratio 1: constant
}

TEST_CASE("lr schedule: rises during warmup, never rises after", "[lr_schedule]") {
  for (const std::string type : {"constant", "linear", "cosine"}) {
    for (double ratio : {0.0, 0.3}) {
      INFO("type " << type << " min_lr_ratio " << ratio);
      const auto s = schedule(type, 7, 50, ratio);
      double prev = 0.0;
      for (int64_t step = 0; step < 60; ++step) {
        const double lr = mt::lr_at(s, step);
        INFO("step " << step);
        CHECK(lr <= 1e-3 * (1 + 1e-12));
        if (step >= 7) CHECK(lr >= 1e-3 * ratio * (1 - 1e-12));
        if (step < 7) CHECK(lr > prev);
        else if (step > 7) CHECK(lr <= prev);
        prev = lr;
      }
    }
  }
}

TEST_CASE("lr schedule: short runs", "[lr_schedule]") {
  // total 1: the single step gets base (p = 0 / max(1, 0)).
  CHECK(mt::lr_at(schedule("cosine", 0, 1), 0) == Approx(1e-3));
  CHECK(mt::lr_at(schedule("linear", 0, 2), 1) == Approx(0.0).margin(1e-15));
  // Warmup as long as the run: every step warms up.
  const auto s = schedule("cosine", 5, 5);
  CHECK(mt::lr_at(s, 4) == Approx(1e-3 * 5 / 6));
}

TEST_CASE("lr schedule: bad schedules are errors", "[lr_schedule]") {
  CHECK_NOTHROW(mt::check_lr_schedule(schedule("cosine", 0, 1)));
  CHECK_NOTHROW(mt::check_lr_schedule(schedule("linear", 100, 10, 1.0)));
  mt::test::require_error([] { mt::check_lr_schedule(schedule("exponential", 0, 10)); }, {"exponential", "cosine"});
  mt::test::require_error([] { mt::check_lr_schedule(schedule("cosine", -1, 10)); }, {"warmup_steps", "-1"});
  mt::test::require_error([] { mt::check_lr_schedule(schedule("cosine", 0, 0)); }, {"total_steps", "0"});
  mt::test::require_error([] { mt::check_lr_schedule(schedule("cosine", 0, 10, -0.1)); }, {"min_lr_ratio"});
  mt::test::require_error([] { mt::check_lr_schedule(schedule("cosine", 0, 10, 1.5)); }, {"min_lr_ratio", "1.5"});
  mt::test::require_error([] { mt::check_lr_schedule(schedule("cosine", 0, 10, std::nan(""))); }, {"min_lr_ratio"});
  // lr_at checks too, and rejects negative steps.
  mt::test::require_error([] { mt::lr_at(schedule("step", 0, 10), 0); }, {"step"});
  mt::test::require_error([] { mt::lr_at(schedule("cosine", 0, 10), -1); }, {"step", "-1"});
}
