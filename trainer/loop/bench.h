// `maintune bench`: training steps on a named model shape with random weights and random tokens,
// timing tokens/s, MFU and peak memory with the same step the trainer runs (fp32 master weights
// and bf16 compute by default, AdamW, clipping). scripts/bench_peers.py runs the same shapes in
// HF transformers for the side-by-side comparison.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "models/hf_config.h"

namespace mt {

// "tiny", "llama3-1b", "llama3-3b", "llama3-8b"; throws mt::Error listing them otherwise.
ModelConfig bench_shape(const std::string& name);
std::vector<std::string> bench_shape_names();

struct BenchOptions {
  std::string shape = "tiny";
  int64_t batch = 8, seq = 2048, steps = 10, warmup = 2;
  std::string device = "cuda";     // "cuda" | "cpu"
  std::string precision = "mixed";  // "mixed" (fp32 master, bf16 compute) | "pure_bf16" | "fp32"
  bool activation_checkpointing = false;
  bool fused_adamw = true;
  int64_t loss_chunk_tokens = 4096;
  uint64_t seed = 0;
};

// Runs warmup + timed steps and returns one JSON object: engine, shape, batch, seq, steps,
// precision, tokens_per_s, step_ms, peak_mem_bytes, mfu (null when the device peak is unknown),
// flops_per_token, device, loss_first, loss_last.
nlohmann::json run_bench(const BenchOptions& options);

}  // namespace mt
