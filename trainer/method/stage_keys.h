// Stage keys: for each stage of a pipeline config, a hash of the previous stage's key and of the
// config parts the stage reads. Two runs whose keys agree up to stage s compute the same stages up to
// s, which is what lets sweeps copy finished stages between runs (trainer/sweep/).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "trainer/config/config.h"

namespace mt {

// The stages `config` runs, in order, as (stage folder name, key): stage0_demo (only with
// demo.enabled), stage1_seed_models, stage2_round_1..K, stage3_synthesis, stage4_filter,
// stage5_final. A stage's key is a hash of the previous stage's key and of the config parts the
// stage reads: each key of the YAML of pipeline_config_to_yaml counts from the stage the schema's
// first-reader column names (trainer/config/schema_keys.cpp; a key this build does not know goes into
// stage 1's key); output.*, logging.* and other keys that do not change results are in no key. Two runs whose stage keys agree up to stage s
// compute the same stages up to s (sweeps reuse them, trainer/sweep/sweep.h). With the demo on, stage 0
// also reads model.path and the prompt texts its tokenizer learns. The alignment section, when
// present, counts for stage 1, the rounds and stage 5 as its `stages` list says (seed, rounds, final).
// The keys cover the config, not the content of the files it names.
std::vector<std::pair<std::string, std::string>> pipeline_stage_keys(const PipelineConfig& config);
// The same from a resolved config's YAML (pipeline_config_to_yaml's output, possibly with sections this
// build does not know).
std::vector<std::pair<std::string, std::string>> pipeline_stage_keys_of_yaml(const std::string& resolved_yaml);

}  // namespace mt
