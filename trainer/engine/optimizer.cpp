// AdamW over named parameters in two groups (weight decay on tensors with >= 2 dims, none on norms
// and biases): at::_fused_adamw_ per (group, device, dtype), or a per-tensor reference that runs
// torch.optim.AdamW's single-tensor op sequence; checkpoint state as named tensors plus JSON; and
// torch.nn.utils.clip_grad_norm_'s global-norm clipping (norms accumulated in fp32).
#include "trainer/engine/optimizer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "models/error.h"

namespace mt {
namespace {

std::string shape_str(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

// torch.optim.AdamW's _single_tensor_adam with decoupled decay, op for op and with the same
// double-precision scalars, so that on the same device it gives the same bits as PyTorch.
void reference_update(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                      double lr, double weight_decay, const AdamWOptions& o, int64_t step) {
  if (weight_decay != 0) param.mul_(1 - lr * weight_decay);
  exp_avg.lerp_(grad, 1 - o.beta1);
  exp_avg_sq.mul_(o.beta2).addcmul_(grad, grad, 1 - o.beta2);
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1 - std::pow(o.beta1, t);
  const double bias_correction2 = 1 - std::pow(o.beta2, t);
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);  // Python's `** 0.5`
  at::Tensor denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(o.eps);
  param.addcdiv_(exp_avg, denom, -step_size);
}

// One call of the fused kernel: tensors that share weight decay, device and dtype.
struct FusedGroup {
  bool decay;
  at::Device device;
  at::ScalarType dtype;
  std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs;
};

void check_options(const AdamWOptions& o) {
  auto bad = [](double x, double lo, double hi) { return !(x >= lo && x < hi); };  // NaN is bad too
  if (bad(o.beta1, 0, 1)) throw Error(fmt::format("AdamW: beta1 must be in [0, 1), got {}", o.beta1));
  if (bad(o.beta2, 0, 1)) throw Error(fmt::format("AdamW: beta2 must be in [0, 1), got {}", o.beta2));
  if (bad(o.eps, 0, INFINITY)) throw Error(fmt::format("AdamW: eps must be finite and >= 0, got {}", o.eps));
  if (bad(o.weight_decay, 0, INFINITY))
    throw Error(fmt::format("AdamW: weight_decay must be finite and >= 0, got {}", o.weight_decay));
}

}  // namespace

bool is_no_decay_param(const at::Tensor& param) { return param.dim() < 2; }

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  check_options(options_);
  std::set<std::string> names;
  exp_avg_.reserve(params_.size());
  exp_avg_sq_.reserve(params_.size());
  for (const auto& [name, p] : params_) {
    if (!names.insert(name).second) throw Error(fmt::format("AdamW: parameter '{}' is given twice", name));
    if (!p.defined() || !at::isFloatingType(p.scalar_type()))
      throw Error(fmt::format("AdamW: parameter '{}' is not a floating-point tensor", name));
    // Same dtype, device and strides as the parameter: what the fused kernel expects.
    exp_avg_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
    exp_avg_sq_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
  }
}

void AdamW::step(double lr) {
  c10::NoGradGuard no_grad;  // in-place updates of leaves that require grad
  const int64_t t = step_ + 1;
  std::vector<FusedGroup> groups;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& [name, p] = params_[i];
    const at::Tensor& grad = p.grad();
    if (!grad.defined()) continue;
    if (grad.scalar_type() != p.scalar_type() || !grad.sizes().equals(p.sizes()))
      throw Error(fmt::format("AdamW: gradient of '{}' is {} {}, the parameter {} {}", name,
                              c10::toString(grad.scalar_type()), shape_str(grad.sizes()),
                              c10::toString(p.scalar_type()), shape_str(p.sizes())));
    const bool decay = !is_no_decay_param(p);
    // The CPU fused kernel walks raw memory: a strided parameter takes the reference path instead.
    if (!options_.fused || !p.is_contiguous()) {
      reference_update(p, grad, exp_avg_[i], exp_avg_sq_[i], lr, decay ? options_.weight_decay : 0.0, options_, t);
      continue;
    }
    FusedGroup* g = nullptr;
    for (auto& candidate : groups)
      if (candidate.decay == decay && candidate.device == p.device() && candidate.dtype == p.scalar_type())
        g = &candidate;
    if (g == nullptr) g = &groups.emplace_back(FusedGroup{decay, p.device(), p.scalar_type(), {}, {}, {}, {}});
    g->params.push_back(p);
    g->grads.push_back(grad.contiguous());
    g->exp_avgs.push_back(exp_avg_[i]);
    g->exp_avg_sqs.push_back(exp_avg_sq_[i]);
  }
  for (const auto& g : groups) {
    // The kernel reads (never writes) one fp32 step count per tensor on the tensors' device; they
    // may all be the same tensor. PyTorch keeps them as state and adds 1 before the call.
    const at::Tensor step_count =
        at::scalar_tensor(static_cast<double>(t), at::TensorOptions().dtype(at::kFloat).device(g.device));
    const std::vector<at::Tensor> steps(g.params.size(), step_count);
    at::_fused_adamw_(g.params, g.grads, g.exp_avgs, g.exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, options_.beta1,
                      options_.beta2, g.decay ? options_.weight_decay : 0.0, options_.eps, /*amsgrad=*/false,
                      /*maximize=*/false);
  }
  step_ = t;
}

std::map<std::string, at::Tensor> AdamW::state_tensors() const {
  std::map<std::string, at::Tensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace("exp_avg." + params_[i].first, exp_avg_[i]);
    out.emplace("exp_avg_sq." + params_[i].first, exp_avg_sq_[i]);
  }
  return out;
}

nlohmann::json AdamW::state_meta() const {
  nlohmann::json names = nlohmann::json::array();
  for (const auto& [name, p] : params_) names.push_back(name);
  return {{"step", step_},
          {"beta1", options_.beta1},
          {"beta2", options_.beta2},
          {"eps", options_.eps},
          {"weight_decay", options_.weight_decay},
          {"fused", options_.fused},
          {"params", names}};
}

void AdamW::load_state(const std::map<std::string, at::Tensor>& tensors, const nlohmann::json& meta,
                       const std::string& source) {
  // Everything is checked before anything is changed, so a failed load leaves the optimizer as it was.
  int64_t step = 0;
  try {
    if (!meta.is_object()) throw Error(fmt::format("{}: optimizer metadata is not a JSON object", source));
    for (const char* key : {"step", "beta1", "beta2", "eps", "weight_decay", "params"})
      if (!meta.contains(key)) throw Error(fmt::format("{}: optimizer metadata has no '{}'", source, key));
    if (!meta.at("step").is_number_integer() || meta.at("step").get<int64_t>() < 0)
      throw Error(fmt::format("{}: optimizer 'step' must be an integer >= 0, got {}", source, meta.at("step").dump()));
    step = meta.at("step").get<int64_t>();
    // Exact comparison: JSON keeps doubles bit for bit, and a changed value changes the run.
    // (`fused` may differ: both paths keep the same state.)
    const std::pair<const char*, double> options[] = {{"beta1", options_.beta1},
                                                      {"beta2", options_.beta2},
                                                      {"eps", options_.eps},
                                                      {"weight_decay", options_.weight_decay}};
    for (const auto& [key, value] : options) {
      const double saved = meta.at(key).get<double>();
      if (saved != value)
        throw Error(fmt::format("{}: optimizer state was saved with {} = {}, this run has {}", source, key, saved, value));
    }
    if (!meta.at("params").is_array())
      throw Error(fmt::format("{}: optimizer 'params' must be a list of parameter names", source));
    std::set<std::string> saved_names;
    for (const auto& n : meta.at("params")) saved_names.insert(n.get<std::string>());
    std::set<std::string> names;
    for (const auto& [name, p] : params_) {
      names.insert(name);
      if (!saved_names.count(name))
        throw Error(fmt::format("{}: optimizer state has no entry for parameter '{}'", source, name));
    }
    for (const auto& n : saved_names)
      if (!names.count(n)) throw Error(fmt::format("{}: optimizer state is for unknown parameter '{}'", source, n));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: bad optimizer metadata: {}", source, e.what()));
  }

  std::set<std::string> expected;
  std::vector<std::pair<at::Tensor*, const at::Tensor*>> copies;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    for (auto [key, dst] : {std::pair{"exp_avg." + name, &exp_avg_[i]}, std::pair{"exp_avg_sq." + name, &exp_avg_sq_[i]}}) {
      expected.insert(key);
      auto it = tensors.find(key);
      if (it == tensors.end() || !it->second.defined())
        throw Error(fmt::format("{}: optimizer state tensor '{}' is missing", source, key));
      const at::Tensor& t = it->second;
      if (!t.sizes().equals(p.sizes()))
        throw Error(fmt::format("{}: optimizer state tensor '{}' has shape {}, the parameter {}", source, key,
                                shape_str(t.sizes()), shape_str(p.sizes())));
      if (t.scalar_type() != p.scalar_type())
        throw Error(fmt::format("{}: optimizer state tensor '{}' is {}, the parameter {}", source, key,
                                c10::toString(t.scalar_type()), c10::toString(p.scalar_type())));
      copies.emplace_back(dst, &t);
    }
  }
  for (const auto& [key, t] : tensors)
    if (!expected.count(key)) throw Error(fmt::format("{}: unknown optimizer state tensor '{}'", source, key));

  c10::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst->copy_(*src);  // into the existing tensors: keeps device and strides
  step_ = step;
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  c10::NoGradGuard no_grad;
  // Grads grouped by (device, dtype), as clip_grad_norm_ does for its foreach calls.
  std::vector<std::vector<at::Tensor>> groups;
  for (const auto& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& grp) {
      return grp[0].device() == g.device() && grp[0].scalar_type() == g.scalar_type();
    });
    if (it == groups.end()) groups.push_back({g});
    else it->push_back(g);
  }
  if (groups.empty()) return 0.0;
  const at::Device first_device = groups[0][0].device();
  std::vector<at::Tensor> norms;
  for (const auto& grp : groups) {
    // fp32 grads: exactly PyTorch's per-tensor norms; others are reduced to fp32 norms rather than
    // rounded back to their own dtype.
    std::optional<at::ScalarType> dtype;
    if (grp[0].scalar_type() != at::kFloat) dtype = at::kFloat;
    for (auto& n : at::_foreach_norm(grp, 2, dtype)) norms.push_back(n.to(first_device));
  }
  const at::Tensor total = at::linalg_vector_norm(at::stack(norms), 2);
  const double norm = total.item<double>();
  if (!std::isfinite(norm) || !(max_norm > 0)) return norm;
  // PyTorch's `max_norm / (total + 1e-6)` on a tensor is reciprocal() * max_norm, clamped to 1.
  // Scaling by 1 is a no-op, so only a coefficient below 1 is applied (norm > max_norm, up to the 1e-6).
  const at::Tensor coef = ((total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
  if (coef.item<double>() < 1.0)
    for (auto& grp : groups) at::_foreach_mul_(grp, coef.to(grp[0].device()));
  return norm;
}

}  // namespace mt
