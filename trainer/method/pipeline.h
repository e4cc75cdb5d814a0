// `maintune pipeline`: the MAIN method end to end (docs/method.md). Stages, each in its own folder
// of the run directory and each recording its completion in stage.json:
//   stage0_demo/         (demo only) the task suite and its SentencePiece tokenizer
//   stage1_seed_models/  forward model on the seed pairs, reverse model on the swapped pairs
//   stage2_round_k/      mutual alignment round k: each model writes the other's synthetic half,
//                        both retrain on real + synthetic pairs weighted by alpha_k
//   stage3_synthesis/    the reverse model writes instructions for the unlabeled responses
//   stage4_filter/       both directions score every candidate; the filter rules keep equal budgets
//   stage5_final/        a model per chosen rule on seed + kept pairs; held-out accuracy
//   report/              report.md, SVG plots, summary.json
// Resume continues at the first unfinished stage; training resumes from its checkpoints and
// generation / scoring from their chunks (trainer/method/chunk_progress.h).
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "trainer/config/config.h"
#include "trainer/method/stage_keys.h"

namespace mt {

struct PipelineOutcome {
  std::filesystem::path run_dir;
  std::filesystem::path report;  // report/report.md
  bool complete = false;         // false: stopped by a signal (resume with --resume)
};

// Runs the pipeline of `config` in config.output.run_dir (check_pipeline_config first). resume = false refuses a run directory
// that already holds a pipeline; resume = true continues it (a changed config is refused, naming
// the keys). Progress goes to stderr.
PipelineOutcome run_pipeline(const PipelineConfig& config, bool resume);

}  // namespace mt
