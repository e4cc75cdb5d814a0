// Stage 0 (demo only): the demo task suite written as seed / held-out / unlabeled files, and a
// SentencePiece tokenizer trained on its text and the pipeline's prompts.
#include "trainer/method/stages.h"

#include <fmt/format.h>

#include "models/atomic_file.h"
#include "models/error.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"
#include "models/hf_config.h"
#include "trainer/method/demo_tasks.h"
#include "trainer/method/tokenizer_training.h"

namespace mt::pipeline {

void run_stage0_demo(Context& ctx) {
  const fs::path dir = ctx.run_dir / kStage0Demo;
  const auto& d = ctx.config.demo;
  if (!stage_complete(dir)) {
    fs::create_directories(dir);
    const auto t0 = std::chrono::steady_clock::now();
    DemoSuiteOptions o;
    o.seed = static_cast<uint64_t>(d.seed);
    o.seed_pairs = d.seed_pairs;
    o.unlabeled = d.unlabeled;
    o.eval_pairs = d.eval_pairs;
    o.noise_fraction = d.noise_fraction;
    const DemoSuite suite = make_demo_suite(o);
    auto pairs_of = [](const std::vector<DemoPair>& v) {
      std::vector<Pair> out;
      for (const auto& p : v) out.push_back({p.instruction, p.response});
      return out;
    };
    write_pairs(dir / "seed.jsonl", pairs_of(suite.seed));
    write_pairs(dir / "eval.jsonl", pairs_of(suite.eval));
    std::string unlabeled, truth;
    int64_t noise = 0;
    for (const auto& p : suite.unlabeled) {
      unlabeled += json{{"text", p.response}}.dump() + "\n";
      truth += json{{"response", p.response}, {"source_instruction", p.instruction}, {"family", p.family}}.dump() + "\n";
      noise += p.family == "noise";
    }
    write_text_file_atomically(dir / "unlabeled.jsonl", unlabeled);
    write_text_file_atomically(dir / "unlabeled_truth.jsonl", truth);
    // The tokenizer learns the demo's text and the pipeline's own prompt text.
    std::vector<std::string> texts;
    for (const auto* v : {&suite.seed, &suite.unlabeled, &suite.eval})
      for (const auto& p : *v) {
        if (!p.instruction.empty()) texts.push_back(p.instruction);
        texts.push_back(p.response);
      }
    for (const auto& t : {ctx.config.pipeline.reverse_template, ctx.config.filter.self_curation_template,
                          ctx.config.final_tuning.seed_tag, ctx.config.final_tuning.synthetic_tag})
      texts.push_back(t);
    SentencePieceTrainOptions so;
    so.vocab_size = load_hf_config(fs::path(ctx.config.model.path) / "config.json").vocab_size;
    so.seed = static_cast<uint64_t>(d.seed);
    so.user_defined_symbols = {"[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"};
    train_sentencepiece_tokenizer(texts, so, dir / "tokenizer");
    mark_stage_complete(dir, json{{"stage", "demo"},
                              {"seed_pairs", suite.seed.size()},
                              {"unlabeled", suite.unlabeled.size()},
                              {"unlabeled_noise", noise},
                              {"eval_pairs", suite.eval.size()},
                              {"tokenizer_vocab", so.vocab_size},
                              {"families", demo_task_families()},
                              {"seconds", seconds_since(t0)}});
    log(fmt::format("stage 0: demo suite: {} seed pairs, {} unlabeled responses ({} noise), {} held-out pairs, "
                    "tokenizer of {} pieces",
                    suite.seed.size(), suite.unlabeled.size(), noise, suite.eval.size(), so.vocab_size));
  }
  auto source = [](const fs::path& p, const std::string& format) {
    DataSourceConfig s;
    s.path = p;
    s.format = format;
    s.min_chars = 1;
    return s;
  };
  ctx.config.data.sources = {source(dir / "seed.jsonl", "prompt_response")};
  ctx.config.data.sources[0].prompt_field = "instruction";
  ctx.config.data.eval_sources = {ctx.config.data.sources[0]};
  ctx.config.data.eval_sources[0].path = dir / "eval.jsonl";
  ctx.config.pipeline.unlabeled = {source(dir / "unlabeled.jsonl", "text_jsonl")};
  ctx.config.model.tokenizer = (dir / "tokenizer").string();
}

}  // namespace mt::pipeline
