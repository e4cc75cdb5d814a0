// Evaluation during training: the eval split carved out of the training data (data.eval_fraction)
// and the mean token loss over eval batches, with the alignment scorer's retrieval accuracy and
// score gap when one is trained, reduced over all ranks.
#pragma once
#include <cmath>
#include <cstdint>
#include <utility>

#include "models/transformer.h"
#include "trainer/data/data_loader.h"
#include "trainer/data/examples.h"
#include "trainer/dist/distributed.h"
#include "trainer/engine/alignment.h"
#include "trainer/engine/train_step.h"

namespace mt {

// Examples of `data` split into (train, eval) by a per-example coin of probability `fraction`
// drawn from (seed, index): the same split on every machine and every resume.
std::pair<TokenizedDataset, TokenizedDataset> split_eval(const DatasetView& data, double fraction, uint64_t seed);

struct EvalResult {
  double loss = 0;
  int64_t tokens = 0;
  // With an alignment scorer: in-batch top-1 retrieval accuracy and score gap over eval pairs.
  double align_acc = std::nan(""), score_gap = std::nan("");
};

// `options` are the training loader's (shuffling is turned off); max_batches <= 0 means all of them.
// `scorer` may be null (no alignment terms).
EvalResult evaluate(const Transformer& master, const DatasetView& data, LoaderOptions options, int64_t max_batches,
                    const StepOptions& step_options, const DistEnv& dist, const AlignmentScorer* scorer);

}  // namespace mt
