// The mutual filter's rules (trainer/method/mutual_filter.h) and the alpha_k schedules
// (trainer/method/alpha_schedule.h): z-scores, each rule's ordering, equal budgets, keep policies,
// ineligible candidates, dedupe keys, and constant / linear / adaptive alpha.
#include <cmath>
#include <set>

#include "trainer/method/alpha_schedule.h"
#include "trainer/method/mutual_filter.h"
#include "tests/test_util.h"

namespace {

using mt::CandidateScores;
using mt::FilterOptions;

std::vector<CandidateScores> make(const std::vector<std::pair<double, double>>& fr) {
  std::vector<CandidateScores> out;
  for (const auto& [f, r] : fr) {
    CandidateScores c;
    c.forward_nll = f;
    c.reverse_nll = r;
    c.self_rating = 5 - f;
    out.push_back(c);
  }
  return out;
}

}  // namespace

TEST_CASE("zscores: mean 0, std 1 over the eligible finite entries - others 0", "[mutual_filter]") {
  const std::vector<double> v = {1, 2, 3, 100, NAN};
  const auto z = mt::zscores(v, {true, true, true, false, true});
  REQUIRE(z[0] == Approx(-std::sqrt(1.5)));
  REQUIRE(z[1] == Approx(0.0).margin(1e-12));
  REQUIRE(z[2] == Approx(std::sqrt(1.5)));
  REQUIRE(z[3] == 0.0);
  REQUIRE(z[4] == 0.0);
  const auto same = mt::zscores({4, 4, 4}, {true, true, true});
  for (double x : same) REQUIRE(x == 0.0);
}

TEST_CASE("rule scores order candidates as each rule means", "[mutual_filter]") {
  // Candidate 0: good forward, bad reverse; 1: bad forward, good reverse; 2: both good; 3: both bad.
  const auto c = make({{1.0, 5.0}, {5.0, 1.0}, {1.5, 1.5}, {5.0, 5.0}});
  FilterOptions o;
  const auto f = mt::rule_scores("forward", c, o);
  REQUIRE(f[0] > f[2]);
  REQUIRE(f[2] > f[1]);
  const auto r = mt::rule_scores("reverse", c, o);
  REQUIRE(r[1] > r[2]);
  REQUIRE(r[2] > r[0]);
  const auto m = mt::rule_scores("mutual", c, o);
  // Only the pair that both directions like is the best under mutual; the pair both dislike is last.
  for (size_t i : {0, 1, 3}) REQUIRE(m[2] > m[i]);
  for (size_t i : {0, 1, 2}) REQUIRE(m[3] < m[i]);
  // The mutual score is the weighted mean of negated z-scores.
  const auto zf = mt::zscores({1, 5, 1.5, 5}, {true, true, true, true});
  const auto zr = mt::zscores({5, 1, 1.5, 5}, {true, true, true, true});
  o.forward_weight = 3;
  o.reverse_weight = 1;
  const auto w = mt::rule_scores("mutual", c, o);
  for (size_t i = 0; i < 4; ++i) REQUIRE(w[i] == Approx(-(3 * zf[i] + zr[i]) / 4));
  o.normalize = "none";
  const auto raw = mt::rule_scores("mutual", c, o);
  REQUIRE(raw[0] == Approx(-(3 * 1.0 + 5.0) / 4));
  const auto s = mt::rule_scores("self_curation", c, o);
  REQUIRE(s[0] == Approx(4.0));
  REQUIRE_THROWS_AS(mt::rule_scores("best", c, o), mt::Error);
}

TEST_CASE("rule none is a seeded random order: same seed same order, other seed another", "[mutual_filter]") {
  std::vector<CandidateScores> c(200);
  FilterOptions o;
  o.seed = 1;
  const auto a = mt::rule_scores("none", c, o), b = mt::rule_scores("none", c, o);
  REQUIRE(a == b);
  o.seed = 2;
  REQUIRE(mt::rule_scores("none", c, o) != a);
  for (double x : a) REQUIRE((x >= 0 && x < 1));
}

TEST_CASE("non-finite NLLs rank last", "[mutual_filter]") {
  auto c = make({{1.0, 1.0}, {INFINITY, 1.0}, {2.0, 2.0}});
  FilterOptions o;
  for (const std::string rule : {"forward", "mutual"}) {
    const auto s = mt::rule_scores(rule, c, o);
    REQUIRE(s[1] < s[0]);
    REQUIRE(s[1] < s[2]);
  }
}

TEST_CASE("keep_count: all, threshold, top_k, quantile over eligible candidates", "[mutual_filter]") {
  auto c = make({{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}});
  c[4].eligible = false;
  FilterOptions o;
  const auto s = mt::rule_scores("forward", c, o);  // -1 .. -5
  o.keep = "all";
  REQUIRE(mt::keep_count(s, c, o) == 4);
  o.keep = "threshold";
  o.threshold = -2.5;
  REQUIRE(mt::keep_count(s, c, o) == 2);
  o.keep = "top_k";
  o.top_k = 3;
  REQUIRE(mt::keep_count(s, c, o) == 3);
  o.top_k = 10;
  REQUIRE(mt::keep_count(s, c, o) == 4);  // never more than there are
  o.keep = "quantile";
  o.quantile = 0.5;
  REQUIRE(mt::keep_count(s, c, o) == 2);
  o.quantile = 0;
  REQUIRE(mt::keep_count(s, c, o) == 0);
  o.keep = "most";
  REQUIRE_THROWS_AS(mt::keep_count(s, c, o), mt::Error);
}

TEST_CASE("select_best keeps the n best eligible candidates, ties by index, in index order", "[mutual_filter]") {
  auto c = make({{3, 0}, {1, 0}, {2, 0}, {1, 0}, {0.5, 0}});
  c[4].eligible = false;  // the best score, but never kept
  FilterOptions o;
  const auto s = mt::rule_scores("forward", c, o);
  REQUIRE(mt::select_best(s, c, 2) == std::vector<int64_t>{1, 3});
  REQUIRE(mt::select_best(s, c, 3) == std::vector<int64_t>{1, 2, 3});
  REQUIRE(mt::select_best(s, c, 100) == std::vector<int64_t>{0, 1, 2, 3});
  REQUIRE(mt::select_best(s, c, 0).empty());
  // Equal budgets: every rule keeps the same count.
  for (const auto& rule : mt::filter_rule_names())
    REQUIRE(mt::select_best(mt::rule_scores(rule, c, o), c, 3).size() == 3);
}

TEST_CASE("dedupe_key collapses whitespace and keeps the halves apart", "[mutual_filter]") {
  REQUIRE(mt::dedupe_key("  Sort  these\n numbers ", "1 2") == mt::dedupe_key("Sort these numbers", "1  2"));
  REQUIRE(mt::dedupe_key("a b", "c") != mt::dedupe_key("a", "b c"));
  REQUIRE(mt::dedupe_key("Sort", "x") != mt::dedupe_key("sort", "x"));  // case matters
}

TEST_CASE("alpha schedules: constant, linear ramp, adaptive", "[mutual_filter][alpha]") {
  mt::RoundsSection r;
  r.count = 3;
  r.alpha_schedule = "constant";
  r.alpha = 0.4;
  for (int k = 1; k <= 3; ++k) REQUIRE(mt::round_alpha(r, k, NAN, NAN) == 0.4);
  r.alpha_schedule = "linear";
  r.alpha_start = 0.2;
  r.alpha_end = 0.6;
  REQUIRE(mt::round_alpha(r, 1, NAN, NAN) == Approx(0.2));
  REQUIRE(mt::round_alpha(r, 2, NAN, NAN) == Approx(0.4));
  REQUIRE(mt::round_alpha(r, 3, NAN, NAN) == Approx(0.6));
  r.count = 1;
  REQUIRE(mt::round_alpha(r, 1, NAN, NAN) == Approx(0.2));
  r.alpha_schedule = "adaptive";
  r.alpha = 0.5;
  REQUIRE(mt::round_alpha(r, 1, 1.0, 2.0) == Approx(0.25));  // synthetic pairs twice as surprising: half weight
  REQUIRE(mt::round_alpha(r, 1, 2.0, 1.0) == Approx(0.5));   // capped at rounds.alpha
  REQUIRE(mt::round_alpha(r, 1, 1.0, NAN) == 0.0);
  REQUIRE(mt::round_alpha(r, 1, 1.0, 0.0) == 0.0);
  REQUIRE_THROWS_AS(mt::round_alpha(r, 2, 1.0, 1.0), mt::Error);
}
