// "Did you mean" hints: edit distance, the closest candidate, and key suggestions for the loader's
// unknown-key errors; did_you_mean_hint is the public form (config.h).
#include "trainer/config/hints.h"

#include <fmt/format.h>

#include <algorithm>

#include "trainer/config/key_def.h"

namespace mt {
namespace config_detail {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string closest(const std::string& typed, const std::vector<std::string>& candidates) {
  if (typed.size() > 2 * kMaxShownChars) return "";  // no key is that long; spare the quadratic work
  const size_t limit = std::max<size_t>(2, typed.size() / 3);
  std::string best;
  size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(typed, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(const std::string& suggestion) {
  return suggestion.empty() ? "" : fmt::format(" (did you mean '{}'?)", suggestion);
}

// A key of `section` that `leaf` is probably meant to be: a near sibling, else the same name in
// another section (lr under training is optimizer.lr).
std::string suggest_train_key(const std::string& section, const std::string& leaf) {
  std::vector<std::string> siblings;
  for (const auto& k : config_keys())
    if (k.section() == section) siblings.push_back(k.leaf());
  if (const std::string near = closest(leaf, siblings); !near.empty()) return section + "." + near;
  for (const auto& k : config_keys())
    if (k.leaf() == leaf) return k.path;
  return "";
}

}  // namespace config_detail

using namespace config_detail;

std::string did_you_mean_hint(const std::string& typed, const std::vector<std::string>& candidates) {
  return did_you_mean(closest(typed, candidates));
}

}  // namespace mt
