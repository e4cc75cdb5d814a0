// The tiny LLaMA of tests/fixtures/llama3 with random weights, as trainable fp32 leaves: the model
// the training-step tests (train_step, source_weight, alignment) compute gradients on; with the
// examples they feed it and the gradient snapshots they compare.
#pragma once
#include <ATen/ATen.h>

#include <algorithm>
#include <initializer_list>
#include <vector>

#include "models/hf_config.h"
#include "models/transformer.h"
#include "trainer/data/examples.h"
#include "trainer/engine/mixed_precision.h"
#include "tests/test_util.h"

namespace mt::test {

inline Transformer tiny_model(uint64_t seed = 3) {
  Transformer m = init_transformer(load_hf_config(fixture("llama3") / "config.json"), seed,
                                   at::TensorOptions().dtype(at::kFloat));
  make_trainable(m);
  return m;
}

// Where eight_examples' targets come from: all real, the odd examples synthetic, or all synthetic.
enum class ExampleSources { real, alternating, synthetic };

// Eight examples of different lengths, prompts (the first half) masked out; targets of a real
// source (mask value 1) or a synthetic one (mask value 2).
inline TokenizedDataset eight_examples(ExampleSources sources = ExampleSources::real) {
  TokenizedDataset d;
  at::Generator gen = at::detail::createCPUGenerator(11);
  for (int i = 0; i < 8; ++i) {
    const int64_t len = 6 + 3 * i;
    at::Tensor ids = at::randint(256, {len}, gen, at::kLong);
    const bool synthetic = sources == ExampleSources::synthetic || (sources == ExampleSources::alternating && i % 2 == 1);
    TokenizedExample e;
    for (int64_t t = 0; t < len; ++t) {
      e.ids.push_back(static_cast<uint32_t>(ids[t].item<int64_t>()));
      e.loss_mask.push_back(t < len / 2 ? 0 : synthetic ? kMaskSyntheticTarget : kMaskTarget);
    }
    d.add(e);
  }
  return d;
}

// One row per listed example, for make_padded_batch.
inline std::vector<std::vector<int64_t>> rows_of(std::initializer_list<int64_t> idx) {
  std::vector<std::vector<int64_t>> rows;
  for (int64_t i : idx) rows.push_back({i});
  return rows;
}

// A copy of every parameter's gradient (zeros where there is none).
inline std::vector<at::Tensor> grads_of(const Transformer& m) {
  std::vector<at::Tensor> out;
  for (const auto& [name, p] : m.params) out.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return out;
}

inline void clear_grads(Transformer& m) {
  for (auto& [name, p] : m.params) p.mutable_grad().reset();
}

// The largest max |a - b| / max |a| over the tensors.
inline double max_rel_diff(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double scale = std::max(a[i].abs().max().item<double>(), 1e-12);
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>() / scale);
  }
  return worst;
}

}  // namespace mt::test
