// The training-speed benchmark (see bench.h): named shapes, random init on the device, timed steps.
#include "trainer/loop/bench.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>

#include "models/error.h"
#include "models/transformer.h"
#include "trainer/base/clock.h"
#include "trainer/report/metrics.h"
#include "trainer/engine/mixed_precision.h"
#include "trainer/engine/optimizer.h"
#include "trainer/engine/train_step.h"

namespace mt {

std::vector<std::string> bench_shape_names() { return {"tiny", "llama3-1b", "llama3-3b", "llama3-8b"}; }

ModelConfig bench_shape(const std::string& name) {
  // hidden, layers, heads, kv heads, ffn, vocab, tied
  struct Shape { int64_t hidden, layers, heads, kv, ffn, vocab; bool tied; };
  Shape s{};
  if (name == "tiny") s = {64, 2, 4, 2, 128, 1000, false};
  else if (name == "llama3-1b") s = {2048, 16, 32, 8, 8192, 128256, true};
  else if (name == "llama3-3b") s = {3072, 28, 24, 8, 8192, 128256, true};
  else if (name == "llama3-8b") s = {4096, 32, 32, 8, 14336, 128256, false};
  else throw Error(fmt::format("unknown bench shape '{}' (known: {})", name, fmt::join(bench_shape_names(), ", ")));
  const nlohmann::json j = {{"model_type", "llama"},
                            {"hidden_size", s.hidden},
                            {"num_hidden_layers", s.layers},
                            {"num_attention_heads", s.heads},
                            {"num_key_value_heads", s.kv},
                            {"intermediate_size", s.ffn},
                            {"vocab_size", s.vocab},
                            {"tie_word_embeddings", s.tied},
                            {"rms_norm_eps", 1e-5},
                            {"rope_theta", 500000.0},
                            {"max_position_embeddings", 131072},
                            {"bos_token_id", 128000},
                            {"eos_token_id", 128001},
                            {"torch_dtype", "bfloat16"}};
  return parse_hf_config(j, "bench shape " + name);
}

nlohmann::json run_bench(const BenchOptions& o) {
  const ModelConfig config = bench_shape(o.shape);
  const bool cuda = o.device == "cuda";
  if (cuda && !at::hasCUDA()) throw Error("bench: --device cuda but no CUDA device is available");
  if (o.device != "cuda" && o.device != "cpu") throw Error(fmt::format("bench: unknown device '{}'", o.device));
  if (o.precision != "mixed" && o.precision != "pure_bf16" && o.precision != "fp32")
    throw Error(fmt::format("bench: unknown precision '{}' (mixed, pure_bf16, fp32)", o.precision));
  if (o.batch < 1 || o.seq < 2 || o.steps < 1 || o.warmup < 0) throw Error("bench: batch >= 1, seq >= 2, steps >= 1");
  const at::Device device = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  const at::ScalarType master_dtype = o.precision == "pure_bf16" ? at::kBFloat16 : at::kFloat;
  StepOptions so;
  so.compute_dtype = o.precision == "fp32" ? at::kFloat : at::kBFloat16;
  so.activation_checkpointing = o.activation_checkpointing;
  so.loss_chunk_tokens = o.loss_chunk_tokens;
  so.plain_causal = true;

  // Random weights made on the device (a CPU init of an 8B model would dominate the run).
  at::manual_seed(o.seed);
  std::map<std::string, at::Tensor> w;
  for (const auto& [name, shape] : expected_param_shapes(config)) {
    const auto opts = at::TensorOptions().dtype(master_dtype).device(device);
    w[name] = name.find("norm.weight") != std::string::npos ? at::ones(shape, opts)
                                                             : at::empty(shape, opts).normal_(0.0, 0.02);
  }
  Transformer master = build_transformer(config, std::move(w), "bench");
  make_trainable(master);
  const std::vector<at::Tensor> params = parameter_tensors(master);
  AdamWOptions ao;
  ao.fused = o.fused_adamw;
  AdamW optimizer(master.params, ao);

  // One fixed batch of random tokens: every row a full document at positions 0..S-1.
  PackedBatch batch;
  batch.input_ids = at::randint(config.vocab_size, {o.batch, o.seq}, at::kLong);
  batch.positions = at::arange(o.seq, at::kLong).unsqueeze(0).expand({o.batch, o.seq}).contiguous();
  batch.valid = at::ones({o.batch, o.seq}, at::kBool);
  batch.doc_ids = at::zeros({o.batch, o.seq}, at::kLong);
  batch.targets = at::full({o.batch, o.seq}, kIgnoreIndex, at::kLong);
  batch.targets.narrow(1, 0, o.seq - 1).copy_(batch.input_ids.narrow(1, 1, o.seq - 1));
  batch.target_tokens = o.batch * (o.seq - 1);
  batch.input_ids = batch.input_ids.to(device);
  batch.positions = batch.positions.to(device);
  batch.targets = batch.targets.to(device);

  reset_peak_memory(cuda);
  double loss_first = 0, loss_last = 0;
  auto one_step = [&]() {
    for (const at::Tensor& p : params) p.mutable_grad().reset();
    const WindowResult r = forward_backward(master, {batch}, batch.target_tokens, so);
    clip_grad_norm(params, 1.0);
    optimizer.step(1e-5);
    return r.loss_sum / static_cast<double>(batch.target_tokens);
  };
  for (int64_t i = 0; i < o.warmup; ++i) loss_first = one_step();
  (void)params[0].sum().item<double>();  // drain the queue before timing
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.steps; ++i) {
    loss_last = one_step();
    if (o.warmup == 0 && i == 0) loss_first = loss_last;
  }
  (void)params[0].sum().item<double>();
  const double seconds = seconds_since(t0);
  const double tokens_per_s = static_cast<double>(o.batch * o.seq * o.steps) / seconds;
  const double fpt = training_flops_per_token(config, o.seq);
  const std::optional<double> peak = device_peak_flops(cuda);
  return {{"engine", "maintune"},
          {"shape", o.shape},
          {"batch", o.batch},
          {"seq", o.seq},
          {"steps", o.steps},
          {"warmup", o.warmup},
          {"precision", o.precision},
          {"activation_checkpointing", o.activation_checkpointing},
          {"tokens_per_s", tokens_per_s},
          {"step_ms", 1000.0 * seconds / static_cast<double>(o.steps)},
          {"peak_mem_bytes", peak_memory_bytes(cuda)},
          {"peak_mem_kind", cuda ? "cuda_allocated" : "rss"},
          {"mfu", peak ? nlohmann::json(fpt * tokens_per_s / *peak) : nlohmann::json()},
          {"flops_per_token", fpt},
          {"device", device.str()},
          {"loss_first", loss_first},
          {"loss_last", loss_last}};
}

}  // namespace mt
