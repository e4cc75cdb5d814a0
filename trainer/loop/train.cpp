// The training loop (see train.h). One readable function from setup to export; the pieces it
// calls (data, model, optimizer, checkpoints, metrics) live in their own files.
#include "trainer/loop/train.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>

#include "models/atomic_file.h"
#include "models/checkpoint_dir.h"
#include "models/error.h"
#include "models/tokenizer.h"
#include "trainer/engine/alignment.h"
#include "trainer/engine/checkpoint.h"
#include "trainer/data/data_loader.h"
#include "trainer/base/fault_injection.h"
#include "trainer/dist/distributed.h"
#include "trainer/engine/lr_schedule.h"
#include "trainer/report/metrics.h"
#include "trainer/engine/mixed_precision.h"
#include "trainer/engine/optimizer.h"
#include "trainer/report/progress.h"
#include "trainer/data/token_cache.h"
#include "trainer/engine/train_step.h"
#include "trainer/loop/evaluation.h"
#include "trainer/loop/export.h"
#include "trainer/loop/optimizer_setup.h"
#include "trainer/loop/run_dir.h"
#include "trainer/loop/stop_signals.h"
#include "trainer/loop/trained_weights.h"
#include "trainer/loop/training_data.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TrainOutcome run_training(const TrainConfig& config, const std::string& resume) {
  check_train_config_complete(config);
  const DistEnv dist = dist_env_from_environment();
  const bool main_rank = dist.is_main();
  const fs::path run_dir = config.output.run_dir;
  const TrainingSection& tc = config.training;
  Progress progress(main_rank ? config.logging.progress : "none", 1, config.logging.log_every);
  const LogFn log = [&](const std::string& m) { progress.message(m); };
  load_nan_steps_from_env();

  // --- the run directory and what to resume from ----------------------------------------------
  const std::optional<LoadedCheckpoint> ckpt = open_run_dir(config, resume, main_rank, log);

  // --- model and alignment scorer -----------------------------------------------------------------
  TrainedWeights model = load_trained_weights(config, ckpt);
  const at::Device device = model.device;
  const bool cuda = device.is_cuda();
  Transformer& master = model.master;
  AlignmentScorer& scorer = model.scorer;
  const ModelConfig& mc = master.config;
  const AlignmentSection& al = config.alignment;
  const fs::path model_path = config.model.path;

  // --- data ---------------------------------------------------------------------------------------
  const TrainingData data = load_training_data(config, mc, dist, log);
  DataLoader loader = open_train_loader(data, ckpt);
  const int64_t micro_per_epoch = loader.steps_per_epoch();
  const DatasetView& train_view = data.train_view;
  const DatasetView& eval_view = data.eval_view;
  const bool has_eval = data.has_eval;
  const LoaderOptions& lo = data.loader_options;

  // --- schedule and optimizer ---------------------------------------------------------------------
  const LrSchedule schedule = run_schedule(config, micro_per_epoch, ckpt);
  const std::vector<std::pair<std::string, at::Tensor>> trained = trained_tensors(master, scorer);
  AdamW optimizer = make_optimizer(config.optimizer, trained);
  TrainerState state = start_state(schedule, optimizer, ckpt, device);
  std::vector<at::Tensor> params;
  for (const auto& [name, t] : trained) params.push_back(t);
  StepOptions so;
  so.compute_dtype = model.compute_dtype;
  so.activation_checkpointing = config.model.activation_checkpointing;
  so.loss_chunk_tokens = tc.loss_chunk_tokens;

  // --- outputs ------------------------------------------------------------------------------------
  const std::string config_yaml = train_config_to_yaml(config);
  std::unique_ptr<MetricsWriter> metrics;
  if (main_rank) {
    write_run_config(run_dir, config_yaml);
    metrics = std::make_unique<MetricsWriter>(run_dir, ckpt ? ckpt->state.metrics_bytes : -1, config.logging.tensorboard);
  }
  const double flops_per_token = training_flops_per_token(mc, config.data.max_len);
  const std::optional<double> peak_flops = device_peak_flops(cuda);
  int64_t n_params = 0;
  for (const auto& t : params) n_params += t.numel();
  log(fmt::format("model {} ({} parameters, {} layers) on {}, compute {}{}{}", model_path.string(), format_si(n_params),
                  mc.num_layers, device.str(), config.model.dtype, config.model.pure_bf16 ? " (pure bf16)" : ", fp32 master weights",
                  so.activation_checkpointing ? ", activation checkpointing" : ""));
  if (tc.synthetic_weight >= 0) {
    const auto synthetic_sources = std::count_if(config.data.sources.begin(), config.data.sources.end(),
                                                 [](const DataSourceConfig& s) { return s.synthetic; });
    log(fmt::format("loss: {} * synthetic mean + {} * real mean per window ({} of {} sources synthetic){}",
                    tc.synthetic_weight, 1.0 - tc.synthetic_weight, synthetic_sources, config.data.sources.size(),
                    synthetic_sources == 0 ? "; no source is marked synthetic, so every window is the plain mean"
                                           : ""));
  }
  if (scorer.defined())
    log(fmt::format("alignment scorer ({}): L = L_sft + {} * L_infonce + {} * L_consistency (signal {}), {} pooling, "
                    "dim {}, temperature {:.4g}{}",
                    model.scorer_origin, al.lambda_align, al.lambda_cons, al.signal, al.pooling, al.dim,
                    std::exp(-scorer.logit_scale.item<double>()), al.learn_temperature ? " (learned)" : " (fixed)"));
  log(fmt::format("data: {} training examples ({} tokens){}; {} micro-batches of {} per epoch, {} per step; {} steps",
                  train_view.num_examples, format_si(static_cast<double>(train_view.num_tokens())),
                  has_eval ? fmt::format(", {} eval examples", eval_view.num_examples) : "", micro_per_epoch,
                  tc.micro_batch_size, tc.grad_accum_steps, schedule.total_steps));

  // --- the loop -------------------------------------------------------------------------------------
  StopSignals signals;
  progress = Progress(main_rank ? config.logging.progress : "none", schedule.total_steps, config.logging.log_every);
  TrainOutcome outcome;
  outcome.total_steps = schedule.total_steps;
  reset_peak_memory(cuda);
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t first_step = state.step;
  int64_t last_checkpoint_step = ckpt ? state.step : -1, last_eval_step = -1;
  // A finished run's final checkpoint was saved after its final evaluation: do not repeat it.
  if (ckpt && state.step >= schedule.total_steps) last_eval_step = state.step;
  auto save = [&]() {
    if (!main_rank || last_checkpoint_step == state.step) return;
    state.data_cursor = loader.state();
    state.metrics_bytes = metrics->bytes();
    const fs::path dir = save_checkpoint(run_dir, state, master, optimizer, config_yaml, config.output.keep_last,
                                         scorer.defined() ? scorer.named_tensors()
                                                          : std::vector<std::pair<std::string, at::Tensor>>{});
    last_checkpoint_step = state.step;
    log(fmt::format("checkpoint saved: {}", dir.string()));
    fault_point("train.checkpoint");
  };
  auto run_eval = [&]() {
    if (!has_eval || last_eval_step == state.step) return;
    const EvalResult r = evaluate(master, eval_view, lo, tc.eval_max_batches, so, dist,
                                  scorer.defined() ? &scorer : nullptr);
    last_eval_step = state.step;
    if (main_rank) {
      nlohmann::json record = {{"step", state.step}, {"eval_loss", r.loss}, {"eval_ppl", std::exp(r.loss)},
                               {"eval_tokens", r.tokens}};
      if (scorer.defined()) {
        record["eval_align_acc"] = r.align_acc;
        record["eval_score_gap"] = r.score_gap;
      }
      metrics->write(record);
    }
    log(fmt::format("eval at step {}: loss {:.4f}, perplexity {:.3f} ({} tokens)", state.step, r.loss,
                    std::exp(r.loss), r.tokens));
  };

  // The MAIN method's source-weighted loss (training.synthetic_weight >= 0), else the token mean.
  const bool source_weighted = tc.synthetic_weight >= 0;
  while (state.step < schedule.total_steps) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<PackedBatch> window;
    int64_t local_targets = 0, local_synthetic = 0;
    for (int64_t i = 0; i < tc.grad_accum_steps; ++i) {
      window.push_back(loader.next());
      local_targets += window.back().target_tokens;
      local_synthetic += window.back().synthetic_target_tokens;
    }
    at::Tensor counts = at::tensor({static_cast<double>(local_targets), static_cast<double>(local_synthetic)}, at::kDouble);
    all_reduce_sum(dist, counts);
    const auto global_targets = static_cast<int64_t>(counts[0].item<double>());
    const auto global_synthetic = static_cast<int64_t>(counts[1].item<double>());
    const int64_t global_real = global_targets - global_synthetic;
    SourceWeights weights;
    if (source_weighted) {
      weights.alpha = tc.synthetic_weight;
      weights.real_target_tokens = global_real;
      weights.synthetic_target_tokens = global_synthetic;
    }
    for (const at::Tensor& p : params) p.mutable_grad().reset();
    AlignmentTerms terms;
    if (scorer.defined()) {
      terms.scorer = &scorer;
      terms.lambda_align = al.lambda_align;
      terms.lambda_cons = al.lambda_cons;
      terms.signal = al.signal;
    }
    const WindowResult r = forward_backward(master, window, global_targets, so, weights, terms);
    at::Tensor sums = at::tensor({r.loss_sum, static_cast<double>(r.valid_tokens), r.loss_sum_real, r.loss_sum_synthetic},
                                 at::kDouble);
    all_reduce_sum(dist, sums);
    double loss = global_targets > 0 ? sums[0].item<double>() / static_cast<double>(global_targets) : std::nan("");
    // Window means by kind (NaN, written as null, for a kind with no target in the window).
    const double loss_real = global_real > 0 ? sums[2].item<double>() / static_cast<double>(global_real) : std::nan("");
    const double loss_synthetic =
        global_synthetic > 0 ? sums[3].item<double>() / static_cast<double>(global_synthetic) : std::nan("");
    if (source_weighted && global_targets > 0) {
      // The loss that was backpropagated, with the same factors.
      const SourceScales scales = source_loss_scales(weights);
      loss = scales.real * sums[2].item<double>() + scales.synthetic * sums[3].item<double>();
    }
    const auto step_tokens = static_cast<int64_t>(sums[1].item<double>());
    // The alignment terms' window means over pairs (NaN when no micro-batch had two pairs).
    at::Tensor align_sums = at::tensor({static_cast<double>(r.align_pairs), r.infonce_sum, r.consistency_sum,
                                        r.retrieval_hits, r.score_gap_sum}, at::kDouble);
    all_reduce_sum(dist, align_sums);
    const double align_pairs = align_sums[0].item<double>();
    auto pair_mean = [&](int i) { return align_pairs > 0 ? align_sums[i].item<double>() / align_pairs : std::nan(""); };
    const double loss_align = pair_mean(1), loss_cons = pair_mean(2);
    double loss_total = loss;
    if (scorer.defined() && align_pairs > 0)
      loss_total += al.lambda_align * loss_align + (al.lambda_cons > 0 ? al.lambda_cons * loss_cons : 0.0);
    if (nan_injected(state.step + 1)) loss = std::nan("");
    const double grad_norm = clip_grad_norm(params, tc.max_grad_norm);
    const double lr = lr_at(schedule, state.step);
    const bool finite = std::isfinite(loss) && std::isfinite(loss_total) && std::isfinite(grad_norm);
    if (finite) {
      optimizer.step(lr);
      state.consecutive_nonfinite = 0;
    } else {
      ++state.skipped_steps;
      ++state.consecutive_nonfinite;
      log(fmt::format("step {}: non-finite {} ({}); update skipped ({} in a row, {} in total)", state.step + 1,
                      std::isfinite(loss) ? "gradient norm" : "loss", std::isfinite(loss) ? grad_norm : loss,
                      state.consecutive_nonfinite, state.skipped_steps));
    }
    ++state.step;
    state.tokens_seen += step_tokens;
    state.target_tokens_seen += global_targets;
    const double dt = seconds_since(t0);
    const double tokens_per_s = static_cast<double>(step_tokens) / std::max(dt, 1e-9);
    nlohmann::json mfu = peak_flops ? nlohmann::json(flops_per_token * tokens_per_s / *peak_flops) : nlohmann::json();
    if (main_rank) {
      nlohmann::json record = {{"step", state.step},
                               {"loss", loss},
                               {"lr", lr},
                               {"grad_norm", grad_norm},
                               {"tokens_per_s", tokens_per_s},
                               {"mfu", mfu},
                               {"peak_mem_bytes", peak_memory_bytes(cuda)},
                               {"skipped_steps", state.skipped_steps},
                               {"tokens", state.tokens_seen},
                               {"epoch", loader.cursor().epoch},
                               {"step_time_s", dt}};
      if (source_weighted) {
        record["loss_real"] = loss_real;
        record["loss_synthetic"] = loss_synthetic;
      }
      if (scorer.defined()) {
        record["loss_total"] = loss_total;
        record["loss_align"] = loss_align;
        record["loss_cons"] = al.lambda_cons > 0 ? loss_cons : std::nan("");
        record["align_acc"] = pair_mean(3);
        record["align_score_gap"] = pair_mean(4);
        record["align_temperature"] = 1.0 / inverse_temperature(scorer.logit_scale).item<double>();
      }
      metrics->write(record);
    }
    outcome.last_loss = loss;
    ProgressStats ps;
    ps.step = state.step;
    ps.loss = loss;
    ps.lr = lr;
    ps.grad_norm = grad_norm;
    ps.tokens_per_s = tokens_per_s;
    ps.elapsed_s = seconds_since(run_start);
    ps.steps_this_run = state.step - first_step;
    progress.update(ps);
    if (state.consecutive_nonfinite >= tc.max_consecutive_nonfinite) {
      progress.finish();
      throw Error(fmt::format("stopping at step {}: {} steps in a row had a non-finite loss or gradient "
                              "(training.max_consecutive_nonfinite = {}); the last good checkpoint is kept. Lower "
                              "optimizer.lr, check the data, or raise the limit",
                              state.step, state.consecutive_nonfinite, tc.max_consecutive_nonfinite));
    }
    if (tc.eval_every > 0 && state.step % tc.eval_every == 0) run_eval();
    if (tc.checkpoint_every > 0 && state.step % tc.checkpoint_every == 0) save();
    if (const int sig = stop_signal_received(); sig != 0) {
      save();
      progress.finish();
      log(fmt::format("stopped by {} after step {} of {}; resume with --resume auto", sig == SIGINT ? "SIGINT" : "SIGTERM",
                      state.step, schedule.total_steps));
      outcome.step = state.step;
      outcome.steps_this_run = state.step - first_step;
      outcome.interrupted = true;
      return outcome;
    }
  }
  run_eval();
  save();
  progress.finish();
  outcome.step = state.step;
  outcome.steps_this_run = state.step - first_step;
  if (main_rank && config.output.export_final) {
    outcome.final_dir = export_final(run_dir, master, model.generation, export_dtype(config.output.export_dtype, mc),
                                     data.tokenizer_path, config.output.max_shard_bytes, scorer);
    log(fmt::format("exported {}", outcome.final_dir.string()));
  }
  return outcome;
}

}  // namespace mt
