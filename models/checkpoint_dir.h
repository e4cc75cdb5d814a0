// Hugging Face model directories: config.json + model.safetensors or sharded files with
// model.safetensors.index.json (+ generation_config.json when present), loaded onto a device in a
// chosen dtype, and written back in the same layout so that transformers loads them as is.
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <filesystem>
#include <optional>

#include "models/transformer.h"

namespace mt {

// Decoding defaults from generation_config.json (all optional).
struct GenerationDefaults {
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;
  std::optional<bool> do_sample;
  std::optional<double> temperature, top_p;
  std::optional<int64_t> top_k, max_new_tokens;
  nlohmann::json raw;  // written back on save; null when the file was absent
};

// A model directory's decoding defaults: its generation_config.json, with eos and pad ids from
// config.json where the file has none (or is absent).
GenerationDefaults load_generation_defaults(const std::filesystem::path& dir, const ModelConfig& config);

struct LoadedModel {
  Transformer model;
  GenerationDefaults generation;
  std::filesystem::path dir;
};

// Dtype for a name as config.json spells it ("bfloat16", "float16", "float32"); throws otherwise.
at::ScalarType dtype_from_name(const std::string& name);
// Parses --dtype values: "auto" (nullopt: the checkpoint's own), "bf16"/"bfloat16", "fp16", "fp32".
std::optional<at::ScalarType> parse_dtype_option(const std::string& name);

// Loads `dir` onto `device`; `dtype` converts every tensor (nullopt keeps the stored dtypes).
LoadedModel load_model_dir(const std::filesystem::path& dir, c10::Device device,
                           std::optional<at::ScalarType> dtype = std::nullopt);

// Writes config.json, generation_config.json (when known) and weights (sharded above
// max_shard_bytes, HF naming). Tensors are written in their current dtype from CPU copies. Weight
// files of an earlier save in `dir` that this save did not write are removed.
void save_model_dir(const Transformer& model, const GenerationDefaults& generation, const std::filesystem::path& dir,
                    uint64_t max_shard_bytes = 5ull * 1000 * 1000 * 1000);

}  // namespace mt
