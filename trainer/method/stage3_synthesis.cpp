// Stage 3: instruction back-translation — the last reverse model writes filter.candidates
// instructions for every unlabeled response (candidates.jsonl).
#include "trainer/method/stages.h"

#include <fmt/format.h>

#include "models/atomic_file.h"
#include "models/error.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"
#include "trainer/base/random.h"
#include "trainer/method/chunked_inference.h"

namespace mt::pipeline {

void run_stage3(const Context& ctx) {
  const fs::path dir = synthesis_dir(ctx);
  if (stage_complete(dir)) return;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto& sc = ctx.config.synthesis;
  const fs::path reverse_model = model_of_round(ctx, ctx.config.rounds.count, true);
  const int64_t n = sc.candidates;
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& r : ctx.unlabeled) {
    const auto ids = generation_prompt(ctx, reverse_turns(ctx, {"", r}));
    for (int64_t c = 0; c < n; ++c) prompts.push_back(ids);
  }
  SamplingConfig s;
  s.greedy = false;
  s.temperature = sc.temperature;
  s.top_p = sc.top_p;
  s.top_k = sc.top_k;
  s.max_new_tokens = sc.max_new_tokens;
  s.seed = mix_seed(static_cast<uint64_t>(ctx.config.training.seed), 0x73796e7468ull);
  Throughput gen;
  const auto out = generate_chunked(ctx, dir / "chunks", reverse_model, prompts, s, gen, "stage3.synthesis");
  std::string text;
  int64_t empty = 0, skipped = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].finish == "skipped") ++skipped;
    else if (out[i].text.empty()) ++empty;
    text += json{{"id", i},
                 {"response_id", static_cast<int64_t>(i) / n},
                 {"candidate", static_cast<int64_t>(i) % n},
                 {"instruction", out[i].text},
                 {"response", ctx.unlabeled[i / static_cast<size_t>(n)]},
                 {"finish_reason", out[i].finish}}
                .dump() +
            "\n";
  }
  write_text_file_atomically(dir / "candidates.jsonl", text);
  const int64_t usable = static_cast<int64_t>(out.size()) - empty - skipped;
  log(fmt::format("stage 3: {} candidates for {} unlabeled responses ({} empty, {} over data.max_len); generation "
                  "{:.0f} tok/s",
                  out.size(), ctx.unlabeled.size(), empty, skipped, gen.per_second()));
  if (usable == 0)
    throw Error(fmt::format("stage 3 (synthesis): the reverse model {} wrote no usable instruction for the {} unlabeled "
                            "responses ({} empty, {} too long for data.max_len); train it longer "
                            "(pipeline.seed_steps, rounds.steps) or check pipeline.reverse_template. The candidates are "
                            "in {}",
                            reverse_model.string(), ctx.unlabeled.size(), empty, skipped, (dir / "candidates.jsonl").string()));
  mark_stage_complete(dir, json{{"stage", "synthesis"},
                            {"reverse_model", reverse_model.string()},
                            {"unlabeled", ctx.unlabeled.size()},
                            {"candidates", out.size()},
                            {"empty", empty},
                            {"too_long", skipped},
                            {"generation", gen.to_json()},
                            {"seconds", seconds_since(t0)}});
}

}  // namespace mt::pipeline
