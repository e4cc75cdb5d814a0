// The training loop (see train.h). run_training reads top to bottom as the steps of a run: the run
// directory and resume decision, the weights, the data, the optimizer and schedule, the outputs,
// the step loop and the export. Each setup step lives in the file named for it; the loop is here.
#include "trainer/loop/train.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <memory>
#include <optional>

#include "models/error.h"
#include "trainer/base/clock.h"
#include "trainer/base/fault_injection.h"
#include "trainer/data/data_loader.h"
#include "trainer/dist/distributed.h"
#include "trainer/dist/process_group.h"
#include "trainer/engine/alignment.h"
#include "trainer/engine/checkpoint.h"
#include "trainer/engine/lr_schedule.h"
#include "trainer/engine/optimizer.h"
#include "trainer/engine/train_step.h"
#include "trainer/loop/data_parallel.h"
#include "trainer/loop/device.h"
#include "trainer/loop/evaluation.h"
#include "trainer/loop/export.h"
#include "trainer/loop/optimizer_setup.h"
#include "trainer/loop/run_dir.h"
#include "trainer/loop/run_log.h"
#include "trainer/loop/stop_signals.h"
#include "trainer/loop/trained_weights.h"
#include "trainer/loop/training_data.h"
#include "trainer/report/metrics.h"
#include "trainer/report/progress.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

StepOptions step_options(const TrainConfig& config, at::ScalarType compute_dtype) {
  StepOptions so;
  so.compute_dtype = compute_dtype;
  so.activation_checkpointing = config.model.activation_checkpointing;
  so.loss_chunk_tokens = config.training.loss_chunk_tokens;
  return so;
}

// What a run logs before its first step: the model, the loss, the alignment scorer and the data.
void log_run_start(const TrainConfig& config, const TrainedWeights& model, const TrainingData& data,
                   const std::vector<at::Tensor>& params, int64_t micro_per_epoch, const LrSchedule& schedule,
                   const StepOptions& so, const LogFn& log) {
  const TrainingSection& tc = config.training;
  const AlignmentSection& al = config.alignment;
  const ModelConfig& mc = model.master.config;
  const AlignmentScorer& scorer = model.scorer;
  const fs::path model_path = config.model.path;
  int64_t n_params = 0;
  for (const auto& t : params) n_params += t.numel();
  log(fmt::format("model {} ({} parameters, {} layers) on {}, compute {}{}{}", model_path.string(), format_si(n_params),
                  mc.num_layers, model.device.str(), config.model.dtype,
                  config.model.pure_bf16 ? " (pure bf16)" : ", fp32 master weights",
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
                  data.train_view.num_examples, format_si(static_cast<double>(data.train_view.num_tokens())),
                  data.has_eval ? fmt::format(", {} eval examples", data.eval_view.num_examples) : "", micro_per_epoch,
                  tc.micro_batch_size, tc.grad_accum_steps, schedule.total_steps));
}

// What the step loop reads and updates: the run's pieces, set up by run_training, and the loop's
// own bookkeeping, set by run_steps.
struct StepLoop {
  const TrainConfig& config;
  const DistEnv& dist;
  const LogFn& log;
  Progress& progress;
  TrainedWeights& model;
  const TrainingData& data;
  DataLoader& loader;
  AdamW& optimizer;
  const std::vector<at::Tensor>& params;  // what the optimizer updates
  const LrSchedule& schedule;
  const StepOptions& so;
  TrainerState& state;
  MetricsWriter* metrics;          // rank 0 only
  const std::string& config_yaml;  // stored in every checkpoint
  bool resumed;
  GradientSync* grad_sync;  // DDP's gradient all-reduce; null with one process
  RunLog& run_log;          // RUN/train.log (rank 0: open; other ranks: never opened, nothing kept)
  // The steps last saved and evaluated (-1: none), so that no step is saved or evaluated twice.
  int64_t last_checkpoint_step = -1, last_eval_step = -1;
  int64_t first_step = 0;  // of this process
  std::chrono::steady_clock::time_point run_start{};
  double flops_per_token = 0;
  std::optional<double> peak_flops{};
};

// A checkpoint of the current step (rank 0), unless it already has one.
void save_step(StepLoop& run) {
  TrainerState& state = run.state;
  if (!run.dist.is_main() || run.last_checkpoint_step == state.step) return;
  const AlignmentScorer& scorer = run.model.scorer;
  state.data_cursor = run.loader.state();
  state.metrics_bytes = run.metrics->bytes();
  const fs::path dir = save_checkpoint(run.config.output.run_dir, state, run.model.master, run.optimizer, run.config_yaml,
                                       run.config.output.keep_last,
                                       scorer.defined() ? scorer.named_tensors()
                                                        : std::vector<std::pair<std::string, at::Tensor>>{});
  run.last_checkpoint_step = state.step;
  run.log(fmt::format("checkpoint saved: {}", dir.string()));
  fault_point("train.checkpoint");
}

// output.export_every: the current step as RUN/exports/step_N (rank 0), except the last step when
// final/ will hold it.
void export_every_step(StepLoop& run) {
  const OutputSection& oc = run.config.output;
  const int64_t step = run.state.step;
  if (!run.dist.is_main() || oc.export_every <= 0 || step % oc.export_every != 0) return;
  if (oc.export_final && step == run.schedule.total_steps) return;
  const ModelConfig& mc = run.model.master.config;
  const fs::path dir = export_step(oc.run_dir, step, run.model.master, run.model.generation,
                                   export_dtype(oc.export_dtype, mc), run.data.tokenizer_path, run.data.chat_template,
                                   oc.max_shard_bytes, run.model.scorer);
  run.log(fmt::format("exported {}", dir.string()));
}

// The evaluation of the current step, written to metrics.jsonl, unless there is no eval set or
// the step was evaluated already.
void evaluate_step(StepLoop& run) {
  const TrainerState& state = run.state;
  const AlignmentScorer& scorer = run.model.scorer;
  if (!run.data.has_eval || run.last_eval_step == state.step) return;
  const EvalResult r = evaluate(run.model.master, run.data.eval_view, run.data.loader_options,
                                run.config.training.eval_max_batches, run.so, run.dist,
                                scorer.defined() ? &scorer : nullptr);
  run.last_eval_step = state.step;
  if (run.dist.is_main()) {
    nlohmann::json record = {{"step", state.step}, {"eval_loss", r.loss}, {"eval_ppl", std::exp(r.loss)},
                             {"eval_tokens", r.tokens}};
    if (scorer.defined()) {
      record["eval_align_acc"] = r.align_acc;
      record["eval_score_gap"] = r.score_gap;
    }
    run.metrics->write(record);
  }
  run.log(fmt::format("eval at step {}: loss {:.4f}, perplexity {:.3f} ({} tokens)", state.step, r.loss,
                      std::exp(r.loss), r.tokens));
}

// One accumulation window's losses over all ranks. Means of a kind with no target, and of the
// alignment terms when no micro-batch had two pairs, are NaN (written as null).
struct WindowLosses {
  double loss = 0;  // what was backpropagated: the token mean, or the source-weighted loss
  double loss_real = 0, loss_synthetic = 0;  // window means by kind
  double loss_total = 0;                     // loss plus the weighted alignment terms
  double loss_align = 0, loss_cons = 0, align_acc = 0, align_score_gap = 0;  // means over pairs
  int64_t step_tokens = 0;     // non-padding input tokens
  int64_t global_targets = 0;  // target tokens
};

// The forward and backward passes of the next window (gradients left in the parameters' .grad).
WindowLosses train_window(StepLoop& run) {
  const TrainingSection& tc = run.config.training;
  const AlignmentSection& al = run.config.alignment;
  const AlignmentScorer& scorer = run.model.scorer;
  const DistEnv& dist = run.dist;
  // The MAIN method's source-weighted loss (training.synthetic_weight >= 0), else the token mean.
  const bool source_weighted = tc.synthetic_weight >= 0;
  std::vector<PackedBatch> window;
  int64_t local_targets = 0, local_synthetic = 0;
  for (int64_t i = 0; i < tc.grad_accum_steps; ++i) {
    window.push_back(run.loader.next());
    local_targets += window.back().target_tokens;
    local_synthetic += window.back().synthetic_target_tokens;
  }
  at::Tensor counts = at::tensor({static_cast<double>(local_targets), static_cast<double>(local_synthetic)}, at::kDouble);
  all_reduce_sum(dist, counts, "the window's target-token counts");
  const auto global_targets = static_cast<int64_t>(counts[0].item<double>());
  const auto global_synthetic = static_cast<int64_t>(counts[1].item<double>());
  const int64_t global_real = global_targets - global_synthetic;
  SourceWeights weights;
  if (source_weighted) {
    weights.alpha = tc.synthetic_weight;
    weights.real_target_tokens = global_real;
    weights.synthetic_target_tokens = global_synthetic;
  }
  for (const at::Tensor& p : run.params) p.mutable_grad().reset();
  AlignmentTerms terms;
  if (scorer.defined()) {
    terms.scorer = &scorer;
    terms.lambda_align = al.lambda_align;
    terms.lambda_cons = al.lambda_cons;
    terms.signal = al.signal;
  }
  const WindowResult r = forward_backward(run.model.master, window, global_targets, run.so, weights, terms);
  // DDP: the gradients are summed over the ranks once, after the window's last backward pass.
  if (run.grad_sync != nullptr) run.grad_sync->all_reduce_gradients();
  at::Tensor sums = at::tensor({r.loss_sum, static_cast<double>(r.valid_tokens), r.loss_sum_real, r.loss_sum_synthetic},
                               at::kDouble);
  all_reduce_sum(dist, sums, "the window's loss sums");
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
  all_reduce_sum(dist, align_sums, "the window's alignment sums");
  const double align_pairs = align_sums[0].item<double>();
  auto pair_mean = [&](int i) { return align_pairs > 0 ? align_sums[i].item<double>() / align_pairs : std::nan(""); };
  const double loss_align = pair_mean(1), loss_cons = pair_mean(2);
  double loss_total = loss;
  if (scorer.defined() && align_pairs > 0)
    loss_total += al.lambda_align * loss_align + (al.lambda_cons > 0 ? al.lambda_cons * loss_cons : 0.0);
  WindowLosses w;
  w.loss = loss;
  w.loss_real = loss_real;
  w.loss_synthetic = loss_synthetic;
  w.loss_total = loss_total;
  w.loss_align = loss_align;
  w.loss_cons = loss_cons;
  w.align_acc = pair_mean(3);
  w.align_score_gap = pair_mean(4);
  w.step_tokens = step_tokens;
  w.global_targets = global_targets;
  return w;
}

struct StepUpdate {
  double grad_norm = 0;  // before clipping
  double lr = 0;
};

// Clips the window's gradients and updates the weights, unless the loss or the gradient norm is
// not finite: then the update is skipped and counted.
StepUpdate update_or_skip(StepLoop& run, const WindowLosses& w) {
  TrainerState& state = run.state;
  const double loss = w.loss;
  const double grad_norm = clip_grad_norm(run.params, run.config.training.max_grad_norm);
  const double lr = lr_at(run.schedule, state.step);
  // Every input is the same on every rank (reduced sums, summed gradients); the decision is still
  // taken together, so that no rank can step while another skips.
  const bool finite = !any_rank(run.dist, !(std::isfinite(loss) && std::isfinite(w.loss_total) && std::isfinite(grad_norm)),
                                "the non-finite step decision");
  if (finite) {
    run.optimizer.step(lr);
    state.consecutive_nonfinite = 0;
  } else {
    ++state.skipped_steps;
    ++state.consecutive_nonfinite;
    run.log(fmt::format("step {}: non-finite {} ({}); update skipped ({} in a row, {} in total)", state.step + 1,
                        std::isfinite(loss) ? "gradient norm" : "loss", std::isfinite(loss) ? grad_norm : loss,
                        state.consecutive_nonfinite, state.skipped_steps));
  }
  StepUpdate u;
  u.grad_norm = grad_norm;
  u.lr = lr;
  return u;
}

// The step's line of metrics.jsonl (rank 0).
void write_step_metrics(StepLoop& run, const WindowLosses& w, const StepUpdate& u, double dt, double tokens_per_s) {
  const TrainerState& state = run.state;
  const AlignmentSection& al = run.config.alignment;
  const AlignmentScorer& scorer = run.model.scorer;
  nlohmann::json mfu =
      run.peak_flops ? nlohmann::json(run.flops_per_token * tokens_per_s / *run.peak_flops) : nlohmann::json();
  nlohmann::json record = {{"step", state.step},
                           {"loss", w.loss},
                           {"lr", u.lr},
                           {"grad_norm", u.grad_norm},
                           {"tokens_per_s", tokens_per_s},
                           {"mfu", mfu},
                           {"peak_mem_bytes", peak_memory_bytes(run.model.device.is_cuda())},
                           {"skipped_steps", state.skipped_steps},
                           {"tokens", state.tokens_seen},
                           {"epoch", run.loader.cursor().epoch},
                           {"step_time_s", dt}};
  if (run.config.training.synthetic_weight >= 0) {
    record["loss_real"] = w.loss_real;
    record["loss_synthetic"] = w.loss_synthetic;
  }
  if (scorer.defined()) {
    record["loss_total"] = w.loss_total;
    record["loss_align"] = w.loss_align;
    record["loss_cons"] = al.lambda_cons > 0 ? w.loss_cons : std::nan("");
    record["align_acc"] = w.align_acc;
    record["align_score_gap"] = w.align_score_gap;
    record["align_temperature"] = 1.0 / inverse_temperature(scorer.logit_scale).item<double>();
  }
  run.metrics->write(record);
}

// One optimizer step: the window, the update, the counters, metrics.jsonl and the progress line.
// Returns the step's loss.
double train_step(StepLoop& run) {
  TrainerState& state = run.state;
  const auto t0 = std::chrono::steady_clock::now();
  WindowLosses w = train_window(run);
  if (nan_injected(state.step + 1)) w.loss = std::nan("");  // fault injection for tests
  const StepUpdate u = update_or_skip(run, w);
  ++state.step;
  state.tokens_seen += w.step_tokens;
  state.target_tokens_seen += w.global_targets;
  const double dt = seconds_since(t0);
  const double tokens_per_s = static_cast<double>(w.step_tokens) / std::max(dt, 1e-9);
  if (run.dist.is_main()) write_step_metrics(run, w, u, dt, tokens_per_s);
  fault_point("train.step");
  ProgressStats ps;
  ps.step = state.step;
  ps.loss = w.loss;
  ps.lr = u.lr;
  ps.grad_norm = u.grad_norm;
  ps.tokens_per_s = tokens_per_s;
  ps.elapsed_s = seconds_since(run.run_start);
  ps.steps_this_run = state.step - run.first_step;
  run.progress.update(ps);
  if (run.dist.is_main() && is_log_step(state.step, run.schedule.total_steps, run.config.logging.log_every))
    run.run_log.line(fmt::format("step {}: loss {:.4f}, lr {:.3e}, grad_norm {:.3f}, {:.0f} tokens/s", state.step,
                                 w.loss, u.lr, u.grad_norm, tokens_per_s));
  return w.loss;
}

// Steps until the schedule's end (then a final evaluation and checkpoint) or a stop signal (then a
// checkpoint; the outcome is `interrupted`). Too many non-finite steps in a row are an mt::Error.
TrainOutcome run_steps(StepLoop& run) {
  const TrainConfig& config = run.config;
  const TrainingSection& tc = config.training;
  TrainerState& state = run.state;
  const int64_t total_steps = run.schedule.total_steps;
  const bool cuda = run.model.device.is_cuda();
  run.flops_per_token = training_flops_per_token(run.model.master.config, config.data.max_len);
  run.peak_flops = device_peak_flops(cuda);
  run.progress = Progress(run.dist.is_main() ? config.logging.progress : "none", total_steps, config.logging.log_every);
  TrainOutcome outcome;
  outcome.total_steps = total_steps;
  outcome.main_rank = run.dist.is_main();
  reset_peak_memory(cuda);
  run.run_start = std::chrono::steady_clock::now();
  run.first_step = state.step;
  run.last_checkpoint_step = run.resumed ? state.step : -1;
  // A finished run's final checkpoint was saved after its final evaluation: do not repeat it.
  if (run.resumed && state.step >= total_steps) run.last_eval_step = state.step;
  while (state.step < total_steps) {
    outcome.last_loss = train_step(run);
    if (state.consecutive_nonfinite >= tc.max_consecutive_nonfinite) {
      run.progress.finish();
      throw Error(fmt::format("stopping at step {}: {} steps in a row had a non-finite loss or gradient "
                              "(training.max_consecutive_nonfinite = {}); the last good checkpoint is kept. Lower "
                              "optimizer.lr, check the data, or raise the limit",
                              state.step, state.consecutive_nonfinite, tc.max_consecutive_nonfinite));
    }
    if (tc.eval_every > 0 && state.step % tc.eval_every == 0) evaluate_step(run);
    if (tc.checkpoint_every > 0 && state.step % tc.checkpoint_every == 0) save_step(run);
    export_every_step(run);
    // A signal one rank saw stops every rank after the same step.
    int sig = stop_signal_received();
    if (sig == 0 && fault_flag("train.stop_signal")) sig = SIGTERM;  // a test's SIGTERM after the first step
    if (any_rank(run.dist, sig != 0, "the stop-signal decision") && sig == 0) sig = SIGTERM;
    if (sig != 0) {
      save_step(run);
      run.progress.finish();
      run.log(fmt::format("stopped by {} after step {} of {}, checkpoint saved",
                          stop_signal_name(sig), state.step, total_steps));
      outcome.step = state.step;
      outcome.steps_this_run = state.step - run.first_step;
      outcome.interrupted = true;
      return outcome;
    }
  }
  evaluate_step(run);
  save_step(run);
  run.progress.finish();
  outcome.step = state.step;
  outcome.steps_this_run = state.step - run.first_step;
  return outcome;
}

// What the run's start hands to training_in_run_dir.
struct RunStart {
  const TrainConfig& config;
  const std::string& resume;
  DistEnv& dist;
  at::Device device;
  const std::string& config_yaml;
  Progress& progress;
  RunLog& run_log;
  const LogFn& log;
};

// Everything after the ranks joined: the run directory, the weights, the data, the steps, final/.
TrainOutcome training_in_run_dir(const RunStart& start) {
  const TrainConfig& config = start.config;
  const std::string& resume = start.resume;
  DistEnv& dist = start.dist;
  const at::Device device = start.device;
  const std::string& config_yaml = start.config_yaml;
  Progress& progress = start.progress;
  const LogFn& log = start.log;
  const bool main_rank = dist.is_main();
  const fs::path run_dir = config.output.run_dir;
  // Open the run: its directory, and the checkpoint to resume from.
  const std::optional<LoadedCheckpoint> ckpt = open_run_dir(config, resume, dist.world_size, log);
  // The weights: the model and the alignment scorer, the checkpoint's when resuming.
  TrainedWeights model = load_trained_weights(config, ckpt, device);
  // The data and the loader at the checkpoint's cursor.
  const TrainingData data = load_training_data(config, model.master.config, dist, log);
  DataLoader loader = open_train_loader(data, ckpt);
  const int64_t micro_per_epoch = loader.steps_per_epoch();
  // The schedule, the optimizer and the state to start from.
  const LrSchedule schedule = run_schedule(config, micro_per_epoch, ckpt);
  const std::vector<std::pair<std::string, at::Tensor>> trained = trained_tensors(model.master, model.scorer);
  AdamW optimizer = make_optimizer(config.optimizer, trained);
  TrainerState state = start_state(schedule, optimizer, ckpt, model.device);
  std::vector<at::Tensor> params;
  for (const auto& [name, t] : trained) params.push_back(t);
  const StepOptions so = step_options(config, model.compute_dtype);
  if (fault_flag("train.perturb_weights")) params[0].detach().add_(1e-3);  // a test's rank with other weights
  check_same_weights(dist, trained, "at the start (each rank loads the weights itself: are the files the same?)");
  const std::unique_ptr<GradientSync> grad_sync = make_gradient_sync(dist, config, params);

  // The outputs: config.yaml, metrics.jsonl (cut back to the checkpoint's length), the log.
  std::unique_ptr<MetricsWriter> metrics;
  if (main_rank) {
    write_run_config(run_dir, config_yaml);
    start.run_log.open(run_dir / "train.log");  // from here on the run directory holds this run
    metrics = std::make_unique<MetricsWriter>(run_dir, ckpt ? ckpt->state.metrics_bytes : -1, config.logging.tensorboard);
  }
  log_run_start(config, model, data, params, micro_per_epoch, schedule, so, log);
  if (grad_sync)
    log(fmt::format("data parallel: {} ranks ({}), {} rows per optimizer step over all ranks (the micro-batch counts "
                    "above are per rank); gradients summed in {} buckets of up to {} MiB after each window; tokens/s "
                    "over all ranks",
                    dist.world_size, dist.group->backend(),
                    dist.world_size * config.training.micro_batch_size * config.training.grad_accum_steps,
                    grad_sync->num_buckets(), config.distributed.bucket_mb));

  // The step loop, with SIGTERM/SIGINT/SIGHUP as a graceful stop until the run returns.
  const StopSignals signals;
  StepLoop loop{config, dist,     log,   progress, model,         data,       loader, optimizer,
                params, schedule, so,    state,    metrics.get(), config_yaml, ckpt.has_value(), grad_sync.get(),
                start.run_log};
  TrainOutcome outcome = run_steps(loop);
  if (outcome.interrupted) return outcome;
  check_same_weights(dist, trained, fmt::format("after step {}", outcome.step));

  // Finish: final/ (rank 0).
  if (main_rank && config.output.export_final) {
    outcome.final_dir = export_final(run_dir, model.master, model.generation,
                                     export_dtype(config.output.export_dtype, model.master.config), data.tokenizer_path,
                                     data.chat_template, config.output.max_shard_bytes, model.scorer);
    log(fmt::format("exported {}", outcome.final_dir.string()));
  }
  return outcome;
}

}  // namespace

TrainOutcome run_training(const TrainConfig& config, const std::string& resume) {
  check_train_config_complete(config);
  // The ranks (under torchrun): joined, and agreeing on the resolved config.
  DistEnv dist = dist_env_from_environment();
  const at::Device device = rank_device(dist, resolve_device(config.model.device));
  const std::string config_yaml = train_config_to_yaml(config);
  join_ranks(dist, config, device, config_yaml);
  const bool main_rank = dist.is_main();
  const fs::path run_dir = config.output.run_dir;
  Progress progress(main_rank ? config.logging.progress : "none", 1, config.logging.log_every);
  RunLog run_log;
  // Rank 0 speaks for the job: the other ranks' messages would repeat its own.
  const LogFn log = [&](const std::string& m) {
    if (!main_rank) return;
    progress.message(m);
    run_log.line(m);
  };
  load_nan_steps_from_env();
  // A start that fails leaves no run directory behind when this command made it; a run that fails
  // once started keeps its directory, and its train.log ends with the error.
  // The lock is taken outside the try: a run refused because another process holds the directory
  // must not remove it.
  std::error_code ec;
  const bool new_run_dir = main_rank && !fs::exists(run_dir, ec);
  const std::unique_ptr<DirLock> lock = main_rank ? lock_run_dir(run_dir, log) : nullptr;
  RunStart start{config, resume, dist, device, config_yaml, progress, run_log, log};
  try {
    return training_in_run_dir(start);
  } catch (const std::exception& e) {
    if (run_log.is_open()) {
      try {
        run_log.line(std::string("error: ") + e.what());
      } catch (const std::exception&) {  // the log cannot take it: the console still shows the error
      }
    } else if (new_run_dir) {
      run_log.close();
      fs::remove_all(run_dir, ec);
    }
    throw;
  }
}

}  // namespace mt
