// The language-model loss without full logits: sum over rows of cross_entropy(hidden @ weight^T,
// target) in fp32, computed chunk by chunk. Because the loss is a sum, each chunk's gradients with
// respect to hidden and weight are computed in the forward pass (softmax - onehot) and the chunk's
// logits freed; the backward pass only scales them. Peak extra memory: chunk_rows x vocab.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mt {

// hidden [N, H], weight [V, H] (same dtype; bf16 or fp32), targets [N] int64 with kIgnoreIndex
// (-100) for rows that are not trained on. Returns a 0-dim fp32 tensor: the sum of the per-row
// losses of non-ignored rows. Differentiable w.r.t. hidden and weight (gradients in their dtypes,
// accumulated in fp32). Logits are computed in the inputs' dtype and the softmax in fp32, as the
// plain version below does.
at::Tensor chunked_linear_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                        int64_t chunk_rows = 4096);

// Per-row losses [N] fp32 without gradient (0 for ignored rows), computed in chunks of
// chunk_rows x vocab logits: the likelihood signals of the alignment scorer.
at::Tensor linear_cross_entropy_rows(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                     int64_t chunk_rows = 4096);

// The plain version: full logits, at::cross_entropy in fp32 with reduction sum. For tests.
at::Tensor linear_cross_entropy_reference(const at::Tensor& hidden, const at::Tensor& weight,
                                          const at::Tensor& targets);

}  // namespace mt
