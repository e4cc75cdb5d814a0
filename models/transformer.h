// The decoder-only transformer shared by LLaMA-2/3, Mistral and Qwen2: weights held under their
// HF names, a forward pass over token ids with explicit position ids, and an optional KV cache.
// Single-device code: precision, parallelism and checkpointing are applied from trainer/.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/hf_config.h"

namespace mt {

struct LayerWeights {
  at::Tensor input_norm, q_proj, k_proj, v_proj, o_proj, q_bias, k_bias, v_bias, o_bias;
  at::Tensor post_norm, gate_proj, up_proj, down_proj, gate_bias, up_bias, down_bias;
};

struct Transformer {
  ModelConfig config;
  // Parameters under HF names in a fixed order (embeddings, layers, norm, lm_head unless tied).
  std::vector<std::pair<std::string, at::Tensor>> params;
  at::Tensor embed, final_norm, lm_head;  // lm_head aliases embed when tied
  std::vector<LayerWeights> layers;
  at::Tensor inv_freq;  // fp32, on the weights' device
};

// The HF names and shapes a model of this config has, in canonical order.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_param_shapes(const ModelConfig& config);

// Builds a model from HF-named weights. Every expected tensor must be present with the right shape
// and no unexpected tensor may remain; errors name `source` and the tensor. A tied checkpoint that
// also stores lm_head.weight is accepted when it equals the embeddings. Weights are used as given
// (device and dtype are the caller's choice).
Transformer build_transformer(const ModelConfig& config, std::map<std::string, at::Tensor> weights,
                              const std::string& source);

// Random init (normal(0, 0.02), norms 1, biases 0) for tests and the demo.
Transformer init_transformer(const ModelConfig& config, uint64_t seed, const c10::TensorOptions& options);

// Per-layer key/value cache. Keys are stored after rotary embedding. `key_pos` holds each cached
// slot's position id, -1 for empty or padding slots that no query may see.
struct KVCache {
  std::vector<at::Tensor> k, v;  // per layer [B, kv_heads, capacity, head_dim]
  at::Tensor key_pos;            // [B, capacity] int64
  int64_t length = 0;            // slots filled
  int64_t capacity() const { return key_pos.defined() ? key_pos.size(1) : 0; }
};

KVCache make_kv_cache(const Transformer& model, int64_t batch, int64_t capacity);

// Hooks the trainer applies from outside (the model code stays single-device, plain code).
struct ForwardOptions {
  // Every row holds one document at positions 0..S-1 with no padding: attention uses the causal
  // kernel without a mask tensor (flash attention on CUDA). Not valid with valid/doc_ids/cache.
  bool plain_causal = false;
  // Called for each decoder layer instead of running it directly: wrap_layer(i, h, run) must
  // return run(h) (activation checkpointing recomputes run in the backward pass).
  std::function<at::Tensor(size_t layer, const at::Tensor& h, const std::function<at::Tensor(const at::Tensor&)>& run)>
      wrap_layer;
};

// Forward pass. input_ids, positions: [B, S] int64. `valid` (optional, [B, S] bool) marks real
// tokens; padding tokens are never attended to. Query q sees key k when k is valid, pos_k <= pos_q
// and, in sliding-window layers, pos_q - pos_k < window. With `cache`, the new keys/values are
// appended at cache->length and queries see every cached slot. `doc_ids` (optional, [B, S] int64,
// no cache) packs several documents in one row: a query sees only keys of its own document, and
// each document's positions start at 0. Returns hidden states [B, S, H] after the final norm.
at::Tensor transformer_hidden(const Transformer& model, const at::Tensor& input_ids, const at::Tensor& positions,
                              const at::Tensor& valid = {}, KVCache* cache = nullptr,
                              const at::Tensor& doc_ids = {}, const ForwardOptions& options = {});

// Logits [B, S, V] = hidden @ lm_head^T, in the weights' dtype.
at::Tensor transformer_logits(const Transformer& model, const at::Tensor& hidden);

}  // namespace mt
