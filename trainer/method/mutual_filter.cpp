// Selection rules of the mutual filter (see mutual_filter.h).
#include "trainer/method/mutual_filter.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "models/error.h"
#include "trainer/base/random.h"

namespace mt {

const std::vector<std::string>& filter_rule_names() {
  static const std::vector<std::string> names = {"none", "forward", "reverse", "mutual", "self_curation",
                                                         "alignment"};
  return names;
}

std::vector<double> zscores(const std::vector<double>& values, const std::vector<bool>& eligible) {
  double sum = 0, sq = 0;
  int64_t n = 0;
  for (size_t i = 0; i < values.size(); ++i)
    if (eligible[i] && std::isfinite(values[i])) {
      sum += values[i];
      ++n;
    }
  std::vector<double> out(values.size(), 0.0);
  if (n == 0) return out;
  const double mean = sum / static_cast<double>(n);
  for (size_t i = 0; i < values.size(); ++i)
    if (eligible[i] && std::isfinite(values[i])) sq += (values[i] - mean) * (values[i] - mean);
  const double sd = std::sqrt(sq / static_cast<double>(n));
  for (size_t i = 0; i < values.size(); ++i)
    if (eligible[i] && std::isfinite(values[i]) && sd > 0) out[i] = (values[i] - mean) / sd;
  return out;
}

std::vector<double> rule_scores(const std::string& rule, const std::vector<CandidateScores>& candidates,
                                const FilterOptions& options) {
  const size_t n = candidates.size();
  std::vector<double> out(n);
  // A non-finite NLL (a model that gives a token zero probability) ranks last.
  auto neg = [](double nll) { return std::isfinite(nll) ? -nll : -HUGE_VAL; };
  if (rule == "none") {
    uint64_t state = options.seed ^ 0x6e6f6e65ull;  // "none": a random order, the same for a given seed
    for (size_t i = 0; i < n; ++i) out[i] = unit_draw(state);
  } else if (rule == "forward") {
    for (size_t i = 0; i < n; ++i) out[i] = neg(candidates[i].forward_nll);
  } else if (rule == "reverse") {
    for (size_t i = 0; i < n; ++i) out[i] = neg(candidates[i].reverse_nll);
  } else if (rule == "mutual") {
    std::vector<double> f(n), r(n);
    std::vector<bool> eligible(n);
    for (size_t i = 0; i < n; ++i) {
      f[i] = candidates[i].forward_nll;
      r[i] = candidates[i].reverse_nll;
      eligible[i] = candidates[i].eligible;
    }
    if (options.normalize == "zscore") {
      f = zscores(f, eligible);
      r = zscores(r, eligible);
    } else if (options.normalize != "none") {
      throw Error(fmt::format("filter.normalize: unknown '{}'", options.normalize));
    }
    const double wsum = options.forward_weight + options.reverse_weight;
    if (!(wsum > 0)) throw Error("filter: forward_weight + reverse_weight must be positive for rule mutual");
    if (!(options.alignment_weight >= 0)) throw Error("filter: alignment_weight must be >= 0");
    // The learned scorer as a third component (higher is better), always as a z-score: its scale
    // (cosine / temperature) has nothing in common with mean NLLs.
    std::vector<double> a(n, 0.0);
    if (options.alignment_weight > 0) {
      for (size_t i = 0; i < n; ++i) a[i] = candidates[i].alignment_score;
      a = zscores(a, eligible);
    }
    const double total = wsum + options.alignment_weight;
    for (size_t i = 0; i < n; ++i) {
      const bool finite = std::isfinite(candidates[i].forward_nll) && std::isfinite(candidates[i].reverse_nll) &&
                          (options.alignment_weight == 0 || std::isfinite(candidates[i].alignment_score));
      out[i] = finite ? (-(options.forward_weight * f[i] + options.reverse_weight * r[i]) + options.alignment_weight * a[i]) / total
                      : -HUGE_VAL;
    }
  } else if (rule == "alignment") {
    for (size_t i = 0; i < n; ++i)
      out[i] = std::isfinite(candidates[i].alignment_score) ? candidates[i].alignment_score : -HUGE_VAL;
  } else if (rule == "self_curation") {
    for (size_t i = 0; i < n; ++i) out[i] = std::isfinite(candidates[i].self_rating) ? candidates[i].self_rating : -HUGE_VAL;
  } else {
    throw Error(fmt::format("filter: unknown rule '{}' (the rules are {})", rule, fmt::join(filter_rule_names(), ", ")));
  }
  return out;
}

int64_t keep_count(const std::vector<double>& primary_scores, const std::vector<CandidateScores>& candidates,
                   const FilterOptions& options) {
  int64_t eligible = 0, above = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!candidates[i].eligible) continue;
    ++eligible;
    if (primary_scores[i] >= options.threshold) ++above;
  }
  if (options.keep == "all") return eligible;
  if (options.keep == "threshold") return above;
  if (options.keep == "top_k") return std::min(options.top_k, eligible);
  if (options.keep == "quantile")
    return std::min<int64_t>(eligible, static_cast<int64_t>(std::llround(options.quantile * static_cast<double>(eligible))));
  throw Error(fmt::format("filter.keep: unknown '{}'", options.keep));
}

std::vector<int64_t> select_best(const std::vector<double>& scores, const std::vector<CandidateScores>& candidates,
                                 int64_t n) {
  std::vector<int64_t> order;
  for (size_t i = 0; i < candidates.size(); ++i)
    if (candidates[i].eligible) order.push_back(static_cast<int64_t>(i));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return scores[static_cast<size_t>(a)] > scores[static_cast<size_t>(b)];
  });
  if (static_cast<int64_t>(order.size()) > n) order.resize(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::sort(order.begin(), order.end());
  return order;
}

std::string dedupe_key(const std::string& instruction, const std::string& response) {
  auto collapse = [](const std::string& s) {
    std::string out;
    bool space = false;
    for (const char c : s) {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        space = !out.empty();
        continue;
      }
      if (space) out += ' ';
      space = false;
      out += c;
    }
    return out;
  };
  return collapse(instruction) + '\x1f' + collapse(response);
}

}  // namespace mt
