// The MAIN pipeline's run directory, named once: the stage folders, the completion record in each,
// the resolved config and the shared caches. The pipeline, its report, the stage keys and sweeps
// all take the names from here.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace mt {

inline constexpr const char* kPipelineConfigFile = "pipeline.yaml";  // the resolved config, written first
inline constexpr const char* kStageRecordFile = "stage.json";        // in each stage folder, written last
inline constexpr const char* kStage0Demo = "stage0_demo";
inline constexpr const char* kStage1SeedModels = "stage1_seed_models";
inline constexpr const char* kStage3Synthesis = "stage3_synthesis";
inline constexpr const char* kStage4Filter = "stage4_filter";
inline constexpr const char* kStage5Final = "stage5_final";
inline constexpr const char* kReportDir = "report";
inline constexpr const char* kReportSummaryFile = "summary.json";  // in report/, written last by the report
inline constexpr const char* kPipelineCacheDir = "cache";          // token caches shared by the stage trainings

// "stage2_round_K": mutual alignment round k (1-based).
inline std::string round_stage(int64_t k) { return "stage2_round_" + std::to_string(k); }

}  // namespace mt
