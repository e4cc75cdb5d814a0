// libFuzzer target for the YAML run config loader (trainer/config/config.h load_pipeline_config):
// any bytes either give a checked config or an mt::Error naming the place; never a crash, a hang
// (yaml-cpp's own recursion is bounded before it parses: anchors, aliases and nesting), or an
// exception of another type escaping. Run with scripts/fuzz.sh SECONDS yaml_config.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_input_file.h"
#include "models/error.h"
#include "trainer/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const mt::PipelineConfig c = mt::load_pipeline_config(mt::fuzz::input_file(data, size, ".yaml"));
    if (c.data.max_len <= 0 || c.training.micro_batch_size <= 0) __builtin_trap();
  } catch (const mt::Error&) {
  }
  return 0;
}
