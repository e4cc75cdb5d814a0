// Internal to trainer/config/: "did you mean" hints for mistyped keys and sections (hints.cpp).
#pragma once
#include <string>
#include <vector>

namespace mt::config_detail {

// The candidate closest to `typed`, when it is close enough to be a typo of it; "" otherwise.
std::string closest(const std::string& typed, const std::vector<std::string>& candidates);
std::string did_you_mean(const std::string& suggestion);  // " (did you mean 'x'?)", or "" for ""
// A key of `section` that `leaf` is probably meant to be: a near sibling, else the same name in
// another section (lr under training is optimizer.lr).
std::string suggest_train_key(const std::string& section, const std::string& leaf);

}  // namespace mt::config_detail
