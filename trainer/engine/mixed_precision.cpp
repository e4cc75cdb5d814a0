// Master weights -> compute weights casts (see mixed_precision.h).
#include "trainer/engine/mixed_precision.h"

#include <ATen/ATen.h>

#include <map>

namespace mt {

Transformer compute_view(const Transformer& master, at::ScalarType compute_dtype) {
  if (master.embed.scalar_type() == compute_dtype) return master;
  std::map<std::string, at::Tensor> cast;
  for (const auto& [name, t] : master.params) cast[name] = t.to(compute_dtype);
  return build_transformer(master.config, std::move(cast), "compute_view");
}

void make_trainable(Transformer& model) {
  for (auto& [name, t] : model.params) t.requires_grad_(true);
}

std::vector<at::Tensor> parameter_tensors(const Transformer& model) {
  std::vector<at::Tensor> out;
  out.reserve(model.params.size());
  for (const auto& kv : model.params) out.push_back(kv.second);
  return out;
}

}  // namespace mt
