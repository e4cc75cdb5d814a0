// The golden-parity fixtures shared by the CPU and the [gpu] parity tests: the families with a
// committed tiny model and transformers' outputs (tests/fixtures/<family>/expected.safetensors),
// and the position ids their unpadded inputs take.
#pragma once
#include <ATen/ATen.h>

namespace mt::test {

inline const char* const kParityFamilies[] = {"llama3", "mistral", "qwen2"};

// Positions 0..S-1 for every row of `ids` [B, S], with the ids' dtype and device.
inline at::Tensor positions_for(const at::Tensor& ids) {
  return at::arange(ids.size(1), ids.options()).unsqueeze(0).expand_as(ids).contiguous();
}

}  // namespace mt::test
