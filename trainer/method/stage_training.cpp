// Stage trainings and held-out losses (see stage_training.h).
#include "trainer/method/stage_training.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "models/atomic_file.h"
#include "trainer/base/fault_injection.h"
#include "trainer/loop/train.h"
#include "trainer/method/chunked_inference.h"
#include "trainer/method/run_layout.h"

namespace mt::pipeline {

fs::path train_stage_model(const Context& ctx, const fs::path& dir, const std::vector<TrainSource>& sources,
                           const fs::path& init_from, int64_t steps, double alpha, const std::string& kind,
                           const std::string& what) {
  const fs::path done_file = dir / "trained.json";
  if (fs::exists(done_file) && fs::exists(dir / "final" / "config.json")) return dir / "final";
  TrainConfig c = ctx.config;
  c.data.sources.clear();
  for (const auto& s : sources) {
    DataSourceConfig d;
    d.path = s.file;
    d.format = "messages";
    d.on_malformed = "fail";
    d.synthetic = s.synthetic;
    c.data.sources.push_back(d);
  }
  c.data.eval_sources.clear();
  c.data.eval_fraction = 0;
  c.data.template_name = ctx.chat_template;
  if (c.data.cache_dir.empty()) c.data.cache_dir = (ctx.run_dir / kPipelineCacheDir).string();
  c.model.tokenizer = ctx.tokenizer_path.string();
  if (!init_from.empty()) {
    c.model.path = init_from.string();
    c.model.init = "pretrained";
  }
  c.training.max_steps = steps;
  c.training.synthetic_weight = alpha;
  // The alignment terms only in the stages alignment.stages names.
  const auto& stages = c.alignment.stages;
  if (std::find(stages.begin(), stages.end(), kind) == stages.end()) {
    c.alignment.lambda_align = 0;
    c.alignment.lambda_cons = 0;
  }
  c.output.run_dir = dir.string();
  c.output.export_final = true;
  log(fmt::format("{}: training {} steps{} -> {}", what, steps,
                  alpha >= 0 ? fmt::format(" (synthetic weight alpha = {:.3f})", alpha) : "", dir.string()));
  const TrainOutcome outcome = run_training(c, "auto");
  if (outcome.interrupted) throw StageStopped{};
  fault_point(what + ".trained");
  write_text_file_atomically(done_file, json{{"steps", outcome.step}, {"last_loss", outcome.last_loss}}.dump() + "\n");
  return dir / "final";
}

double heldout_nll(const Context& ctx, const fs::path& model_dir, const std::vector<Pair>& pairs, bool reverse,
                   const fs::path& dir, Throughput& tp, const std::string& what) {
  if (pairs.empty()) return std::nan("");
  std::vector<ScoreRequest> reqs;
  for (const auto& p : pairs) reqs.push_back(score_request(ctx, reverse ? reverse_turns(ctx, p) : forward_turns(ctx, p)));
  return pooled_nll(score_chunked(ctx, dir, model_dir, reqs, tp, what));
}

}  // namespace mt::pipeline
