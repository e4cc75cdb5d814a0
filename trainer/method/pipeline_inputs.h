// Reading the pipeline's inputs: the seed and held-out pairs (the first user turn and the first
// assistant turn after it of each conversation, in any supported data format) and the unlabeled
// responses (text segments, or the responses of pair-format sources).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/data_formats.h"
#include "trainer/method/stage_context.h"

namespace mt::pipeline {

// Pairs whose instruction or response is blank are counted in *skipped (when given) and left out.
std::vector<Pair> read_pairs(const std::vector<DataSourceConfig>& sources, const std::string& what, int64_t* skipped);
std::vector<std::string> read_unlabeled(const std::vector<DataSourceConfig>& sources);

}  // namespace mt::pipeline
