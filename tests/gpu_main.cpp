// Entry point of the [gpu] test binary: without a CUDA device it says so and exits 77, which
// CTest reports as "Skipped" (SKIP_RETURN_CODE), never as passed.
#define CATCH_CONFIG_RUNNER
#include <ATen/Context.h>

#include <cstdio>

#include "tests/catch_compat.h"

int main(int argc, char* argv[]) {
  if (!at::hasCUDA()) {
    std::printf("[gpu] tests skipped: no CUDA device on this machine (run them on the GPU machine)\n");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
