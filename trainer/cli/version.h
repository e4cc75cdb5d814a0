// `maintune --version`: what this binary is (trainer/cli/version.cpp).
#pragma once
#include <string>

namespace mt::cli {

// "maintune VERSION (commit DESCRIBE)\ntorch VERSION\n": the project version (CMakeLists.txt), the
// `git describe` of the source tree at build time ("unknown" outside git), and the torch built against.
std::string version_text();

}  // namespace mt::cli
