// The model and alignment scorer a training run starts from (see trained_weights.h).
#include "trainer/loop/trained_weights.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <map>

#include "models/error.h"
#include "models/hf_config.h"
#include "trainer/engine/mixed_precision.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

// w.master (and w.generation): the model directory's weights or a random init, replaced by the
// checkpoint's when resuming. Returns the checkpoint's scorer tensors ("alignment.*"), on the device.
std::map<std::string, at::Tensor> load_master(const TrainConfig& config, const std::optional<LoadedCheckpoint>& ckpt,
                                              at::ScalarType master_dtype, TrainedWeights& w) {
  const TrainingSection& tc = config.training;
  const at::Device device = w.device;
  Transformer& master = w.master;
  const fs::path model_path = config.model.path;
  if (config.model.init == "random") {
    master = init_transformer(load_hf_config(model_path / "config.json"), static_cast<uint64_t>(tc.seed),
                              at::TensorOptions().dtype(master_dtype).device(device));
    w.generation = load_generation_defaults(model_path, master.config);
  } else {
    LoadedModel loaded = load_model_dir(model_path, device, master_dtype);
    master = std::move(loaded.model);
    w.generation = std::move(loaded.generation);
  }
  std::map<std::string, at::Tensor> ckpt_alignment;  // the scorer's tensors of the checkpoint
  if (ckpt) {
    std::map<std::string, at::Tensor> weights;
    for (const auto& [name, t] : ckpt->weights) {
      if (name.rfind("alignment.", 0) == 0) ckpt_alignment[name] = t.to(device);
      else weights[name] = t.to(device, master_dtype);
    }
    master = build_transformer(master.config, std::move(weights), (ckpt->dir / "model.safetensors").string());
  }
  make_trainable(master);
  return ckpt_alignment;
}

// w.scorer (alignment.lambda_align / lambda_cons > 0): the checkpoint's, the model directory's
// (checked against the alignment settings), or a new one; trainable.
void load_scorer(const TrainConfig& config, const std::optional<LoadedCheckpoint>& ckpt,
                 const std::map<std::string, at::Tensor>& ckpt_alignment, TrainedWeights& w) {
  const TrainingSection& tc = config.training;
  const AlignmentSection& al = config.alignment;
  const ModelConfig& mc = w.master.config;
  const at::Device device = w.device;
  const fs::path model_path = config.model.path;
  AlignmentScorer& scorer = w.scorer;
  if (config.data.train_on_prompt)
    throw Error("alignment: data.train_on_prompt leaves no instruction to encode apart from its response; turn "
                "one of them off");
  if (config.data.packing == "none" && tc.micro_batch_size < 2)
    throw Error("alignment: in-batch negatives need at least 2 pairs per micro-batch; raise "
                "training.micro_batch_size or pack rows (data.packing)");
  const std::optional<AlignmentScorer> from_model =
      config.model.init == "pretrained" && !ckpt ? load_alignment_scorer(model_path, mc.hidden_size, device)
                                                 : std::nullopt;
  if (ckpt) {
    scorer = alignment_scorer_from_tensors(ckpt_alignment, mc.hidden_size, al.pooling,
                                           (ckpt->dir / "model.safetensors").string());
    w.scorer_origin = "from the checkpoint";
  } else if (from_model) {
    scorer = *from_model;
    w.scorer_origin = fmt::format("from {}", (model_path / kAlignmentScorerFile).string());
    if (scorer.pooling != al.pooling)
      throw Error(fmt::format("{}: the scorer pools by '{}' but alignment.pooling is '{}'",
                              (model_path / kAlignmentScorerFile).string(), scorer.pooling, al.pooling));
    if (scorer.instruction_proj.size(0) != al.dim)
      throw Error(fmt::format("{}: the scorer's dimension is {} but alignment.dim is {}",
                              (model_path / kAlignmentScorerFile).string(), scorer.instruction_proj.size(0), al.dim));
    if (!al.learn_temperature) scorer.logit_scale.fill_(std::log(1.0 / al.temperature));
  } else {
    scorer = init_alignment_scorer(mc.hidden_size, al.dim, al.temperature, al.pooling,
                                   static_cast<uint64_t>(tc.seed), at::TensorOptions().device(device));
    w.scorer_origin = "new";
  }
  scorer.instruction_proj.requires_grad_(true);
  scorer.response_proj.requires_grad_(true);
  scorer.logit_scale.requires_grad_(al.learn_temperature);
}

}  // namespace

TrainedWeights load_trained_weights(const TrainConfig& config, const std::optional<LoadedCheckpoint>& ckpt,
                                    at::Device device) {
  TrainedWeights w;
  w.device = device;
  w.compute_dtype = dtype_from_name(config.model.dtype);
  const at::ScalarType master_dtype = config.model.pure_bf16 ? at::kBFloat16 : at::kFloat;
  if (config.model.pure_bf16 && w.compute_dtype != at::kBFloat16)
    throw Error("model.pure_bf16 needs model.dtype: bfloat16");
  at::manual_seed(static_cast<uint64_t>(config.training.seed));
  const std::map<std::string, at::Tensor> ckpt_alignment = load_master(config, ckpt, master_dtype, w);
  const AlignmentSection& al = config.alignment;
  const bool alignment_on = al.lambda_align > 0 || al.lambda_cons > 0;
  if (alignment_on) load_scorer(config, ckpt, ckpt_alignment, w);
  return w;
}

}  // namespace mt
