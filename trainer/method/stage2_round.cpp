// Stage 2, round k: the reverse model writes instructions for the seed responses and the forward
// model responses for the seed instructions; each retrains on real + the other's synthetic pairs
// weighted by alpha_k.
#include "trainer/method/stages.h"

#include <fmt/format.h>

#include "models/atomic_file.h"
#include "models/error.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"
#include "trainer/base/random.h"
#include "trainer/method/alpha_schedule.h"
#include "trainer/method/chunked_inference.h"
#include "trainer/method/stage_training.h"

namespace mt::pipeline {

void run_round(const Context& ctx, int64_t k) {
  const fs::path dir = round_dir(ctx, k);
  if (stage_complete(dir)) return;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto& rc = ctx.config.rounds;
  const fs::path prev_f = model_of_round(ctx, k - 1, false), prev_r = model_of_round(ctx, k - 1, true);
  SamplingConfig s;
  s.greedy = false;
  s.temperature = rc.temperature;
  s.top_p = rc.top_p;
  s.max_new_tokens = rc.max_new_tokens;
  s.seed = mix_seed(static_cast<uint64_t>(ctx.config.training.seed), 0x726f756e64ull, static_cast<uint64_t>(k));
  // The reverse model writes instructions for the seed responses, the forward model responses for
  // the seed instructions.
  std::vector<std::vector<int64_t>> rev_prompts, fwd_prompts;
  for (const auto& p : ctx.seed) {
    Turns rt = reverse_turns(ctx, p);
    rev_prompts.push_back(generation_prompt(ctx, rt));
    fwd_prompts.push_back(generation_prompt(ctx, forward_turns(ctx, p)));
  }
  Throughput gen, score;
  const auto instr_hat = generate_chunked(ctx, dir / "gen_instructions", prev_r, rev_prompts, s, gen,
                                          fmt::format("stage2.round{}.instructions", k));
  const auto resp_hat = generate_chunked(ctx, dir / "gen_responses", prev_f, fwd_prompts, s, gen,
                                         fmt::format("stage2.round{}.responses", k));
  std::vector<Pair> syn_forward, syn_reverse;  // (I_hat, R) for the forward model; (I, R_hat) for the reverse
  int64_t empty_instr = 0, empty_resp = 0;
  for (size_t i = 0; i < ctx.seed.size(); ++i) {
    if (instr_hat[i].text.empty()) ++empty_instr;
    else syn_forward.push_back({instr_hat[i].text, ctx.seed[i].response});
    if (resp_hat[i].text.empty()) ++empty_resp;
    else syn_reverse.push_back({ctx.seed[i].instruction, resp_hat[i].text});
  }
  write_pairs(dir / "synthetic_forward.jsonl", syn_forward);
  write_pairs(dir / "synthetic_reverse.jsonl", syn_reverse);
  // alpha_k per model; adaptive compares the model's loss on its synthetic pairs with held-out real pairs.
  double alpha_f = 0, alpha_r = 0, syn_nll_f = std::nan(""), syn_nll_r = std::nan(""), real_nll_f = std::nan(""),
         real_nll_r = std::nan("");
  if (rc.alpha_schedule == "adaptive") {
    real_nll_f = heldout_nll(ctx, prev_f, heldout_pairs(ctx), false, dir / "adaptive_real_forward", score, "stage2.adaptive");
    real_nll_r = heldout_nll(ctx, prev_r, heldout_pairs(ctx), true, dir / "adaptive_real_reverse", score, "stage2.adaptive");
    syn_nll_f = heldout_nll(ctx, prev_f, syn_forward, false, dir / "adaptive_syn_forward", score, "stage2.adaptive");
    syn_nll_r = heldout_nll(ctx, prev_r, syn_reverse, true, dir / "adaptive_syn_reverse", score, "stage2.adaptive");
  }
  alpha_f = round_alpha(rc, k, real_nll_f, syn_nll_f);
  alpha_r = round_alpha(rc, k, real_nll_r, syn_nll_r);
  std::vector<Turns> fwd_syn, rev_syn;
  for (const auto& p : syn_forward) fwd_syn.push_back(forward_turns(ctx, p));
  for (const auto& p : syn_reverse) rev_syn.push_back(reverse_turns(ctx, p));
  std::vector<TrainSource> fsrc{{stage1_dir(ctx) / "forward_train.jsonl", false}};
  std::vector<TrainSource> rsrc{{stage1_dir(ctx) / "reverse_train.jsonl", false}};
  if (!fwd_syn.empty()) {
    write_conversations(dir / "forward_synthetic_train.jsonl", fwd_syn);
    fsrc.push_back({dir / "forward_synthetic_train.jsonl", true});
  }
  if (!rev_syn.empty()) {
    write_conversations(dir / "reverse_synthetic_train.jsonl", rev_syn);
    rsrc.push_back({dir / "reverse_synthetic_train.jsonl", true});
  }
  if (fwd_syn.empty() || rev_syn.empty())
    log(fmt::format("stage 2 round {}: warning: {} synthetic instructions and {} synthetic responses were empty; a "
                    "model without synthetic pairs retrains on the seed pairs only",
                    k, empty_instr, empty_resp));
  const bool restart = rc.init == "restart";
  const fs::path f = train_stage_model(ctx, dir / "forward", fsrc, restart ? fs::path() : prev_f, rc.steps,
                                       fwd_syn.empty() ? -1.0 : alpha_f, "rounds", fmt::format("stage2.round{}.forward", k));
  const fs::path r = train_stage_model(ctx, dir / "reverse", rsrc, restart ? fs::path() : prev_r, rc.steps,
                                       rev_syn.empty() ? -1.0 : alpha_r, "rounds", fmt::format("stage2.round{}.reverse", k));
  const double lf = heldout_nll(ctx, f, heldout_pairs(ctx), false, dir / "heldout_forward", score, "stage2.heldout");
  const double lr = heldout_nll(ctx, r, heldout_pairs(ctx), true, dir / "heldout_reverse", score, "stage2.heldout");
  log(fmt::format("stage 2 round {}: alpha forward {:.3f}, reverse {:.3f}; held-out mean NLL forward {:.4f}, reverse "
                  "{:.4f}; generation {:.0f} tok/s",
                  k, alpha_f, alpha_r, lf, lr, gen.per_second()));
  mark_stage_complete(dir, json{{"stage", "mutual_round"},
                            {"round", k},
                            {"alpha", {{"forward", alpha_f}, {"reverse", alpha_r}}},
                            {"adaptive_inputs",
                             {{"real_nll_forward", number_or_null(real_nll_f)}, {"synthetic_nll_forward", number_or_null(syn_nll_f)},
                              {"real_nll_reverse", number_or_null(real_nll_r)}, {"synthetic_nll_reverse", number_or_null(syn_nll_r)}}},
                            {"synthetic_pairs", {{"forward", syn_forward.size()}, {"reverse", syn_reverse.size()}}},
                            {"empty", {{"instructions", empty_instr}, {"responses", empty_resp}}},
                            {"init", rc.init},
                            {"steps", rc.steps},
                            {"heldout_nll", {{"forward", number_or_null(lf)}, {"reverse", number_or_null(lr)}}},
                            {"generation", gen.to_json()},
                            {"scoring", score.to_json()},
                            {"seconds", seconds_since(t0)}});
}

}  // namespace mt::pipeline
