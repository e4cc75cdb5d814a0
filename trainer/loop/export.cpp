// final/ of a training run (see export.h).
#include "trainer/loop/export.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <unistd.h>

#include <map>

#include "models/atomic_file.h"
#include "models/chat_template.h"
#include "models/error.h"
#include "models/hf_tokenizer_files.h"
#include "models/tokenizer.h"

namespace mt {
namespace fs = std::filesystem;

GenerationDefaults export_generation(const GenerationDefaults& generation, const ModelConfig& config,
                                     const fs::path& tokenizer_path, const std::string& chat_template) {
  if (chat_template.empty()) return generation;
  GenerationDefaults g = generation;
  g.eos_token_ids = chat_stop_ids(Tokenizer::load(tokenizer_path), chat_template, generation.eos_token_ids);
  if (!g.raw.is_object()) {  // no generation_config.json in the source: a minimal one
    g.raw = nlohmann::json::object();
    if (config.raw.contains("bos_token_id")) g.raw["bos_token_id"] = config.raw["bos_token_id"];
    if (g.pad_token_id >= 0) g.raw["pad_token_id"] = g.pad_token_id;
  }
  g.raw["eos_token_id"] = g.eos_token_ids.size() == 1 ? nlohmann::json(g.eos_token_ids[0]) : nlohmann::json(g.eos_token_ids);
  return g;
}

fs::path export_final(const fs::path& run_dir, const Transformer& master, const GenerationDefaults& generation,
                      at::ScalarType dtype, const fs::path& tokenizer_path, const std::string& chat_template,
                      int64_t max_shard_bytes, const AlignmentScorer& scorer) {
  const fs::path final_dir = run_dir / "final";
  const fs::path tmp = run_dir / fmt::format(".final.tmp-{}", ::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    c10::NoGradGuard no_grad;
    std::map<std::string, at::Tensor> weights;
    for (const auto& [name, t] : master.params) weights[name] = t.detach().to(dtype);
    Transformer exported = build_transformer(master.config, std::move(weights), "export");
    save_model_dir(exported, export_generation(generation, master.config, tokenizer_path, chat_template), tmp,
                   static_cast<uint64_t>(max_shard_bytes));
    if (scorer.defined()) save_alignment_scorer(scorer, tmp);
    write_tokenizer_files(tokenizer_path, chat_template, tmp);
    publish_directory(tmp, final_dir, IfPublished::kReplace);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error(fmt::format("{}: export failed: {}", final_dir.string(), e.what()));
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return final_dir;
}

at::ScalarType export_dtype(const std::string& option, const ModelConfig& config) {
  if (option != "auto") return dtype_from_name(option);
  for (const char* key : {"torch_dtype", "dtype"})
    if (config.raw.contains(key) && config.raw[key].is_string()) return dtype_from_name(config.raw[key].get<std::string>());
  return at::kFloat;
}

}  // namespace mt
