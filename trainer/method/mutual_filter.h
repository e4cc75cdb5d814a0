// Stage 4's selection rules over scored candidate pairs: each rule turns the per-candidate score
// components into one score (higher is better) — none (a seeded random order), forward (-forward
// mean NLL of the response), reverse (-reverse mean NLL of the instruction), mutual (a weighted sum
// of both, as z-scores by default, plus the alignment scorer's z-score with filter.alignment_weight),
// self_curation (the expected 1-5 rating), alignment (the learned scorer's s(I, R)) — and keeps the best N,
// skipping empty instructions and duplicates. Every compared rule keeps the same N (equal data budget).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mt {

struct CandidateScores {
  double forward_nll = 0;      // mean NLL of the response given the instruction (forward model)
  double reverse_nll = 0;      // mean NLL of the instruction given the response (reverse model)
  double self_rating = 0;      // self_curation: expected rating in [1, 5]
  double alignment_score = 0;  // the alignment scorer's s(I, R) (trainer/engine/alignment.h); NaN when not scored
  bool eligible = true;        // false: never kept (empty instruction, a duplicate, a seed pair)
};

struct FilterOptions {
  std::string keep = "quantile";  // "all" | "threshold" | "top_k" | "quantile"
  double threshold = 0;
  int64_t top_k = 0;
  double quantile = 0.5;
  double forward_weight = 1, reverse_weight = 1;
  double alignment_weight = 0;       // mutual: weight of the alignment scorer's z-score (0 = not used)
  std::string normalize = "zscore";  // "zscore" | "none"
  uint64_t seed = 0;                 // the order of rule "none"
};

const std::vector<std::string>& filter_rule_names();  // none, forward, reverse, mutual, self_curation, alignment

// z-scores of the eligible finite entries (mean 0, population std 1; all equal: 0); other entries 0.
std::vector<double> zscores(const std::vector<double>& values, const std::vector<bool>& eligible);

// One score per candidate under `rule` (higher is better). Throws mt::Error for an unknown rule.
std::vector<double> rule_scores(const std::string& rule, const std::vector<CandidateScores>& candidates,
                                const FilterOptions& options);

// How many pairs the primary rule keeps under options.keep (counting eligible candidates only).
int64_t keep_count(const std::vector<double>& primary_scores, const std::vector<CandidateScores>& candidates,
                   const FilterOptions& options);

// Indices of the n best eligible candidates by score (ties: lower index first), in index order.
std::vector<int64_t> select_best(const std::vector<double>& scores, const std::vector<CandidateScores>& candidates,
                                 int64_t n);

// The key under which two pairs count as duplicates: the instruction with runs of whitespace
// collapsed and ends trimmed, a separator, and the response likewise.
std::string dedupe_key(const std::string& instruction, const std::string& response);

}  // namespace mt
