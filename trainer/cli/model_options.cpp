// --model / --device / --dtype handling and input token checks shared by generate and score; --device
// as every command reads it.
#include <ATen/Context.h>
#include <fmt/format.h>

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
      {"model", true, "Hugging Face model directory (config.json + safetensors)", ""},
      device_option(),
      {"dtype", true, "auto (as stored), bf16, fp16 or fp32", "fp32 on cpu, bf16 on cuda"},
  };
}

LoadedModel load_model_from_args(const Args& args) {
  const c10::Device device = device_from_args(args);
  return load_model_dir(args.require("model"), device, dtype_from_args(args, device.is_cuda() ? "bf16" : "fp32"));
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
