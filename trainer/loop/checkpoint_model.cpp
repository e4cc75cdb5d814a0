// --model paths told apart, and checkpoints read as their export would be (see checkpoint_model.h).
#include "trainer/loop/checkpoint_model.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>

#include <map>

#include "models/error.h"
#include "models/tokenizer.h"
#include "trainer/engine/checkpoint.h"
#include "trainer/loop/export.h"
#include "trainer/loop/training_data.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

const char* kModelPathExpected =
    "expected a Hugging Face model directory (config.json + safetensors), a training checkpoint "
    "(RUN/checkpoints/step_NNNNNNN), a RUN/checkpoints/latest pointer or a run directory (final/ or checkpoints/)";

ModelPath checkpoint_named_by(const fs::path& pointer) {
  return {true, checkpoint_from_pointer(pointer), fmt::format("the checkpoint {} names", pointer.string())};
}

}  // namespace

ModelPath resolve_model_path(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(fmt::format("{}: does not exist ({})", path.string(), kModelPathExpected));
  if (!fs::is_directory(path, ec)) {
    if (path.filename() == "latest") return checkpoint_named_by(path);
    throw Error(fmt::format("{}: is a file, not a folder ({})", path.string(), kModelPathExpected));
  }
  if (fs::is_regular_file(path / "config.json", ec)) return {false, path, ""};
  if (is_checkpoint_dir(path)) return {true, path, ""};
  if (fs::is_regular_file(path / "latest", ec)) return checkpoint_named_by(path / "latest");
  if (fs::is_directory(path / "final", ec) || fs::is_directory(path / "checkpoints", ec)) {
    if (fs::is_regular_file(path / "final" / "config.json", ec)) return {false, path / "final", "the run's final/"};
    if (const auto latest = latest_checkpoint_dir(path))
      return {true, *latest, "the run's latest checkpoint (it has no final/ yet)"};
    throw Error(fmt::format("{}: a run directory with neither a final/ model nor a checkpoint in checkpoints/ ({})",
                            path.string(), kModelPathExpected));
  }
  throw Error(fmt::format("{}: neither a model directory nor a checkpoint: no config.json, trainer_state.json, "
                          "latest, final/ or checkpoints/ in it ({})",
                          path.string(), kModelPathExpected));
}

CheckpointRun read_checkpoint_run(const fs::path& checkpoint_dir) {
  const fs::path yaml = checkpoint_dir / "config.yaml";
  if (!fs::is_regular_file(yaml))
    throw Error(fmt::format("{}: missing config.yaml (not a complete checkpoint)", checkpoint_dir.string()));
  CheckpointRun run;
  run.dir = checkpoint_dir;
  run.config = load_train_config(yaml);
  run.model_path = run.config.model.path;
  run.tokenizer_path = run.config.model.tokenizer.empty() ? run.model_path : fs::path(run.config.model.tokenizer);
  run.chat_template = run_chat_template(run.config, run.tokenizer_path);
  return run;
}

CheckpointModel load_checkpoint_model(const fs::path& checkpoint_dir) {
  const LoadedCheckpoint ckpt = load_checkpoint(checkpoint_dir);  // validated first: a damaged one is named as such
  CheckpointModel out;
  out.run = read_checkpoint_run(ckpt.dir);
  const ModelConfig mc = load_hf_config(out.run.model_path / "config.json");
  const std::string source = (ckpt.dir / "model.safetensors").string();
  std::map<std::string, at::Tensor> weights, alignment;
  for (const auto& [name, t] : ckpt.weights) (name.rfind("alignment.", 0) == 0 ? alignment : weights)[name] = t;
  out.master = build_transformer(mc, std::move(weights), source);
  out.generation = load_generation_defaults(out.run.model_path, mc);  // as the run had them
  if (!alignment.empty())
    out.scorer = alignment_scorer_from_tensors(alignment, mc.hidden_size, out.run.config.alignment.pooling, source);
  out.export_dtype = export_dtype(out.run.config.output.export_dtype, mc);
  return out;
}

LoadedModel checkpoint_as_loaded_model(const CheckpointModel& ckpt, c10::Device device,
                                       std::optional<at::ScalarType> dtype) {
  c10::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> weights;
  // Rounded as the export stores them, then converted as loading the export would.
  for (const auto& [name, t] : ckpt.master.params)
    weights[name] = t.detach().to(ckpt.export_dtype).to(device, dtype.value_or(ckpt.export_dtype));
  LoadedModel out;
  out.dir = ckpt.run.model_path;
  out.model = build_transformer(ckpt.master.config, std::move(weights), (ckpt.run.dir / "model.safetensors").string());
  const Tokenizer tok = Tokenizer::load(ckpt.run.tokenizer_path);
  out.generation = export_generation(ckpt.generation, ckpt.master.config, tok, ckpt.run.chat_template);
  return out;
}

}  // namespace mt
