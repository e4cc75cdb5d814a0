// Rotary position embeddings as HF transformers computes them: inverse frequencies (default,
// linear and llama3 rescaling), cos/sin tables for given position ids, and the rotate-half
// application to query/key heads.
#pragma once
#include <ATen/core/Tensor.h>

#include "models/hf_config.h"

namespace mt {

// fp32 [head_dim / 2] inverse frequencies, llama3 rescaling applied; on CPU.
at::Tensor rope_inv_freq(const ModelConfig& config);

// cos and sin of shape [B, S, head_dim] (fp32 math, cast to `dtype`) for position ids [B, S].
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& positions,
                                               const ModelConfig& config, at::ScalarType dtype);

// x: [B, heads, S, head_dim]; cos/sin: [B, S, head_dim]. Returns x * cos + rotate_half(x) * sin.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace mt
