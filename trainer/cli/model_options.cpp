// --model (a model dir or a training checkpoint) / --device / --dtype handling and input token checks shared by generate and score; --device
// as every command reads it.
#include <ATen/Context.h>
#include <fmt/format.h>

#include <iostream>

#include "models/error.h"
#include "trainer/cli/commands.h"
#include "trainer/loop/device.h"

namespace mt::cli {

OptionSpec device_option() {
  return {"device", true, "auto (cuda when available, else cpu), cpu, cuda or cuda:N", "auto"};
}

c10::Device device_from_args(const Args& args) {
  const std::string name = args.get("device", "auto");
  if (name == "auto") return resolve_device("auto");  // model.device's auto, so the two always agree
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const c10::Error&) {
    throw UsageError(fmt::format("--device: unknown device '{}' (use auto, cpu or cuda)", name));
  }
  if (!device.is_cpu() && !device.is_cuda())
    throw UsageError(fmt::format("--device: unsupported device '{}' (use auto, cpu or cuda)", name));
  if (device.is_cuda() && !at::hasCUDA())
    throw Error(fmt::format("--device {}: no CUDA device is available on this machine", name));
  if (device.is_cuda() && !device.has_index()) device = c10::Device(c10::kCUDA, 0);
  if (device.is_cuda() && device.index() >= static_cast<int>(at::getNumGPUs()))
    throw Error(fmt::format("--device {}: this machine has {} CUDA device(s)", name, at::getNumGPUs()));
  return device;
}

std::vector<OptionSpec> model_options() {
  return {
      {"model", true,
       "Hugging Face model directory (config.json + safetensors), a training checkpoint "
       "(RUN/checkpoints/step_N, RUN/checkpoints/latest) or a run directory (its final/, else its latest checkpoint)",
       ""},
      device_option(),
      {"dtype", true, "auto (as stored), bf16, fp16 or fp32", "fp32 on cpu, bf16 on cuda"},
  };
}

ModelSource model_source_from_args(const Args& args) {
  const std::string given = args.require("model");
  ModelSource source;
  source.path = resolve_model_path(given);
  if (!source.path.is_checkpoint) {
    source.text.tokenizer = source.path.dir.string();
  } else {
    source.checkpoint = read_checkpoint_run(source.path.dir);
    source.text.tokenizer = source.checkpoint->tokenizer_path.string();
    source.text.chat_template = source.checkpoint->chat_template;
  }
  if (!source.path.resolved.empty())
    std::cerr << fmt::format("maintune: --model {} is {}: {}\n", given, source.path.resolved, source.path.dir.string());
  else if (source.path.is_checkpoint)
    std::cerr << fmt::format("maintune: --model {} is a training checkpoint, run as its export would be\n", given);
  return source;
}

CommandModel load_model_from_args(const Args& args, const ModelSource& source, bool with_scorer) {
  const c10::Device device = device_from_args(args);
  const auto dtype = dtype_from_args(args, device.is_cuda() ? "bf16" : "fp32");
  CommandModel out;
  if (!source.path.is_checkpoint) {
    out.loaded = load_model_dir(source.path.dir, device, dtype);
    if (with_scorer) out.scorer = load_alignment_scorer(source.path.dir, out.loaded.model.config.hidden_size, device);
    return out;
  }
  const CheckpointModel ckpt = load_checkpoint_model(source.path.dir);
  out.loaded = checkpoint_as_loaded_model(ckpt, device, dtype);
  if (with_scorer && ckpt.scorer.defined()) out.scorer = alignment_scorer_on(ckpt.scorer, device);
  return out;
}

std::optional<at::ScalarType> dtype_from_args(const Args& args, const std::string& default_name) {
  try {
    return parse_dtype_option(args.get("dtype", default_name));
  } catch (const Error& e) {
    throw UsageError(fmt::format("--dtype: {}", e.what()));
  }
}

void check_token_ids(const std::vector<int64_t>& ids, const ModelConfig& config, const std::string& where,
                     const char* field) {
  if (ids.empty()) throw Error(fmt::format("{}: '{}' is empty", where, field));
  for (int64_t id : ids)
    if (id < 0 || id >= config.vocab_size)
      throw Error(fmt::format("{}: '{}' token id {} is outside the vocabulary [0, {})", where, field, id,
                              config.vocab_size));
}

}  // namespace mt::cli
