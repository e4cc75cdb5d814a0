// Rotary embeddings matching transformers' modeling_rope_utils: inv_freq = theta^(-2i/d), the
// llama3 rule (long wavelengths / factor, short kept, smooth blend between), linear = positions
// / factor. cos/sin are computed in fp32 from fp32 positions, as HF does under autocast-off.
#include "models/rope.h"

#include <ATen/ATen.h>

#include <cmath>

namespace mt {

at::Tensor rope_inv_freq(const ModelConfig& c) {
  const int64_t half = c.head_dim / 2;
  // Same op order as HF: 1 / (base ** (arange(0, dim, 2).float() / dim)).
  at::Tensor exponents = at::arange(0, c.head_dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(c.head_dim);
  at::Tensor inv_freq = 1.0 / at::pow(c.rope.theta, exponents);
  if (c.rope.type == "linear") {
    return inv_freq / c.rope.factor;  // identical to dividing the positions by factor
  }
  if (c.rope.type != "llama3") return inv_freq;

  const double factor = c.rope.factor;
  const double low = c.rope.low_freq_factor, high = c.rope.high_freq_factor;
  const double old_ctx = static_cast<double>(c.rope.original_max_position_embeddings);
  const double low_freq_wavelen = old_ctx / low;
  const double high_freq_wavelen = old_ctx / high;
  at::Tensor wavelen = 2.0 * M_PI / inv_freq;
  at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
  at::Tensor smooth = (old_ctx / wavelen - low) / (high - low);
  at::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
  at::Tensor medium = at::logical_not(wavelen < high_freq_wavelen).logical_and(at::logical_not(wavelen > low_freq_wavelen));
  at::Tensor out = at::where(medium, smoothed, scaled);
  TORCH_CHECK(out.size(0) == half);
  return out;
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& positions,
                                               const ModelConfig& /*config*/, at::ScalarType dtype) {
  // freqs[b, s, i] = pos[b, s] * inv_freq[i]; emb = cat(freqs, freqs).
  at::Tensor pos = positions.to(at::kFloat).unsqueeze(-1);                 // [B, S, 1]
  at::Tensor freqs = pos * inv_freq.to(positions.device()).view({1, 1, -1});  // [B, S, D/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor x1 = x.narrow(-1, 0, half);
  at::Tensor x2 = x.narrow(-1, half, half);
  at::Tensor rotated = at::cat({-x2, x1}, -1);
  at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // broadcast over heads
  return x * c + rotated * s;
}

}  // namespace mt
