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

namespace mt {

struct PipelineOutcome {
  std::filesystem::path run_dir;
  std::filesystem::path report;  // report/report.md
  bool complete = false;         // false: stopped by a signal (resume with --resume)
};

// Throws mt::Error naming every inconsistency between the pipeline's sections (rules that are not
// compared, templates without their placeholders, a weight out of range, ...).
void check_pipeline_config(const TrainConfig& config);

// Runs the pipeline of `config` in config.output.run_dir. resume = false refuses a run directory
// that already holds a pipeline; resume = true continues it (a changed config is refused, naming
// the keys). Progress goes to stderr.
PipelineOutcome run_pipeline(const TrainConfig& config, bool resume);

// The stages `config` runs, in order, as (stage folder name, key): stage0_demo (only with
// demo.enabled), stage1_seed_models, stage2_round_1..K, stage3_synthesis, stage4_filter,
// stage5_final. A stage's key is a hash of the previous stage's key and of the config parts the
// stage reads (taken by name from the YAML of train_config_to_yaml, so sections added later count
// without code changes: an unknown section goes into stage 1's key); output.*, logging.* and other
// keys that do not change results are in no key. Two runs whose stage keys agree up to stage s
// compute the same stages up to s (sweeps reuse them, trainer/sweep/sweep.h). With the demo on, stage 0
// also reads model.path and the prompt texts its tokenizer learns. The alignment section, when
// present, counts for stage 1, the rounds and stage 5 as its `stages` list says (seed, rounds, final).
// The keys cover the config, not the content of the files it names.
std::vector<std::pair<std::string, std::string>> pipeline_stage_keys(const TrainConfig& config);
// The same from a resolved config's YAML (train_config_to_yaml's output, possibly with sections this
// build does not know).
std::vector<std::pair<std::string, std::string>> pipeline_stage_keys_of_yaml(const std::string& resolved_yaml);

}  // namespace mt
