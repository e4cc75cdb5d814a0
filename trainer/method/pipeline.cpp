// The MAIN pipeline (see pipeline.h): the run directory opened or resumed, the shared context built
// (tokenizer, template, device, inputs), then the stages of trainer/method/stages.h in order and the
// report. Each stage is skipped when its stage.json says it is complete.
#include "trainer/method/pipeline.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "models/atomic_file.h"
#include "models/chat_template.h"
#include "models/error.h"
#include "models/hf_config.h"
#include "trainer/base/file_lock.h"
#include "trainer/base/fault_injection.h"
#include "trainer/dist/distributed.h"
#include "trainer/loop/train.h"
#include "trainer/method/pipeline_inputs.h"
#include "trainer/method/pipeline_report.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_training.h"
#include "trainer/method/stages.h"

namespace mt {

using namespace pipeline;

PipelineOutcome run_pipeline(const PipelineConfig& config, bool resume) {
  check_pipeline_config(config);
  const DistEnv env = dist_env_from_environment();
  if (env.world_size > 1)
    throw Error(fmt::format("pipeline: WORLD_SIZE={}: the pipeline runs as one process in this build (data "
                            "parallelism covers `maintune train` only; the pipeline's stage trainings, generation "
                            "and scoring are not sharded across ranks yet): run it without torchrun",
                            env.world_size));
  Context ctx;
  ctx.config = config;
  ctx.run_dir = fs::path(config.output.run_dir);
  const fs::path saved = ctx.run_dir / kPipelineConfigFile;
  const bool has_run = fs::exists(saved);
  if (!has_run && fs::exists(ctx.run_dir) && !is_empty_but_for_lock(ctx.run_dir))
    throw Error(fmt::format("{}: the run directory exists and is not empty, and holds no pipeline run; choose an "
                            "empty or new --run-dir",
                            ctx.run_dir.string()));
  fs::create_directories(ctx.run_dir);
  const DirLock lock(ctx.run_dir, "pipeline run directory");  // one process per run: a second is refused
  if (has_run) {
    if (!resume)
      throw Error(fmt::format("{}: this run directory already holds a pipeline run; continue it with --resume, or "
                              "choose another --run-dir",
                              ctx.run_dir.string()));
    const PipelineConfig before = load_pipeline_config(saved);
    const auto diffs = resume_incompatibilities(before, config);
    if (!diffs.empty())
      throw Error(fmt::format("{}: cannot resume: the config differs from the run's ({}) in keys that must stay as "
                              "the run started:\n  {}",
                              ctx.run_dir.string(), saved.string(), fmt::join(diffs, "\n  ")));
  } else {
    if (resume) log(fmt::format("{}: no pipeline run there yet; starting one", ctx.run_dir.string()));
    write_text_file_atomically(saved, pipeline_config_to_yaml(config));
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    if (config.demo.enabled) run_stage0_demo(ctx);
    fault_point("stage0.done");
    const PipelineConfig& c = ctx.config;
    ctx.tokenizer_path = c.model.tokenizer.empty() ? fs::path(c.model.path) : fs::path(c.model.tokenizer);
    ctx.tok = Tokenizer::load(ctx.tokenizer_path);
    ctx.chat_template = resolve_chat_template(*ctx.tok, c.data.template_name);
    if (ctx.chat_template.empty())
      throw Error(fmt::format("{}: cannot tell the chat template from the tokenizer; set data.template",
                              ctx.tokenizer_path.string()));
    ctx.end_of_turn = chat_end_of_turn_id(*ctx.tok, ctx.chat_template);
    const ModelConfig mc = load_hf_config(fs::path(c.model.path) / "config.json");
    // The template's own tokens must exist in the model (a tokenizer of another family would index out
    // of range); the data's ids are checked again by each training run.
    const std::vector<std::pair<std::string, int64_t>> template_ids = {{"end-of-turn", ctx.end_of_turn},
                                                                       {"BOS", ctx.tok->special().bos}};
    for (const auto& [what, id] : template_ids)
      if (id >= mc.vocab_size)
        throw Error(fmt::format("{}: the tokenizer's {} token id {} is outside the model {}'s vocabulary of {}; the "
                                "forward and reverse models must share the base model's tokenizer",
                                ctx.tokenizer_path.string(), what, id, c.model.path, mc.vocab_size));
    ctx.device = resolve_device(c.model.device);
    ctx.dtype = dtype_from_name(c.model.dtype);
    ctx.max_len = std::min<int64_t>(c.data.max_len, mc.max_position_embeddings > 0 ? mc.max_position_embeddings : c.data.max_len);
    ctx.demo_checker = c.pipeline.checker == "demo_tasks";
    int64_t skipped = 0;
    ctx.seed = read_pairs(c.data.sources, "data.sources (seed pairs)", &skipped);
    if (ctx.seed.empty())
      throw Error(fmt::format("data.sources: the seed set is empty: no instruction-response pair in {} ({} without "
                              "a non-blank instruction and response)",
                              c.data.sources.empty() ? std::string("(no sources)") : c.data.sources[0].path.string(), skipped));
    ctx.eval = read_pairs(c.data.eval_sources, "data.eval_sources (held-out pairs)", nullptr);
    ctx.unlabeled = read_unlabeled(c.pipeline.unlabeled);
    if (ctx.unlabeled.empty())
      throw Error(fmt::format("pipeline.unlabeled: no usable segment in {} (every record was empty or shorter than "
                              "min_chars)",
                              c.pipeline.unlabeled.empty() ? std::string("(no sources)") : c.pipeline.unlabeled[0].path.string()));
    log(fmt::format("{} seed pairs, {} unlabeled responses, {} held-out pairs; template {}, {} rounds, filter {}",
                    ctx.seed.size(), ctx.unlabeled.size(), ctx.eval.size(), ctx.chat_template, c.rounds.count, c.filter.rule));
    run_stage1(ctx);
    for (int64_t k = 1; k <= c.rounds.count; ++k) run_round(ctx, k);
    run_stage3(ctx);
    run_stage4(ctx);
    run_stage5(ctx);
    write_pipeline_report(ctx.run_dir, ctx.config);
    fault_point("report.done");
  } catch (const StageStopped&) {
    log("stopped by a signal; continue with --resume");
    return {ctx.run_dir, {}, false};
  }
  log(fmt::format("done in {:.0f} s: {}", seconds_since(t0), (ctx.run_dir / kReportDir / "report.md").string()));
  return {ctx.run_dir, ctx.run_dir / kReportDir / "report.md", true};
}

}  // namespace mt
