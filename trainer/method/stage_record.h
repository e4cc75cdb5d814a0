// A stage's completion record: stage.json in its folder, written last and atomically, so a stage is
// complete exactly when the record says so. One answer for the pipeline, its report and sweeps: a
// missing record is "not complete"; a damaged one is an error naming the file, never a guess.
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>

namespace mt {

// The record of the stage in `stage_dir`, or null when there is none. Throws mt::Error naming the
// file when it cannot be read or is not a JSON object.
nlohmann::json read_stage_record(const std::filesystem::path& stage_dir);

// True when the stage's record says it is complete.
bool stage_complete(const std::filesystem::path& stage_dir);

// Writes the record with "complete": true (atomically: the last write of a stage).
void mark_stage_complete(const std::filesystem::path& stage_dir, nlohmann::json record);

}  // namespace mt
