// Stage 5: a final model per rule in final.models on seed + that rule's kept pairs, its held-out
// NLL, and exact-match accuracy of greedy answers (the demo checker, or the reference response).
#include "trainer/method/stages.h"

#include <fmt/format.h>

#include "models/atomic_file.h"
#include "models/error.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"
#include "trainer/method/chunked_inference.h"
#include "trainer/method/demo_tasks.h"
#include "trainer/method/stage_training.h"

namespace mt::pipeline {

// Exact match of generated responses against the held-out pairs: the demo checker when on, else
// the reference response (whitespace-trimmed).
json evaluate_accuracy(const Context& ctx, const fs::path& model_dir, const fs::path& dir, const std::string& system,
                       const std::string& what) {
  if (ctx.eval.empty()) return json();
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& p : ctx.eval) prompts.push_back(generation_prompt(ctx, forward_turns(ctx, p, system)));
  SamplingConfig s;
  s.greedy = true;
  s.max_new_tokens = ctx.config.pipeline.eval_max_new_tokens;
  Throughput gen;
  const auto out = generate_chunked(ctx, dir, model_dir, prompts, s, gen, what);
  int64_t correct = 0;
  std::string samples;
  for (size_t i = 0; i < out.size(); ++i) {
    const bool ok = ctx.demo_checker ? check_demo_pair(ctx.eval[i].instruction, out[i].text)
                                     : out[i].text == ctx.eval[i].response;
    correct += ok;
    samples += json{{"instruction", ctx.eval[i].instruction}, {"reference", ctx.eval[i].response},
                    {"generated", out[i].text}, {"correct", ok}}.dump() + "\n";
  }
  write_text_file_atomically(dir / "predictions.jsonl", samples);
  return json{{"accuracy", static_cast<double>(correct) / static_cast<double>(out.size())},
              {"correct", correct},
              {"total", out.size()},
              {"generation", gen.to_json()}};
}

void run_stage5(const Context& ctx) {
  const fs::path dir = ctx.run_dir / kStage5Final;
  if (stage_complete(dir)) return;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto& fin = ctx.config.final_tuning;
  const std::string seed_system = fin.source_tags ? fin.seed_tag : "";
  std::vector<Turns> seed_turns;
  for (const auto& p : ctx.seed) seed_turns.push_back(forward_turns(ctx, p, seed_system));
  write_conversations(dir / "seed_train.jsonl", seed_turns);
  json models = json::object();
  Throughput tp;
  for (const auto& rule : fin.models) {
    const auto kept = load_pairs(filter_dir(ctx) / fmt::format("kept_{}.jsonl", rule));
    std::vector<Turns> syn;
    for (const auto& p : kept) syn.push_back(forward_turns(ctx, p, fin.source_tags ? fin.synthetic_tag : ""));
    std::vector<TrainSource> sources{{dir / "seed_train.jsonl", false}};
    if (!syn.empty()) {
      write_conversations(dir / fmt::format("synthetic_{}.jsonl", rule), syn);
      sources.push_back({dir / fmt::format("synthetic_{}.jsonl", rule), true});
    }
    const fs::path model = train_stage_model(ctx, dir / rule, sources, {}, fin.steps, syn.empty() ? -1.0 : fin.alpha, "final",
                                             fmt::format("stage5.{}", rule));
    json m{{"rule", rule}, {"synthetic_pairs", kept.size()}, {"seed_pairs", ctx.seed.size()}, {"steps", fin.steps}};
    m["heldout_nll"] = number_or_null(heldout_nll(ctx, model, ctx.eval, false, dir / rule / "heldout", tp, "stage5.heldout"));
    const json acc = evaluate_accuracy(ctx, model, dir / rule / "eval_generation", seed_system, fmt::format("stage5.{}.eval", rule));
    m["accuracy"] = acc.is_null() ? json() : acc["accuracy"];
    m["eval"] = acc;
    log(fmt::format("stage 5: final model '{}' ({} synthetic + {} seed pairs): accuracy {}", rule, kept.size(),
                    ctx.seed.size(), acc.is_null() ? "not measured (no held-out pairs)" : fmt::format("{:.3f}", acc["accuracy"].get<double>())));
    models[rule] = m;
  }
  // For reference: the stage-1 forward model (seed pairs only, pipeline.seed_steps steps).
  const json seed_acc = evaluate_accuracy(ctx, model_of_round(ctx, 0, false), dir / "seed_forward_eval", "", "stage5.seed_forward.eval");
  mark_stage_complete(dir, json{{"stage", "final"},
                            {"models", models},
                            {"seed_forward", seed_acc},
                            {"scoring", tp.to_json()},
                            {"seconds", seconds_since(t0)}});
}

}  // namespace mt::pipeline
