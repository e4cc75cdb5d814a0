// The LLaMA-family decoder: embeddings, N x (RMSNorm, GQA attention with rotary embeddings and
// optional q/k/v(/o) bias and sliding window, RMSNorm, SwiGLU MLP), final RMSNorm, LM head.
// Attention masks are built from position ids, which covers padding, KV-cache decoding and
// sliding windows with one rule (see transformer.h).
#include "models/transformer.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>
#include <set>

#include "kernels/dispatch.h"
#include "models/error.h"
#include "models/rope.h"

namespace mt {
namespace {

std::string layer_prefix(size_t i) { return fmt::format("model.layers.{}.", i); }

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
}

// Boolean attention mask [B, 1, Sq, Sk] from query positions [B, Sq] and key positions [B, Sk]
// (-1 = invisible key); with doc_ids ([B, S], queries and keys the same tokens), only within a
// document.
at::Tensor attention_mask(const at::Tensor& q_pos, const at::Tensor& k_pos, int64_t window, const at::Tensor& doc_ids) {
  at::Tensor q = q_pos.unsqueeze(-1);  // [B, Sq, 1]
  at::Tensor k = k_pos.unsqueeze(1);   // [B, 1, Sk]
  at::Tensor mask = (k >= 0).logical_and(k <= q);
  if (window > 0) mask = mask.logical_and((q - k) < window);
  if (doc_ids.defined()) mask = mask.logical_and(doc_ids.unsqueeze(-1) == doc_ids.unsqueeze(1));
  return mask.unsqueeze(1);
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_param_shapes(const ModelConfig& c) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  const int64_t H = c.hidden_size, D = c.head_dim, I = c.intermediate_size;
  const int64_t q_out = c.num_heads * D, kv_out = c.num_kv_heads * D;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, H}});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = layer_prefix(static_cast<size_t>(i));
    out.push_back({p + "input_layernorm.weight", {H}});
    out.push_back({p + "self_attn.q_proj.weight", {q_out, H}});
    if (c.qkv_bias) out.push_back({p + "self_attn.q_proj.bias", {q_out}});
    out.push_back({p + "self_attn.k_proj.weight", {kv_out, H}});
    if (c.qkv_bias) out.push_back({p + "self_attn.k_proj.bias", {kv_out}});
    out.push_back({p + "self_attn.v_proj.weight", {kv_out, H}});
    if (c.qkv_bias) out.push_back({p + "self_attn.v_proj.bias", {kv_out}});
    out.push_back({p + "self_attn.o_proj.weight", {H, q_out}});
    if (c.o_bias) out.push_back({p + "self_attn.o_proj.bias", {H}});
    out.push_back({p + "post_attention_layernorm.weight", {H}});
    out.push_back({p + "mlp.gate_proj.weight", {I, H}});
    if (c.mlp_bias) out.push_back({p + "mlp.gate_proj.bias", {I}});
    out.push_back({p + "mlp.up_proj.weight", {I, H}});
    if (c.mlp_bias) out.push_back({p + "mlp.up_proj.bias", {I}});
    out.push_back({p + "mlp.down_proj.weight", {H, I}});
    if (c.mlp_bias) out.push_back({p + "mlp.down_proj.bias", {H}});
  }
  out.push_back({"model.norm.weight", {H}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, H}});
  return out;
}

Transformer build_transformer(const ModelConfig& config, std::map<std::string, at::Tensor> weights,
                              const std::string& source) {
  Transformer m;
  m.config = config;
  // num_hidden_layers against what the files hold, before the per-layer tables are built from it.
  std::set<int64_t> layers;
  const std::string prefix = "model.layers.";
  for (const auto& kv : weights) {
    if (kv.first.compare(0, prefix.size(), prefix) != 0) continue;
    const size_t dot = kv.first.find('.', prefix.size());
    const std::string digits = kv.first.substr(prefix.size(), dot == std::string::npos ? std::string::npos : dot - prefix.size());
    if (!digits.empty() && digits.size() < 10 && digits.find_first_not_of("0123456789") == std::string::npos)
      layers.insert(std::stoll(digits));
  }
  if (config.num_layers > static_cast<int64_t>(layers.size()))
    throw Error(fmt::format("{}: config.json: 'num_hidden_layers' is {} but the weight files hold {} layer(s)", source,
                            config.num_layers, layers.size()));
  if (config.tie_word_embeddings) {
    auto it = weights.find("lm_head.weight");
    if (it != weights.end()) {
      // Some tied checkpoints store the head too; accept it only if it is the same matrix.
      auto emb = weights.find("model.embed_tokens.weight");
      if (emb == weights.end() || !at::equal(emb->second, it->second))
        throw Error(fmt::format("{}: tie_word_embeddings is true but tensor 'lm_head.weight' differs from "
                                "'model.embed_tokens.weight'", source));
      weights.erase(it);
    }
  }
  for (const auto& [name, shape] : expected_param_shapes(config)) {
    auto it = weights.find(name);
    if (it == weights.end()) throw Error(fmt::format("{}: missing tensor '{}'", source, name));
    if (it->second.sizes().vec() != shape)
      throw Error(fmt::format("{}: tensor '{}' has shape [{}] but the config needs [{}]", source, name,
                              fmt::join(it->second.sizes(), ", "), fmt::join(shape, ", ")));
    m.params.emplace_back(name, it->second);
    weights.erase(it);
  }
  if (!weights.empty()) {
    std::vector<std::string> extra;
    for (const auto& kv : weights) extra.push_back(kv.first);
    throw Error(fmt::format("{}: unexpected tensor(s) not used by a {} model: {}", source, config.model_type,
                            fmt::join(extra, ", ")));
  }
  std::map<std::string, at::Tensor> by_name(m.params.begin(), m.params.end());
  auto get = [&](const std::string& n) {
    auto it = by_name.find(n);
    return it == by_name.end() ? at::Tensor() : it->second;
  };
  m.embed = get("model.embed_tokens.weight");
  m.final_norm = get("model.norm.weight");
  m.lm_head = config.tie_word_embeddings ? m.embed : get("lm_head.weight");
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string p = layer_prefix(static_cast<size_t>(i));
    LayerWeights l;
    l.input_norm = get(p + "input_layernorm.weight");
    l.q_proj = get(p + "self_attn.q_proj.weight");
    l.k_proj = get(p + "self_attn.k_proj.weight");
    l.v_proj = get(p + "self_attn.v_proj.weight");
    l.o_proj = get(p + "self_attn.o_proj.weight");
    l.q_bias = get(p + "self_attn.q_proj.bias");
    l.k_bias = get(p + "self_attn.k_proj.bias");
    l.v_bias = get(p + "self_attn.v_proj.bias");
    l.o_bias = get(p + "self_attn.o_proj.bias");
    l.post_norm = get(p + "post_attention_layernorm.weight");
    l.gate_proj = get(p + "mlp.gate_proj.weight");
    l.up_proj = get(p + "mlp.up_proj.weight");
    l.down_proj = get(p + "mlp.down_proj.weight");
    l.gate_bias = get(p + "mlp.gate_proj.bias");
    l.up_bias = get(p + "mlp.up_proj.bias");
    l.down_bias = get(p + "mlp.down_proj.bias");
    m.layers.push_back(std::move(l));
  }
  m.inv_freq = rope_inv_freq(config).to(m.embed.device());
  return m;
}

Transformer init_transformer(const ModelConfig& config, uint64_t seed, const c10::TensorOptions& options) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  std::map<std::string, at::Tensor> w;
  for (const auto& [name, shape] : expected_param_shapes(config)) {
    at::Tensor t;
    const bool is_norm = name.find("norm.weight") != std::string::npos;
    const bool is_bias = name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) t = at::ones(shape, at::kFloat);
    else if (is_bias) t = at::zeros(shape, at::kFloat);
    else t = at::normal(0.0, 0.02, shape, gen, at::TensorOptions().dtype(at::kFloat));
    w[name] = t.to(options);
  }
  return build_transformer(config, std::move(w), "init_transformer");
}

KVCache make_kv_cache(const Transformer& model, int64_t batch, int64_t capacity) {
  const ModelConfig& c = model.config;
  KVCache cache;
  auto opts = model.embed.options();
  for (int64_t i = 0; i < c.num_layers; ++i) {
    cache.k.push_back(at::zeros({batch, c.num_kv_heads, capacity, c.head_dim}, opts));
    cache.v.push_back(at::zeros({batch, c.num_kv_heads, capacity, c.head_dim}, opts));
  }
  cache.key_pos = at::full({batch, capacity}, -1, opts.dtype(at::kLong));
  return cache;
}

at::Tensor transformer_hidden(const Transformer& model, const at::Tensor& input_ids, const at::Tensor& positions,
                              const at::Tensor& valid, KVCache* cache, const at::Tensor& doc_ids,
                              const ForwardOptions& options) {
  const ModelConfig& c = model.config;
  TORCH_CHECK(input_ids.dim() == 2 && positions.sizes() == input_ids.sizes(),
              "transformer_hidden: input_ids and positions must both be [B, S]");
  TORCH_CHECK(!doc_ids.defined() || (cache == nullptr && doc_ids.sizes() == input_ids.sizes()),
              "transformer_hidden: doc_ids must be [B, S] and cannot be combined with a KV cache");
  TORCH_CHECK(!options.plain_causal || (!valid.defined() && !doc_ids.defined() && cache == nullptr),
              "transformer_hidden: plain_causal excludes valid, doc_ids and a KV cache");
  const int64_t B = input_ids.size(0), S = input_ids.size(1);
  const auto dtype = model.embed.scalar_type();

  // Key positions for the mask: this chunk's positions, with padding marked invisible.
  at::Tensor new_key_pos = valid.defined() ? at::where(valid, positions, at::full_like(positions, -1)) : positions;
  at::Tensor key_pos = new_key_pos;
  int64_t start = 0;
  if (cache != nullptr) {
    start = cache->length;
    TORCH_CHECK(cache->key_pos.size(0) == B, "KV cache batch ", cache->key_pos.size(0), " != input batch ", B);
    TORCH_CHECK(start + S <= cache->capacity(), "KV cache full: ", start, " + ", S, " > capacity ",
                cache->capacity());
    cache->key_pos.narrow(1, start, S).copy_(new_key_pos);
    key_pos = cache->key_pos.narrow(1, 0, start + S);
  }
  auto [cos, sin] = rope_cos_sin(model.inv_freq, positions, c, dtype);
  // Masks depend only on the window size; build each distinct one once.
  // A window at least S long never cuts a plain causal row, so such rows need no mask at all.
  std::map<int64_t, at::Tensor> masks;
  for (int64_t w : c.sliding_window) {
    if (masks.count(w)) continue;
    masks[w] = options.plain_causal && (w <= 0 || w >= S) ? at::Tensor() : attention_mask(positions, key_pos, w, doc_ids);
  }

  at::Tensor h = at::embedding(model.embed, input_ids);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  for (size_t i = 0; i < model.layers.size(); ++i) {
    // Everything is captured by value: activation checkpointing calls `run` again in the backward
    // pass, after this function has returned.
    const at::Tensor mask = masks.at(c.sliding_window[i]);
    const double eps = c.rms_norm_eps;
    const int64_t n_heads = c.num_heads, n_kv = c.num_kv_heads, head_dim = c.head_dim;
    auto run = [l = model.layers[i], cos = cos, sin = sin, mask, cache, start, B, S, i, eps, n_heads, n_kv, head_dim,
                scale](const at::Tensor& h_in) {
      at::Tensor x = kernels::rms_norm(h_in, l.input_norm, eps);
      at::Tensor q = linear(x, l.q_proj, l.q_bias).view({B, S, n_heads, head_dim}).transpose(1, 2);
      at::Tensor k = linear(x, l.k_proj, l.k_bias).view({B, S, n_kv, head_dim}).transpose(1, 2);
      at::Tensor v = linear(x, l.v_proj, l.v_bias).view({B, S, n_kv, head_dim}).transpose(1, 2);
      q = apply_rope(q, cos, sin);
      k = apply_rope(k, cos, sin);
      if (cache != nullptr) {
        cache->k[i].narrow(2, start, S).copy_(k);
        cache->v[i].narrow(2, start, S).copy_(v);
        k = cache->k[i].narrow(2, 0, start + S);
        v = cache->v[i].narrow(2, 0, start + S);
      }
      // No mask tensor at all on plain causal rows (an undefined one is not "no mask" to SDPA).
      const std::optional<at::Tensor> attn_mask = mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt;
      at::Tensor attn = at::scaled_dot_product_attention(q, k, v, attn_mask, 0.0, /*is_causal=*/!mask.defined(),
                                                         scale, /*enable_gqa=*/true);
      attn = attn.transpose(1, 2).reshape({B, S, n_heads * head_dim});
      at::Tensor h_mid = h_in + linear(attn, l.o_proj, l.o_bias);
      x = kernels::rms_norm(h_mid, l.post_norm, eps);
      at::Tensor gate = linear(x, l.gate_proj, l.gate_bias);
      at::Tensor up = linear(x, l.up_proj, l.up_bias);
      return h_mid + linear(at::silu(gate) * up, l.down_proj, l.down_bias);
    };
    h = options.wrap_layer ? options.wrap_layer(i, h, run) : run(h);
  }
  if (cache != nullptr) cache->length = start + S;
  return kernels::rms_norm(h, model.final_norm, c.rms_norm_eps);
}

at::Tensor transformer_logits(const Transformer& model, const at::Tensor& hidden) {
  return at::linear(hidden, model.lm_head);
}

}  // namespace mt
