// Chunked linear cross-entropy (trainer/engine/cross_entropy.h): a custom autograd function whose forward
// pass computes, chunk by chunk over the trained rows, the summed loss and both input gradients
// (softmax - onehot, products accumulated in fp32), so that no N x V logits tensor ever exists;
// its backward pass only scales the saved gradients. Plus the full-logits reference.
#include "trainer/engine/cross_entropy.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

#include "models/error.h"
#include "trainer/data/packing.h"

namespace mt {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::string shape_str(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

void check_inputs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets, int64_t chunk_rows) {
  const std::string what = "chunked_linear_cross_entropy";
  if (!hidden.defined() || !weight.defined() || !targets.defined())
    throw Error(what + ": hidden, weight and targets must all be defined");
  if (hidden.dim() != 2 || weight.dim() != 2 || hidden.size(1) != weight.size(1))
    throw Error(fmt::format("{}: expected hidden [N, H] and weight [V, H], got {} and {}", what, shape_str(hidden.sizes()),
                            shape_str(weight.sizes())));
  if (targets.dim() != 1 || targets.size(0) != hidden.size(0) || targets.scalar_type() != at::kLong)
    throw Error(fmt::format("{}: expected int64 targets [{}], got {} {}", what, hidden.size(0),
                            c10::toString(targets.scalar_type()), shape_str(targets.sizes())));
  const auto dtype = hidden.scalar_type();
  if (weight.scalar_type() != dtype)
    throw Error(fmt::format("{}: hidden is {} but weight is {}", what, c10::toString(dtype),
                            c10::toString(weight.scalar_type())));
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf)
    throw Error(fmt::format("{}: unsupported dtype {} (float32, bfloat16 or float16)", what, c10::toString(dtype)));
  if (weight.device() != hidden.device() || targets.device() != hidden.device())
    throw Error(fmt::format("{}: hidden, weight and targets are on different devices ({}, {}, {})", what,
                            hidden.device().str(), weight.device().str(), targets.device().str()));
  if (chunk_rows < 1) throw Error(fmt::format("{}: chunk_rows must be >= 1, got {}", what, chunk_rows));
}

struct LossAndGrads {
  at::Tensor loss;         // 0-dim fp32
  at::Tensor grad_hidden;  // [N, H] fp32, or undefined when not asked for
  at::Tensor grad_weight;  // [V, H] fp32, or undefined when not asked for
};

// The loss and, when asked, d loss / d hidden and d loss / d weight (for a grad_output of 1).
LossAndGrads compute(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets, int64_t chunk_rows,
                     bool want_grad_hidden, bool want_grad_weight) {
  c10::NoGradGuard no_grad;
  const int64_t n = hidden.size(0), h_dim = hidden.size(1), vocab = weight.size(0);
  const at::ScalarType dtype = hidden.scalar_type();
  const at::TensorOptions f32 = hidden.options().dtype(at::kFloat);
  LossAndGrads r;
  r.loss = at::zeros({}, f32);
  if (want_grad_hidden) r.grad_hidden = at::zeros({n, h_dim}, f32);  // ignored rows keep zero gradients
  if (want_grad_weight) r.grad_weight = at::zeros({vocab, h_dim}, f32);

  const at::Tensor rows = (targets != kIgnoreIndex).nonzero().view({-1});
  const int64_t m = rows.numel();
  if (m == 0) return r;
  const at::Tensor row_targets = targets.index_select(0, rows);
  const int64_t lo = row_targets.min().item<int64_t>(), hi = row_targets.max().item<int64_t>();
  if (lo < 0 || hi >= vocab)
    throw Error(fmt::format("chunked_linear_cross_entropy: target {} is out of range [0, {}) (the ignore index is {})",
                            lo < 0 ? lo : hi, vocab, kIgnoreIndex));

  // Gradient GEMMs: inputs in the inputs' dtype (g rounded to it, as the reference's backward
  // rounds the logits' gradient), products accumulated and kept in fp32 until the backward pass
  // scales them. CUDA has a reduced-precision GEMM with fp32 output; on CPU the reduced-precision
  // operands are upcast exactly and multiplied in fp32 (same sums, no intermediate rounding).
  const bool reduced = dtype != at::kFloat;
  const bool upcast = reduced && !hidden.is_cuda();
  auto operand = [&](const at::Tensor& x) { return upcast ? x.to(at::kFloat) : x; };
  auto mm_f32 = [&](const at::Tensor& a, const at::Tensor& b) {
    return a.scalar_type() == at::kFloat ? at::mm(a, b) : at::mm(a, b, at::kFloat);
  };
  const at::Tensor weight_mm = want_grad_hidden ? operand(weight) : at::Tensor();

  for (int64_t start = 0; start < m; start += chunk_rows) {
    const int64_t c = std::min(chunk_rows, m - start);
    const at::Tensor idx = rows.narrow(0, start, c);
    const at::Tensor tgt = row_targets.narrow(0, start, c).unsqueeze(1);  // [c, 1]
    const at::Tensor h = hidden.index_select(0, idx);                     // [c, H], contiguous
    // Logits in the inputs' dtype (as at::linear gives the reference), softmax in fp32.
    at::Tensor logits = at::matmul(h, weight.t()).to(at::kFloat);  // [c, V]
    const at::Tensor lse = at::logsumexp(logits, {1}, /*keepdim=*/true);
    r.loss.add_((lse - logits.gather(1, tgt)).sum());
    if (!want_grad_hidden && !want_grad_weight) continue;

    // g = softmax - onehot, in place over this chunk's logits (which are ours alone: the fp32
    // matmul result or the fp32 copy of a reduced-precision one).
    at::Tensor g = logits.sub_(lse).exp_();
    g.scatter_add_(1, tgt, at::full({c, 1}, -1.0, g.options()));
    const at::Tensor g_mm = operand(g.to(dtype));
    if (want_grad_hidden) r.grad_hidden.index_copy_(0, idx, mm_f32(g_mm, weight_mm));
    if (want_grad_weight) {
      const at::Tensor h_mm = operand(h);
      if (h_mm.scalar_type() == at::kFloat) r.grad_weight.addmm_(g_mm.t(), h_mm);
      else r.grad_weight.add_(mm_f32(g_mm.t(), h_mm));
    }
  }
  return r;
}

struct ChunkedLinearCrossEntropy : torch::autograd::Function<ChunkedLinearCrossEntropy> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t chunk_rows) {
    // Grad mode is off in here; apply() only comes here when grad mode was on, so the inputs'
    // requires_grad says which gradients the backward pass can be asked for.
    LossAndGrads r = compute(hidden, weight, targets, chunk_rows, hidden.requires_grad(), weight.requires_grad());
    ctx->saved_data["hidden_dtype"] = static_cast<int64_t>(hidden.scalar_type());
    ctx->saved_data["weight_dtype"] = static_cast<int64_t>(weight.scalar_type());
    if (r.grad_hidden.defined()) ctx->saved_data["grad_hidden"] = r.grad_hidden;
    if (r.grad_weight.defined()) ctx->saved_data["grad_weight"] = r.grad_weight;
    return r.loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor& go = grad_outputs[0];  // 0-dim fp32: the loss is a plain sum, so scaling suffices
    auto scaled = [&](const char* key, const char* dtype_key) {
      auto it = ctx->saved_data.find(key);
      if (it == ctx->saved_data.end()) return at::Tensor();
      const auto dtype = static_cast<at::ScalarType>(ctx->saved_data.at(dtype_key).toInt());
      return (it->second.toTensor() * go).to(dtype);  // scaled in fp32, rounded once
    };
    return {scaled("grad_hidden", "hidden_dtype"), scaled("grad_weight", "weight_dtype"), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor chunked_linear_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                        int64_t chunk_rows) {
  check_inputs(hidden, weight, targets, chunk_rows);
  const bool grad = at::GradMode::is_enabled() && (hidden.requires_grad() || weight.requires_grad());
  if (!grad) return compute(hidden, weight, targets, chunk_rows, false, false).loss;  // no graph, no gradients
  return ChunkedLinearCrossEntropy::apply(hidden, weight, targets, chunk_rows);
}

at::Tensor linear_cross_entropy_rows(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                     int64_t chunk_rows) {
  check_inputs(hidden, weight, targets, chunk_rows);
  c10::NoGradGuard no_grad;
  const int64_t n = hidden.size(0);
  at::Tensor out = at::zeros({n}, hidden.options().dtype(at::kFloat));
  for (int64_t a = 0; a < n; a += chunk_rows) {
    const int64_t len = std::min(chunk_rows, n - a);
    const at::Tensor logits = at::linear(hidden.narrow(0, a, len), weight).to(at::kFloat);
    out.narrow(0, a, len).copy_(at::cross_entropy_loss(logits, targets.narrow(0, a, len), /*weight=*/{},
                                                       at::Reduction::None, kIgnoreIndex));
  }
  return out;
}

at::Tensor linear_cross_entropy_reference(const at::Tensor& hidden, const at::Tensor& weight,
                                          const at::Tensor& targets) {
  const at::Tensor logits = at::linear(hidden, weight).to(at::kFloat);
  return at::cross_entropy_loss(logits, targets, /*weight=*/{}, at::Reduction::Sum, kIgnoreIndex);
}

}  // namespace mt
