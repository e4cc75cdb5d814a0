// Training one model of a stage: an ordinary run_training run in a sub-folder of the stage (so it
// resumes from its checkpoints), on the stage's conversation files, from the base or a previous
// model, with the stage's alpha and the alignment terms where alignment.stages names the stage.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/method/stage_context.h"

namespace mt::pipeline {

struct TrainSource {
  fs::path file;
  bool synthetic = false;
};

// Thrown when a stage training was stopped by a signal (the pipeline then stops, resumable).
struct StageStopped {};

// Trains (or resumes, or skips when done) one model of a stage; returns its final/ dir. `kind` is
// the stage as alignment.stages names it (seed, rounds, final).
fs::path train_stage_model(const Context& ctx, const fs::path& dir, const std::vector<TrainSource>& sources,
                           const fs::path& init_from, int64_t steps, double alpha, const std::string& kind,
                           const std::string& what);

// Held-out mean NLL of a model in one direction over pairs (NaN when there are none).
double heldout_nll(const Context& ctx, const fs::path& model_dir, const std::vector<Pair>& pairs, bool reverse,
                   const fs::path& dir, Throughput& tp, const std::string& what);

}  // namespace mt::pipeline
