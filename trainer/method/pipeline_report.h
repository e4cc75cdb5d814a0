// The pipeline's report (stage 6): report/report.md (counts per stage, precision and accuracy per
// filter rule, held-out losses per model and round, score distributions, samples of kept and dropped
// pairs, throughput), SVG plots beside it, and report/summary.json for scripts — all read back from
// the stages' stage.json records and stage4_filter/scored.jsonl, so it can be rebuilt at any time.
#pragma once
#include <filesystem>

#include "trainer/config/config.h"

namespace mt {

void write_pipeline_report(const std::filesystem::path& run_dir, const PipelineConfig& config);

}  // namespace mt
