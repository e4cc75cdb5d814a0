// Stage completion records (see stage_record.h).
#include "trainer/method/stage_record.h"

#include <fmt/format.h>

#include "models/atomic_file.h"
#include "models/error.h"
#include "models/json_read.h"
#include "models/read_file.h"
#include "trainer/method/run_layout.h"

namespace mt {

nlohmann::json read_stage_record(const std::filesystem::path& stage_dir) {
  const std::filesystem::path file = stage_dir / kStageRecordFile;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return nullptr;
  const nlohmann::json j = parse_json_or_discarded(read_file(file, "stage record"));
  if (j.is_discarded() || !j.is_object())
    throw Error(fmt::format("{}: not valid JSON (a damaged stage record; remove the stage folder to redo the stage)",
                            file.string()));
  return j;
}

bool stage_complete(const std::filesystem::path& stage_dir) {
  const nlohmann::json j = read_stage_record(stage_dir);
  return j.is_object() && j.value("complete", false);
}

void mark_stage_complete(const std::filesystem::path& stage_dir, nlohmann::json record) {
  record["complete"] = true;
  write_text_file_atomically(stage_dir / kStageRecordFile, record.dump(2) + "\n");
}

}  // namespace mt
