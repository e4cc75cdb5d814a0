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

void check_pipeline_config(const TrainConfig& c) {
  std::vector<std::string> problems;
  const auto rules = compared_filter_rules(c.filter);
  for (const auto& m : c.final_tuning.models)
    if (std::find(rules.begin(), rules.end(), m) == rules.end())
      problems.push_back(fmt::format("final.models lists '{}', which is neither filter.rule nor in filter.compare", m));
  if (!(c.final_tuning.alpha == -1.0 || (c.final_tuning.alpha >= 0 && c.final_tuning.alpha <= 1)))
    problems.push_back(fmt::format("final.alpha must be -1 or in [0, 1], got {}", c.final_tuning.alpha));
  if (c.pipeline.reverse_template.find("{response}") == std::string::npos)
    problems.push_back("pipeline.reverse_template has no {response} placeholder");
  if (filter_rule_used(c.filter, "self_curation") && (c.filter.self_curation_template.find("{instruction}") == std::string::npos ||
                                        c.filter.self_curation_template.find("{response}") == std::string::npos))
    problems.push_back("filter.self_curation_template needs both {instruction} and {response}");
  if (c.filter.keep == "top_k" && c.filter.top_k <= 0) problems.push_back("filter.keep is top_k but filter.top_k is 0");
  if (c.filter.rule == "mutual" || filter_rule_used(c.filter, "mutual"))
    if (!(c.filter.forward_weight + c.filter.reverse_weight > 0))
      problems.push_back("filter.forward_weight + filter.reverse_weight must be positive for the mutual rule");
  if (filter_rule_used(c.filter, "alignment") || c.filter.alignment_weight > 0) {
    const char* stage = c.rounds.count > 0 ? "rounds" : "seed";
    const auto& st = c.alignment.stages;
    if (std::find(st.begin(), st.end(), stage) == st.end() || !(c.alignment.lambda_align > 0 || c.alignment.lambda_cons > 0))
      problems.push_back(fmt::format("the filter uses the alignment scorer, which the last forward model ({}) only has "
                                     "when alignment.stages includes {} and alignment.lambda_align or lambda_cons is "
                                     "positive",
                                     c.rounds.count > 0 ? "of the last round" : "of stage 1", stage));
  }
  if (c.pipeline.checker == "demo_tasks" && !c.demo.enabled && c.data.eval_sources.empty())
    problems.push_back("pipeline.checker is demo_tasks but there are no held-out pairs (data.eval_sources) and the demo is off");
  if (c.model.path.empty()) problems.push_back("model.path is not set (the base model dir)");
  if (c.output.run_dir.empty()) problems.push_back("output.run_dir is not set ('run_dir:' under 'output:', or --run-dir DIR)");
  if (!c.demo.enabled) {
    if (c.data.sources.empty()) problems.push_back("data.sources (the seed pairs) is empty");
    if (c.pipeline.unlabeled.empty()) problems.push_back("pipeline.unlabeled (the unlabeled responses) is empty");
  }
  if (!problems.empty()) throw Error(fmt::format("pipeline config: {}", fmt::join(problems, "; ")));
}

PipelineOutcome run_pipeline(const TrainConfig& config, bool resume) {
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
  if (fs::exists(saved)) {
    if (!resume)
      throw Error(fmt::format("{}: this run directory already holds a pipeline run; continue it with --resume, or "
                              "choose another --run-dir",
                              ctx.run_dir.string()));
    const TrainConfig before = load_train_config(saved);
    const auto diffs = resume_incompatibilities(before, config);
    if (!diffs.empty())
      throw Error(fmt::format("{}: cannot resume: the config differs from the run's ({}) in keys that must stay as "
                              "the run started:\n  {}",
                              ctx.run_dir.string(), saved.string(), fmt::join(diffs, "\n  ")));
  } else {
    if (resume) log(fmt::format("{}: no pipeline run there yet; starting one", ctx.run_dir.string()));
    if (fs::exists(ctx.run_dir) && !fs::is_empty(ctx.run_dir))
      throw Error(fmt::format("{}: the run directory exists and is not empty, and holds no pipeline run; choose an "
                              "empty or new --run-dir",
                              ctx.run_dir.string()));
    fs::create_directories(ctx.run_dir);
    write_text_file_atomically(saved, train_config_to_yaml(config));
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    if (config.demo.enabled) run_stage0_demo(ctx);
    fault_point("stage0.done");
    const TrainConfig& c = ctx.config;
    ctx.tokenizer_path = c.model.tokenizer.empty() ? fs::path(c.model.path) : fs::path(c.model.tokenizer);
    ctx.tok = Tokenizer::load(ctx.tokenizer_path);
    ctx.chat_template = c.data.template_name == "auto" ? detect_chat_template(*ctx.tok) : c.data.template_name;
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
