// alpha_k, the weight of the synthetic pairs in mutual alignment round k (docs/method.md):
// constant, a linear ramp over the rounds, or adaptive — the upper bound scaled by how close the
// synthetic pairs' loss under the current model is to the held-out real pairs' loss.
#pragma once
#include <cstdint>

#include "trainer/config/config.h"

namespace mt {

// Round k of K (1-based). heldout_real_nll and synthetic_nll (mean NLL per target token under the
// model being retrained) are used by "adaptive" only: alpha * min(1, real / synthetic), and 0 when
// the synthetic loss is not a positive finite number.
double round_alpha(const RoundsSection& rounds, int64_t k, double heldout_real_nll, double synthetic_nll);

}  // namespace mt
