// The precision policy, applied from outside the model: fp32 master weights (the leaves the
// optimizer updates) cast to the compute dtype for each forward pass, so gradients flow back into
// fp32; or pure bf16, where the weights themselves are bf16 and no copy is made.
#pragma once
#include <c10/core/ScalarType.h>

#include "models/transformer.h"

namespace mt {

// The model the forward pass runs: `master` itself when it already has `compute_dtype`, else a
// differentiable cast of every parameter (one graph node per tensor; ties are preserved).
Transformer compute_view(const Transformer& master, at::ScalarType compute_dtype);

// Marks every parameter as a leaf that requires grad.
void make_trainable(Transformer& model);

// Parameters as (name, tensor) and plain lists, in canonical order.
std::vector<at::Tensor> parameter_tensors(const Transformer& model);

}  // namespace mt
