// The tiny LLaMA of tests/fixtures/llama3 with random weights, as trainable fp32 leaves: the model
// the training-step tests (train_step, source_weight, alignment) compute gradients on.
#pragma once
#include <ATen/ATen.h>

#include "models/hf_config.h"
#include "models/transformer.h"
#include "trainer/engine/mixed_precision.h"
#include "tests/test_util.h"

namespace mt::test {

inline Transformer tiny_model(uint64_t seed = 3) {
  Transformer m = init_transformer(load_hf_config(fixture("llama3") / "config.json"), seed,
                                   at::TensorOptions().dtype(at::kFloat));
  make_trainable(m);
  return m;
}

}  // namespace mt::test
