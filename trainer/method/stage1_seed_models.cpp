// Stage 1: the forward model on the seed pairs and the reverse model on the swapped pairs, and their
// held-out losses.
#include "trainer/method/stages.h"

#include <fmt/format.h>

#include "models/atomic_file.h"
#include "models/error.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"
#include "trainer/method/stage_training.h"

namespace mt::pipeline {

void run_stage1(const Context& ctx) {
  const fs::path dir = stage1_dir(ctx);
  if (stage_complete(dir)) return;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Turns> fwd, rev;
  for (const auto& p : ctx.seed) {
    fwd.push_back(forward_turns(ctx, p));
    rev.push_back(reverse_turns(ctx, p));
  }
  write_conversations(dir / "forward_train.jsonl", fwd);
  write_conversations(dir / "reverse_train.jsonl", rev);
  const int64_t steps = ctx.config.pipeline.seed_steps;
  const fs::path f = train_stage_model(ctx, dir / "forward", {{dir / "forward_train.jsonl", false}}, {}, steps, -1, "seed",
                                       "stage1.forward");
  const fs::path r = train_stage_model(ctx, dir / "reverse", {{dir / "reverse_train.jsonl", false}}, {}, steps, -1, "seed",
                                       "stage1.reverse");
  Throughput tp;
  const double lf = heldout_nll(ctx, f, heldout_pairs(ctx), false, dir / "heldout_forward", tp, "stage1.heldout");
  const double lr = heldout_nll(ctx, r, heldout_pairs(ctx), true, dir / "heldout_reverse", tp, "stage1.heldout");
  log(fmt::format("stage 1: seed models trained; held-out mean NLL forward {:.4f}, reverse {:.4f}", lf, lr));
  mark_stage_complete(dir, json{{"stage", "seed_models"},
                            {"seed_pairs", ctx.seed.size()},
                            {"steps", steps},
                            {"heldout_nll", {{"forward", number_or_null(lf)}, {"reverse", number_or_null(lr)}}},
                            {"scoring", tp.to_json()},
                            {"seconds", seconds_since(t0)}});
}

}  // namespace mt::pipeline
