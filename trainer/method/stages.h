// The MAIN pipeline's stages, one function each, in the order run_pipeline calls them (docs/method.md).
// Each returns at once when its stage.json says it is complete; otherwise it computes the stage in
// its folder and writes stage.json last. Internal to trainer/method/.
#pragma once
#include <cstdint>

#include "trainer/method/stage_context.h"

namespace mt::pipeline {

// stage0_demo/: the demo task suite and its SentencePiece tokenizer; points ctx's data at them.
void run_stage0_demo(Context& ctx);
// stage1_seed_models/: the forward model on the seed pairs, the reverse model on the swapped pairs.
void run_stage1(const Context& ctx);
// stage2_round_k/: each model writes the other's synthetic half; both retrain with alpha_k.
void run_round(const Context& ctx, int64_t k);
// stage3_synthesis/: the last reverse model writes instructions for the unlabeled responses.
void run_stage3(const Context& ctx);
// stage4_filter/: both directions score every candidate; the rules keep equal budgets.
void run_stage4(const Context& ctx);
// stage5_final/: a model per rule in final.models on seed + kept pairs; held-out NLL and accuracy.
void run_stage5(const Context& ctx);

}  // namespace mt::pipeline
