// The model architecture read from a Hugging Face config.json, in both dialects: the one Hub
// checkpoints carry (`rope_theta` + `rope_scaling`, `torch_dtype`) and the one transformers 5.x
// writes (`rope_parameters` holding theta and scaling, `dtype`). Unknown fields are kept for saving.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mt {

// Rotary embedding frequencies: "default", "linear" (positions / factor) or "llama3" (Llama 3.1
// frequency-dependent rescaling). Other HF rope types are rejected, never approximated.
struct RopeConfig {
  std::string type = "default";
  double theta = 10000.0;
  double factor = 1.0;
  double low_freq_factor = 1.0;                 // llama3
  double high_freq_factor = 4.0;                // llama3
  int64_t original_max_position_embeddings = 0;  // llama3
};

struct ModelConfig {
  std::string model_type;  // "llama" | "mistral" | "qwen2"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 always; LLaMA when attention_bias
  bool o_bias = false;    // LLaMA attention_bias only
  bool mlp_bias = false;
  // Per layer: 0 = full causal attention, w > 0 = query q sees keys kv with q - w < kv <= q.
  std::vector<int64_t> sliding_window;
  std::string dtype;  // stored dtype name ("bfloat16", "float32", ...), "" if absent
  std::vector<int64_t> bos_token_ids, eos_token_ids;
  int64_t pad_token_id = -1;  // -1: none
  nlohmann::json raw;         // the file as read, written back on save
};

// Parses a config.json object. `source` names the file in error messages.
ModelConfig parse_hf_config(const nlohmann::json& j, const std::string& source);
// Reads and parses a config.json file; every problem names the file (and the field).
ModelConfig load_hf_config(const std::filesystem::path& file);
// A token-id field that may be null/absent (empty result), an integer, or a list of integers.
std::vector<int64_t> parse_token_ids(const nlohmann::json& j, const char* key, const std::string& source);

}  // namespace mt
