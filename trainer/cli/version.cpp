// `maintune --version` (see version.h). maintune_version.h is generated at build time
// (scripts/version_header.cmake), so this is the one file that recompiles after a commit.
#include "trainer/cli/version.h"

#include <fmt/format.h>
#include <torch/version.h>

#include "maintune_version.h"

namespace mt::cli {

std::string version_text() {
  return fmt::format("maintune {} (commit {})\ntorch {}\n", MT_VERSION, MT_GIT_COMMIT, TORCH_VERSION);
}

}  // namespace mt::cli
