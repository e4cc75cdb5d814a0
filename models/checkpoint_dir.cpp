// Loads and saves HF model directories (see checkpoint_dir.h). Loading validates every tensor
// against the config (names, shapes) through build_transformer, so a mismatched checkpoint is an
// error naming the directory and the tensor, never a silently wrong model.
#include "models/checkpoint_dir.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <set>

#include "models/atomic_file.h"
#include "models/error.h"
#include "models/json_read.h"
#include "models/safetensors.h"

namespace mt {
namespace fs = std::filesystem;

at::ScalarType dtype_from_name(const std::string& name) {
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "half") return at::kHalf;
  if (name == "float32" || name == "fp32" || name == "float") return at::kFloat;
  throw Error(fmt::format("unsupported dtype '{}' (supported: bfloat16, float16, float32)", name));
}

std::optional<at::ScalarType> parse_dtype_option(const std::string& name) {
  if (name == "auto") return std::nullopt;
  return dtype_from_name(name);
}

namespace {

GenerationDefaults read_generation_config(const fs::path& file) {
  GenerationDefaults g;
  if (!fs::exists(file)) return g;
  const nlohmann::json j = read_json_file(file);
  const std::string src = file.string();
  if (!j.is_object()) throw Error(fmt::format("{}: top level must be a JSON object", src));
  g.raw = j;
  g.eos_token_ids = parse_token_ids(j, "eos_token_id", src);
  auto pad = parse_token_ids(j, "pad_token_id", src);
  if (!pad.empty()) g.pad_token_id = pad[0];
  auto num = [&](const char* key) -> std::optional<double> {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    if (!j[key].is_number()) throw Error(fmt::format("{}: field '{}' must be a number", src, key));
    return j[key].get<double>();
  };
  if (j.contains("do_sample") && !j["do_sample"].is_null()) {
    if (!j["do_sample"].is_boolean()) throw Error(fmt::format("{}: field 'do_sample' must be true or false", src));
    g.do_sample = j["do_sample"].get<bool>();
  }
  // Integral values only (50 or 50.0): a cast of 2.5 or 1e30 would silently be another number.
  auto integer = [&](const char* key) -> std::optional<int64_t> {
    const auto v = num(key);
    if (v && !(std::trunc(*v) == *v && std::abs(*v) < 9.0e18))
      throw Error(fmt::format("{}: field '{}' must be an integer, got {}", src, key, j[key].dump()));
    return v ? std::optional<int64_t>(static_cast<int64_t>(*v)) : std::nullopt;
  };
  g.temperature = num("temperature");
  g.top_p = num("top_p");
  g.top_k = integer("top_k");
  g.max_new_tokens = integer("max_new_tokens");
  return g;
}

}  // namespace

LoadedModel load_model_dir(const fs::path& dir, c10::Device device, std::optional<at::ScalarType> dtype) {
  if (!fs::is_directory(dir)) throw Error(fmt::format("{}: not a model directory", dir.string()));
  LoadedModel out;
  out.dir = dir;
  ModelConfig config = load_hf_config(dir / "config.json");
  c10::TensorOptions options = c10::TensorOptions().device(device);
  if (dtype) options = options.dtype(*dtype);
  std::map<std::string, at::Tensor> weights = load_safetensors_dir(dir, options, /*require_finite=*/true);
  out.model = build_transformer(config, std::move(weights), dir.string());
  out.generation = load_generation_defaults(dir, out.model.config);
  return out;
}

GenerationDefaults load_generation_defaults(const fs::path& dir, const ModelConfig& config) {
  GenerationDefaults g = read_generation_config(dir / "generation_config.json");
  if (g.eos_token_ids.empty()) g.eos_token_ids = config.eos_token_ids;
  if (g.pad_token_id < 0) g.pad_token_id = config.pad_token_id;
  return g;
}

namespace {

const char* dtype_config_name(at::ScalarType t) {
  switch (t) {
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kFloat: return "float32";
    default: throw Error(fmt::format("cannot save a model with parameter dtype {}", c10::toString(t)));
  }
}

// After a save, weight files of an earlier save (a sharded set, or a model.safetensors, or an index
// now unneeded) must go: the loader prefers an index, and stale shards would be loaded silently.
// Only HF's reserved weight names are touched, as transformers' save_pretrained does.
void remove_stale_weight_files(const fs::path& dir, const std::vector<fs::path>& written) {
  std::set<std::string> keep;
  for (const auto& p : written) keep.insert(p.filename().string());
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const bool is_shard = name.rfind("model-", 0) == 0 && name.find("-of-") != std::string::npos &&
                          name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0;
    const bool is_weights = is_shard || name == "model.safetensors" || name == "model.safetensors.index.json";
    if (is_weights && keep.count(name) == 0) fs::remove(e.path());
  }
}

}  // namespace

void save_model_dir(const Transformer& model, const GenerationDefaults& generation, const fs::path& dir,
                    uint64_t max_shard_bytes) {
  fs::create_directories(dir);
  NamedTensors tensors;
  for (const auto& [name, t] : model.params) tensors.emplace_back(name, t.detach().to(at::kCPU).contiguous());
  const std::vector<fs::path> written = write_sharded_safetensors(dir, tensors, max_shard_bytes);
  remove_stale_weight_files(dir, written);
  nlohmann::json config = model.config.raw;
  // Record the dtype the weights are now stored in, in the key the file already uses.
  const char* dtype_key = config.contains("torch_dtype") ? "torch_dtype" : "dtype";
  config[dtype_key] = dtype_config_name(model.embed.scalar_type());
  write_text_file_atomically(dir / "config.json", config.dump(2) + "\n");
  if (!generation.raw.is_null()) write_text_file_atomically(dir / "generation_config.json", generation.raw.dump(2) + "\n");
}

}  // namespace mt
