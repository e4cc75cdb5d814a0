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
#include "trainer/engine/checkpoint.h"
#include "trainer/loop/checkpoint_model.h"

namespace mt {
namespace fs = std::filesystem;

GenerationDefaults export_generation(const GenerationDefaults& generation, const ModelConfig& config,
                                     const Tokenizer& tok, const std::string& chat_template) {
  if (chat_template.empty()) return generation;
  GenerationDefaults g = generation;
  g.eos_token_ids = chat_stop_ids(tok, chat_template, generation.eos_token_ids);
  if (!g.raw.is_object()) {  // no generation_config.json in the source: a minimal one
    g.raw = nlohmann::json::object();
    if (config.raw.contains("bos_token_id")) g.raw["bos_token_id"] = config.raw["bos_token_id"];
    if (g.pad_token_id >= 0) g.raw["pad_token_id"] = g.pad_token_id;
  }
  g.raw["eos_token_id"] = g.eos_token_ids.size() == 1 ? nlohmann::json(g.eos_token_ids[0]) : nlohmann::json(g.eos_token_ids);
  return g;
}

namespace {

// Writes `target` through a temporary folder beside it (the weights in `dtype`, config, generation
// config, tokenizer files, scorer) and publishes it with `if_published`.
void write_model_dir(const fs::path& target, IfPublished if_published, const Transformer& master,
                     const GenerationDefaults& generation, at::ScalarType dtype, const fs::path& tokenizer_path,
                     const std::string& chat_template, int64_t max_shard_bytes, const AlignmentScorer& scorer) {
  const fs::path tmp = target.parent_path() / fmt::format(".{}.tmp-{}", target.filename().string(), ::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    c10::NoGradGuard no_grad;
    std::map<std::string, at::Tensor> weights;
    for (const auto& [name, t] : master.params) weights[name] = t.detach().to(dtype);
    Transformer exported = build_transformer(master.config, std::move(weights), "export");
    const Tokenizer tok = Tokenizer::load(tokenizer_path);
    save_model_dir(exported, export_generation(generation, master.config, tok, chat_template), tmp,
                   static_cast<uint64_t>(max_shard_bytes));
    if (scorer.defined()) save_alignment_scorer(scorer, tmp);
    write_tokenizer_files(tok, tokenizer_path, chat_template, tmp);
    publish_directory(tmp, target, if_published);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error(fmt::format("{}: export failed: {}", target.string(), e.what()));
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace

fs::path export_final(const fs::path& run_dir, const Transformer& master, const GenerationDefaults& generation,
                      at::ScalarType dtype, const fs::path& tokenizer_path, const std::string& chat_template,
                      int64_t max_shard_bytes, const AlignmentScorer& scorer) {
  const fs::path final_dir = run_dir / "final";
  write_model_dir(final_dir, IfPublished::kReplace, master, generation, dtype, tokenizer_path, chat_template,
                  max_shard_bytes, scorer);
  return final_dir;
}

fs::path export_step(const fs::path& run_dir, int64_t step, const Transformer& master,
                     const GenerationDefaults& generation, at::ScalarType dtype, const fs::path& tokenizer_path,
                     const std::string& chat_template, int64_t max_shard_bytes, const AlignmentScorer& scorer) {
  const fs::path dir = run_dir / "exports" / checkpoint_name(step);  // named as the checkpoint of the step
  std::error_code ec;
  fs::create_directories(dir.parent_path(), ec);
  if (ec) throw Error(fmt::format("{}: cannot create: {}", dir.parent_path().string(), ec.message()));
  write_model_dir(dir, IfPublished::kReplace, master, generation, dtype, tokenizer_path, chat_template,
                  max_shard_bytes, scorer);
  return dir;
}

fs::path export_checkpoint(const fs::path& checkpoint_dir, const fs::path& out_dir,
                           std::optional<at::ScalarType> dtype) {
  if (fs::exists(out_dir) && !(fs::is_directory(out_dir) && fs::is_empty(out_dir)))
    throw Error(fmt::format("{}: exists and is not an empty directory; choose another --out", out_dir.string()));
  // The checkpoint's weights with the run's model, tokenizer, template and export dtype, as the
  // config.yaml it saved names them (generate / score --model CHECKPOINT read it the same way).
  const CheckpointModel ckpt = load_checkpoint_model(checkpoint_dir);
  const TrainConfig& config = ckpt.run.config;
  const fs::path target = fs::absolute(out_dir).lexically_normal();
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) throw Error(fmt::format("{}: cannot create: {}", target.parent_path().string(), ec.message()));
  if (fs::is_directory(target)) fs::remove(target, ec);  // empty (checked above): published in its place
  write_model_dir(target, IfPublished::kFail, ckpt.master, ckpt.generation, dtype.value_or(ckpt.export_dtype),
                  ckpt.run.tokenizer_path, ckpt.run.chat_template, config.output.max_shard_bytes, ckpt.scorer);
  return target;
}

at::ScalarType export_dtype(const std::string& option, const ModelConfig& config) {
  if (option != "auto") return dtype_from_name(option);
  for (const char* key : {"torch_dtype", "dtype"})
    if (config.raw.contains(key) && config.raw[key].is_string()) return dtype_from_name(config.raw[key].get<std::string>());
  return at::kFloat;
}

}  // namespace mt
