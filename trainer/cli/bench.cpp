// `maintune bench`: one JSON line of training-speed figures for a named shape (see trainer/loop/bench.h).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

#include "trainer/loop/bench.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/output.h"

namespace mt::cli {

int cmd_bench(int argc, char** argv) {
  const std::vector<OptionSpec> spec = {
      {"shape", true, fmt::format("{}", fmt::join(bench_shape_names(), ", ")), "llama3-1b"},
      {"batch", true, "rows per step", "8"},
      {"seq", true, "tokens per row", "2048"},
      {"steps", true, "timed steps", "10"},
      {"warmup", true, "untimed steps first", "2"},
      device_option(),
      {"precision", true, "mixed (fp32 master, bf16 compute), pure_bf16 or fp32", "mixed"},
      {"activation-checkpointing", false, "recompute each layer in the backward pass", ""},
      {"no-fused-adamw", false, "use the per-tensor AdamW instead of ATen's fused kernel", ""},
      {"loss-chunk-tokens", true, "tokens per chunk of the chunked linear + cross-entropy", "4096"},
      {"seed", true, "random weights and tokens", "0"},
  };
  const auto parsed = parse_command_line(
      argc, argv, spec, "usage: maintune bench [--shape NAME] [--batch B] [--seq S] [--steps N] [--device auto|cpu|cuda]");
  if (!parsed) return 0;
  const Args& args = *parsed;
  BenchOptions o;
  o.shape = args.get("shape", "llama3-1b");
  o.batch = args.get_int("batch", 8);
  o.seq = args.get_int("seq", 2048);
  o.steps = args.get_int("steps", 10);
  o.warmup = args.get_int("warmup", 2);
  const c10::Device device = device_from_args(args);
  // run_bench times cuda:0; CUDA_VISIBLE_DEVICES picks which GPU that is.
  if (device.is_cuda() && device.index() != 0)
    throw UsageError("--device: bench runs on cuda:0 (choose the GPU with CUDA_VISIBLE_DEVICES)");
  o.device = device.is_cuda() ? "cuda" : "cpu";
  if (!args.has("device") && !device.is_cuda())
    std::cerr << "maintune bench: no CUDA device; timing on the CPU\n";
  o.precision = args.get("precision", "mixed");
  o.activation_checkpointing = args.has("activation-checkpointing");
  o.fused_adamw = !args.has("no-fused-adamw");
  o.loss_chunk_tokens = args.get_int("loss-chunk-tokens", 4096);
  o.seed = static_cast<uint64_t>(args.get_int("seed", 0));
  out().write_line(run_bench(o).dump());
  return 0;
}

}  // namespace mt::cli
