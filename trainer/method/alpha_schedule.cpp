// alpha_k schedules of the mutual alignment rounds (see alpha_schedule.h).
#include "trainer/method/alpha_schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "models/error.h"

namespace mt {

double round_alpha(const RoundsSection& rounds, int64_t k, double heldout_real_nll, double synthetic_nll) {
  if (k < 1 || k > std::max<int64_t>(rounds.count, 1))
    throw Error(fmt::format("rounds: round {} of {}", k, rounds.count));
  if (rounds.alpha_schedule == "constant") return rounds.alpha;
  if (rounds.alpha_schedule == "linear") {
    if (rounds.count <= 1) return rounds.alpha_start;
    const double t = static_cast<double>(k - 1) / static_cast<double>(rounds.count - 1);
    return rounds.alpha_start + t * (rounds.alpha_end - rounds.alpha_start);
  }
  if (rounds.alpha_schedule == "adaptive") {
    if (!std::isfinite(synthetic_nll) || synthetic_nll <= 0 || !std::isfinite(heldout_real_nll) ||
        heldout_real_nll < 0)
      return 0.0;
    return rounds.alpha * std::min(1.0, heldout_real_nll / synthetic_nll);
  }
  throw Error(fmt::format("rounds.alpha_schedule: unknown '{}'", rounds.alpha_schedule));
}

}  // namespace mt
