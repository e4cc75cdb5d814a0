// libFuzzer target for a model's config.json (models/hf_config.h): any bytes either give a
// ModelConfig that passes its own checks (positive, consistent sizes) or an mt::Error; never a
// crash, a hang or an allocation sized by the input. Run with scripts/fuzz.sh SECONDS hf_config.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_input_file.h"
#include "models/error.h"
#include "models/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const mt::ModelConfig c = mt::load_hf_config(mt::fuzz::input_file(data, size, "-config.json"));
    // What load_hf_config promises to whoever sizes tensors from it.
    if (c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.vocab_size <= 0 ||
        c.num_kv_heads <= 0 || c.head_dim <= 0 || c.head_dim % 2 != 0 || c.max_position_embeddings <= 0 ||
        !(c.rms_norm_eps > 0) || !(c.rope.theta > 0))
      __builtin_trap();
  } catch (const mt::Error&) {
  }
  return 0;
}
