// Run metrics: metrics.jsonl (one JSON object per optimizer step, eval lines with eval_loss; the
// key names are a stable interface), TensorBoard scalars beside it, and the measurements behind
// them: peak memory and model FLOPs utilization.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "models/hf_config.h"
#include "trainer/report/tensorboard.h"

namespace mt {

class MetricsWriter {
 public:
  // Opens RUN/metrics.jsonl for appending after truncating it to `resume_bytes` (lines written
  // after the checkpoint being resumed are dropped; -1 = start a new file), and, when
  // `tensorboard`, a new event file under RUN/tensorboard/.
  MetricsWriter(const std::filesystem::path& run_dir, int64_t resume_bytes, bool tensorboard);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Appends one line (flushed) with "time" added (Unix seconds, wall clock) and logs every other
  // numeric field to TensorBoard under "train/<key>" or, for keys starting with "eval_", "eval/<key>".
  void write(const nlohmann::json& record);
  int64_t bytes() const { return bytes_; }  // current length of metrics.jsonl

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  int64_t bytes_ = 0;
  std::unique_ptr<TensorBoardWriter> tb_;
};

// Training FLOPs per token (forward + backward): 6 * (parameters in matmuls, LM head included,
// embedding lookup excluded, a tied head counted) + 12 * layers * seq_len * heads * head_dim (QK^T
// and AV, not halved for the causal mask), the PaLM paper's appendix B convention that
// scripts/bench_peers.py uses too.
double training_flops_per_token(const ModelConfig& config, int64_t seq_len);

// Peak dense bf16 FLOP/s of the device (H100/H200: 989e12, A100: 312e12), or the value of
// MAINTUNE_PEAK_TFLOPS; nullopt when unknown (CPU).
std::optional<double> device_peak_flops(bool cuda);

// Peak memory: CUDA caching-allocator peak since the last reset on `cuda`, else the process's
// peak resident set size.
int64_t peak_memory_bytes(bool cuda);
void reset_peak_memory(bool cuda);

}  // namespace mt
