// Parses Hugging Face config.json files for LLaMA-2/3/3.1/3.2, Mistral and Qwen2 into ModelConfig.
// Both dialects are accepted (Hub: rope_theta + rope_scaling; transformers 5.x: rope_parameters).
// Missing required fields, unknown model types and unsupported rope scaling are errors.
#include "models/hf_config.h"

#include <fmt/format.h>

#include <cmath>
#include <sstream>

#include "models/error.h"
#include "models/json_read.h"

namespace mt {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw Error(fmt::format("{}: {}", source, what));
}

int64_t get_int(const json& j, const char* key, const std::string& source) {
  if (!j.contains(key)) fail(source, fmt::format("missing required field '{}'", key));
  const json& v = j[key];
  if (!v.is_number_integer()) fail(source, fmt::format("field '{}' must be an integer, got {}", key, v.dump()));
  return v.get<int64_t>();
}

// No real model has a dimension near 2^31; a larger value is a damaged file, and refusing it here
// keeps later products (hidden * vocab, layers * ...) far from overflow and from huge allocations.
constexpr int64_t kMaxSize = int64_t{1} << 31;
// The per-layer tables are allocated from num_hidden_layers before any weight is read.
constexpr int64_t kMaxLayers = 1 << 16;

int64_t get_positive_int(const json& j, const char* key, const std::string& source, int64_t max = kMaxSize) {
  int64_t v = get_int(j, key, source);
  if (v <= 0) fail(source, fmt::format("field '{}' must be positive, got {}", key, v));
  if (v > max) fail(source, fmt::format("field '{}' must be at most {}, got {}", key, max, v));
  return v;
}

// A float field that must be finite and > 0 (eps, theta, factors): NaN compares false everywhere.
double require_positive_finite(double v, const char* key, const std::string& source) {
  if (!(v > 0) || !std::isfinite(v)) fail(source, fmt::format("field '{}' must be > 0 and finite, got {}", key, v));
  return v;
}

double get_number(const json& j, const char* key, const std::string& source, double fallback, bool required) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) fail(source, fmt::format("missing required field '{}'", key));
    return fallback;
  }
  if (!j[key].is_number()) fail(source, fmt::format("field '{}' must be a number, got {}", key, j[key].dump()));
  return j[key].get<double>();
}

bool get_bool(const json& j, const char* key, const std::string& source, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) fail(source, fmt::format("field '{}' must be true or false, got {}", key, j[key].dump()));
  return j[key].get<bool>();
}

RopeConfig parse_rope(const json& j, const std::string& source) {
  RopeConfig rope;
  // transformers 5.x: everything in rope_parameters; Hub: rope_theta + optional rope_scaling.
  const json* params = nullptr;
  std::string where;
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    params = &j["rope_parameters"];
    where = "rope_parameters";
    if (!params->is_object()) fail(source, "field 'rope_parameters' must be an object");
    rope.theta = get_number(*params, "rope_theta", source + ": rope_parameters", 0, true);
  } else {
    rope.theta = get_number(j, "rope_theta", source, 10000.0, false);
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
      params = &j["rope_scaling"];
      where = "rope_scaling";
      if (!params->is_object()) fail(source, "field 'rope_scaling' must be an object or null");
    }
  }
  require_positive_finite(rope.theta, "rope_theta", params && where == "rope_parameters" ? source + ": rope_parameters" : source);
  if (params == nullptr) return rope;

  const std::string ctx = source + ": " + where;
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {  // "type" is the older spelling
    if (params->contains(key)) {
      if (!(*params)[key].is_string()) fail(ctx, fmt::format("'{}' must be a string", key));
      type = (*params)[key].get<std::string>();
      break;
    }
  }
  rope.type = type;
  if (type == "default") return rope;
  if (type == "linear") {
    rope.factor = require_positive_finite(get_number(*params, "factor", ctx, 0, true), "factor", ctx);
  } else if (type == "llama3") {
    rope.factor = require_positive_finite(get_number(*params, "factor", ctx, 0, true), "factor", ctx);
    rope.low_freq_factor = require_positive_finite(get_number(*params, "low_freq_factor", ctx, 0, true), "low_freq_factor", ctx);
    rope.high_freq_factor =
        require_positive_finite(get_number(*params, "high_freq_factor", ctx, 0, true), "high_freq_factor", ctx);
    const double original = get_number(*params, "original_max_position_embeddings", ctx, 0, true);
    if (!(original >= 1 && original <= static_cast<double>(kMaxSize)))  // the cast below needs the range
      fail(ctx, fmt::format("field 'original_max_position_embeddings' must be in 1..{}, got {}", kMaxSize, original));
    rope.original_max_position_embeddings = static_cast<int64_t>(original);
    if (rope.high_freq_factor <= rope.low_freq_factor)
      fail(ctx, "llama3 rope needs high_freq_factor > low_freq_factor");
    if (rope.original_max_position_embeddings <= 0 || rope.low_freq_factor <= 0)
      fail(ctx, "llama3 rope needs positive original_max_position_embeddings and low_freq_factor");
  } else {
    fail(ctx, fmt::format("unsupported rope type '{}' (supported: default, linear, llama3)", type));
  }
  if (rope.factor <= 0) fail(ctx, fmt::format("rope factor must be positive, got {}", rope.factor));
  return rope;
}

}  // namespace

// bos/eos_token_id may be null, an integer, or a list of integers (Llama 3.1 instruct).
std::vector<int64_t> parse_token_ids(const json& j, const char* key, const std::string& source) {
  std::vector<int64_t> ids;
  if (!j.contains(key) || j[key].is_null()) return ids;
  const json& v = j[key];
  if (v.is_number_integer()) {
    ids.push_back(v.get<int64_t>());
  } else if (v.is_array()) {
    for (const json& e : v) {
      if (!e.is_number_integer()) fail(source, fmt::format("field '{}' must hold integers, got {}", key, v.dump()));
      ids.push_back(e.get<int64_t>());
    }
  } else {
    fail(source, fmt::format("field '{}' must be an integer or a list of integers, got {}", key, v.dump()));
  }
  return ids;
}

ModelConfig parse_hf_config(const json& j, const std::string& source) {
  if (!j.is_object()) fail(source, "top level must be a JSON object");
  ModelConfig c;
  c.raw = j;
  if (!j.contains("model_type") || !j["model_type"].is_string())
    fail(source, "missing required string field 'model_type'");
  c.model_type = j["model_type"].get<std::string>();
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2")
    fail(source, fmt::format("unsupported model_type '{}' (supported: llama, mistral, qwen2)", c.model_type));

  c.vocab_size = get_positive_int(j, "vocab_size", source);
  c.hidden_size = get_positive_int(j, "hidden_size", source);
  c.intermediate_size = get_positive_int(j, "intermediate_size", source);
  c.num_layers = get_positive_int(j, "num_hidden_layers", source, kMaxLayers);
  c.num_heads = get_positive_int(j, "num_attention_heads", source);
  c.num_kv_heads = (j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null())
                       ? get_positive_int(j, "num_key_value_heads", source)
                       : c.num_heads;
  if (c.num_heads % c.num_kv_heads != 0)
    fail(source, fmt::format("num_attention_heads {} is not a multiple of num_key_value_heads {}", c.num_heads,
                             c.num_kv_heads));
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    c.head_dim = get_positive_int(j, "head_dim", source);
  } else {
    if (c.hidden_size % c.num_heads != 0)
      fail(source, fmt::format("hidden_size {} is not divisible by num_attention_heads {} and no head_dim is given",
                               c.hidden_size, c.num_heads));
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) fail(source, fmt::format("head_dim {} must be even for rotary embeddings", c.head_dim));
  c.max_position_embeddings = get_positive_int(j, "max_position_embeddings", source);
  c.rms_norm_eps = require_positive_finite(get_number(j, "rms_norm_eps", source, 1e-6, true), "rms_norm_eps", source);
  c.rope = parse_rope(j, source);

  std::string act = "silu";
  if (j.contains("hidden_act")) {
    if (!j["hidden_act"].is_string()) fail(source, "field 'hidden_act' must be a string");
    act = j["hidden_act"].get<std::string>();
  }
  if (act != "silu") fail(source, fmt::format("unsupported hidden_act '{}' (supported: silu)", act));

  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", source, false);
  if (c.model_type == "qwen2") {
    c.qkv_bias = true;
  } else if (c.model_type == "llama") {
    c.qkv_bias = c.o_bias = get_bool(j, "attention_bias", source, false);
    c.mlp_bias = get_bool(j, "mlp_bias", source, false);
  }

  // Sliding window. Mistral: every layer when sliding_window is set. Qwen2: only when
  // use_sliding_window, for the layers layer_types marks "sliding_attention" (or, in the older
  // dialect, layers from max_window_layers on). LLaMA: none.
  c.sliding_window.assign(static_cast<size_t>(c.num_layers), 0);
  int64_t window = 0;
  if (j.contains("sliding_window") && !j["sliding_window"].is_null()) window = get_positive_int(j, "sliding_window", source);
  if (c.model_type == "mistral" && window > 0) {
    c.sliding_window.assign(static_cast<size_t>(c.num_layers), window);
  } else if (c.model_type == "qwen2" && get_bool(j, "use_sliding_window", source, false) && window > 0) {
    if (j.contains("layer_types") && !j["layer_types"].is_null()) {
      const json& lt = j["layer_types"];
      if (!lt.is_array() || static_cast<int64_t>(lt.size()) != c.num_layers)
        fail(source, "field 'layer_types' must be a list with one entry per layer");
      for (size_t i = 0; i < lt.size(); ++i) {
        if (!lt[i].is_string()) fail(source, fmt::format("layer_types[{}] must be a string", i));
        const std::string t = lt[i].get<std::string>();
        if (t == "sliding_attention") c.sliding_window[i] = window;
        else if (t != "full_attention") fail(source, fmt::format("layer_types[{}]: unknown layer type '{}'", i, t));
      }
    } else {
      int64_t first = j.contains("max_window_layers") ? get_int(j, "max_window_layers", source) : 0;
      for (int64_t i = std::max<int64_t>(first, 0); i < c.num_layers; ++i) c.sliding_window[i] = window;
    }
  }

  for (const char* key : {"dtype", "torch_dtype"}) {
    if (j.contains(key) && j[key].is_string()) {
      c.dtype = j[key].get<std::string>();
      break;
    }
  }
  c.bos_token_ids = parse_token_ids(j, "bos_token_id", source);
  c.eos_token_ids = parse_token_ids(j, "eos_token_id", source);
  std::vector<int64_t> pad = parse_token_ids(j, "pad_token_id", source);
  if (pad.size() > 1) fail(source, "field 'pad_token_id' must be a single integer");
  if (!pad.empty()) c.pad_token_id = pad[0];
  return c;
}

ModelConfig load_hf_config(const std::filesystem::path& file) {
  return parse_hf_config(read_json_file(file), file.string());
}

}  // namespace mt
