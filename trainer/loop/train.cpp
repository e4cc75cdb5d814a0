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
#include "trainer/loop/stop_signals.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

nlohmann::json schedule_json(const LrSchedule& s) {
  return {{"type", s.type}, {"base_lr", s.base_lr}, {"warmup_steps", s.warmup_steps},
          {"total_steps", s.total_steps}, {"min_lr_ratio", s.min_lr_ratio}};
}

}  // namespace

TrainOutcome run_training(const TrainConfig& config, const std::string& resume) {
  check_train_config_complete(config);
  const DistEnv dist = dist_env_from_environment();
  const bool main_rank = dist.is_main();
  const fs::path run_dir = config.output.run_dir;
  const TrainingSection& tc = config.training;
  Progress progress(main_rank ? config.logging.progress : "none", 1, config.logging.log_every);
  auto log = [&](const std::string& m) { progress.message(m); };
  load_nan_steps_from_env();

  // --- the run directory and what to resume from ----------------------------------------------
  if (main_rank) {
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    if (ec) throw Error(fmt::format("{}: cannot create the run directory: {}", run_dir.string(), ec.message()));
    // Temporary folders of checkpoint writes that a kill interrupted.
    if (fs::is_directory(run_dir / "checkpoints"))
      for (const auto& e : fs::directory_iterator(run_dir / "checkpoints"))
        if (e.path().filename().string().rfind(".tmp-", 0) == 0) fs::remove_all(e.path(), ec);
  }
  std::optional<LoadedCheckpoint> ckpt;
  if (resume == "auto") {
    ckpt = load_latest_checkpoint(run_dir, log);
    if (!ckpt) log(fmt::format("resume: no valid checkpoint in {}; starting from step 0", run_dir.string()));
  } else if (!resume.empty()) {
    ckpt = load_checkpoint(resume);
  } else if (has_checkpoints(run_dir)) {
    throw Error(fmt::format("{} already holds checkpoints of a run: pass --resume auto to continue it, or choose "
                            "another --run-dir", run_dir.string()));
  }
  if (ckpt) {
    const TrainConfig saved = load_train_config(ckpt->dir / "config.yaml");
    const std::vector<std::string> diff = resume_incompatibilities(saved, config);
    if (!diff.empty()) {
      std::string lines;
      for (const auto& d : diff) lines += "\n  " + d;
      throw Error(fmt::format("cannot resume {}: these settings differ from the checkpoint's and would change the "
                              "run:{}\n(change them back, or start a new run directory)", ckpt->dir.string(), lines));
    }
    log(fmt::format("resuming from {} (step {})", ckpt->dir.string(), ckpt->state.step));
  }

  // --- model --------------------------------------------------------------------------------------
  const at::Device device = resolve_device(config.model.device);
  const bool cuda = device.is_cuda();
  const at::ScalarType compute_dtype = dtype_from_name(config.model.dtype);
  const at::ScalarType master_dtype = config.model.pure_bf16 ? at::kBFloat16 : at::kFloat;
  if (config.model.pure_bf16 && compute_dtype != at::kBFloat16)
    throw Error("model.pure_bf16 needs model.dtype: bfloat16");
  at::manual_seed(static_cast<uint64_t>(tc.seed));
  Transformer master;
  GenerationDefaults generation;
  const fs::path model_path = config.model.path;
  if (config.model.init == "random") {
    master = init_transformer(load_hf_config(model_path / "config.json"), static_cast<uint64_t>(tc.seed),
                              at::TensorOptions().dtype(master_dtype).device(device));
  } else {
    LoadedModel loaded = load_model_dir(model_path, device, master_dtype);
    master = std::move(loaded.model);
    generation = std::move(loaded.generation);
  }
  std::map<std::string, at::Tensor> ckpt_alignment;  // the scorer's tensors of the checkpoint
  if (ckpt) {
    std::map<std::string, at::Tensor> w;
    for (const auto& [name, t] : ckpt->weights) {
      if (name.rfind("alignment.", 0) == 0) ckpt_alignment[name] = t.to(device);
      else w[name] = t.to(device, master_dtype);
    }
    master = build_transformer(master.config, std::move(w), (ckpt->dir / "model.safetensors").string());
  }
  make_trainable(master);
  const ModelConfig& mc = master.config;

  // --- the alignment scorer (alignment.lambda_align / lambda_cons > 0) ---------------------------
  const AlignmentSection& al = config.alignment;
  const bool alignment_on = al.lambda_align > 0 || al.lambda_cons > 0;
  AlignmentScorer scorer;
  std::string scorer_origin;
  if (alignment_on) {
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
      scorer_origin = "from the checkpoint";
    } else if (from_model) {
      scorer = *from_model;
      scorer_origin = fmt::format("from {}", (model_path / kAlignmentScorerFile).string());
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
      scorer_origin = "new";
    }
    scorer.instruction_proj.requires_grad_(true);
    scorer.response_proj.requires_grad_(true);
    scorer.logit_scale.requires_grad_(al.learn_temperature);
  }

  // --- data ---------------------------------------------------------------------------------------
  const fs::path tokenizer_path = config.model.tokenizer.empty() ? model_path : fs::path(config.model.tokenizer);
  ExampleOptions ex;
  ex.template_name = config.data.template_name;
  if (ex.template_name == "auto") ex.template_name = detect_chat_template(Tokenizer::load(tokenizer_path));
  ex.max_len = config.data.max_len;
  ex.train_on_prompt = config.data.train_on_prompt;
  ex.too_long = config.data.too_long;
  ex.on_malformed = config.data.on_malformed;
  const fs::path cache_dir = config.data.cache_dir.empty() ? run_dir / "cache" : fs::path(config.data.cache_dir);
  DatasetSpec spec{config.data.sources, tokenizer_path, ex, cache_dir};
  TokenCache train_cache = load_tokenized_dataset(spec, log);
  // Token ids must fit the model (a tokenizer from another family would index out of range).
  {
    const DatasetView v = train_cache.view();
    const uint32_t max_id = v.num_tokens() ? *std::max_element(v.tokens, v.tokens + v.num_tokens()) : 0;
    if (static_cast<int64_t>(max_id) >= mc.vocab_size)
      throw Error(fmt::format("{}: token id {} from the tokenizer is outside the model's vocabulary of {}",
                              tokenizer_path.string(), max_id, mc.vocab_size));
  }
  DatasetView train_view = train_cache.view(), eval_view;
  TokenizedDataset train_split, eval_split;
  TokenCache eval_cache;
  std::string dataset_key = train_cache.key;
  if (!config.data.eval_sources.empty()) {
    DatasetSpec eval_spec{config.data.eval_sources, tokenizer_path, ex, cache_dir};
    eval_cache = load_tokenized_dataset(eval_spec, log);
    eval_view = eval_cache.view();
  } else if (config.data.eval_fraction > 0) {
    std::tie(train_split, eval_split) = split_eval(train_cache.view(), config.data.eval_fraction,
                                                   static_cast<uint64_t>(tc.seed));
    if (train_split.size() == 0) throw Error("data.eval_fraction leaves no training example");
    train_view = train_split.view();
    eval_view = eval_split.view();
    dataset_key += fmt::format("-eval{}", config.data.eval_fraction);
  }
  const bool has_eval = eval_view.num_examples > 0;

  LoaderOptions lo;
  lo.seq_len = config.data.max_len;
  lo.batch_size = tc.micro_batch_size;
  lo.seed = static_cast<uint64_t>(tc.seed);
  lo.shuffle = config.data.shuffle;
  lo.packing = config.data.packing;
  lo.rank = dist.rank;
  lo.world_size = dist.world_size;
  DataLoader loader(train_view, lo, dataset_key);
  if (ckpt) loader.restore(ckpt->state.data_cursor);
  const int64_t micro_per_epoch = loader.steps_per_epoch();
  if (micro_per_epoch == 0) throw Error("the training data gives no batch for this rank (too few examples?)");

  // --- schedule and optimizer ---------------------------------------------------------------------
  LrSchedule schedule;
  schedule.type = config.schedule.type;
  schedule.base_lr = config.optimizer.lr;
  schedule.warmup_steps = config.schedule.warmup_steps;
  schedule.min_lr_ratio = config.schedule.min_lr_ratio;
  schedule.total_steps =
      tc.max_steps > 0 ? tc.max_steps
                       : std::max<int64_t>(1, static_cast<int64_t>(std::ceil(
                                                  tc.epochs * static_cast<double>(micro_per_epoch) /
                                                  static_cast<double>(tc.grad_accum_steps))));
  if (ckpt) schedule.total_steps = ckpt->state.schedule.value("total_steps", schedule.total_steps);
  check_lr_schedule(schedule);
  AdamWOptions ao;
  ao.beta1 = config.optimizer.beta1;
  ao.beta2 = config.optimizer.beta2;
  ao.eps = config.optimizer.eps;
  ao.weight_decay = config.optimizer.weight_decay;
  ao.fused = config.optimizer.fused;
  std::vector<std::pair<std::string, at::Tensor>> trained = master.params;
  if (scorer.defined())
    for (const auto& [name, t] : scorer.named_tensors())
      if (t.requires_grad()) trained.emplace_back(name, t);
  AdamW optimizer(trained, ao);
  TrainerState state;
  state.schedule = schedule_json(schedule);
  if (ckpt) {
    std::map<std::string, at::Tensor> opt_state;
    for (const auto& [name, t] : ckpt->optimizer_state) opt_state[name] = t.to(device);
    optimizer.load_state(opt_state, ckpt->optimizer_meta, (ckpt->dir / "optimizer.safetensors").string());
    state = ckpt->state;
    restore_rng_states(ckpt->rng);
  }
  std::vector<at::Tensor> params;
  for (const auto& [name, t] : trained) params.push_back(t);
  StepOptions so;
  so.compute_dtype = compute_dtype;
  so.activation_checkpointing = config.model.activation_checkpointing;
  so.loss_chunk_tokens = tc.loss_chunk_tokens;

  // --- outputs ------------------------------------------------------------------------------------
  const std::string config_yaml = train_config_to_yaml(config);
  std::unique_ptr<MetricsWriter> metrics;
  if (main_rank) {
    write_text_file_atomically(run_dir / "config.yaml", config_yaml);
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
                    scorer_origin, al.lambda_align, al.lambda_cons, al.signal, al.pooling, al.dim,
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
    outcome.final_dir = export_final(run_dir, master, generation, export_dtype(config.output.export_dtype, mc),
                                     tokenizer_path, config.output.max_shard_bytes, scorer);
    log(fmt::format("exported {}", outcome.final_dir.string()));
  }
  return outcome;
}

}  // namespace mt
