// The pipeline's seed, held-out and unlabeled inputs (see pipeline_inputs.h).
#include "trainer/method/pipeline_inputs.h"

#include <fmt/format.h>

#include "models/error.h"

namespace mt::pipeline {

namespace {

std::string source_format(const DataSourceConfig& source) {
  return source.format == "auto" ? detect_format(source.path) : source.format;
}

}  // namespace

std::vector<Pair> read_pairs(const std::vector<DataSourceConfig>& sources, const std::string& what, int64_t* skipped) {
  std::vector<Pair> pairs;
  for (const auto& source : sources) {
    if (is_unlabeled_format(source_format(source)))
      throw Error(fmt::format("{}: {} must be instruction-response pairs, not unlabeled text (format {})",
                              source.path.string(), what, source_format(source)));
    for (const auto& conv : read_conversations(source)) {
      std::string instruction, response;
      bool have_user = false;
      for (const auto& m : conv.messages) {
        if (m.role == "user" && !have_user) {
          instruction = m.content;
          have_user = true;
        } else if (m.role == "assistant" && have_user) {
          response = m.content;
          break;
        }
      }
      if (trim(instruction).empty() || trim(response).empty()) {
        if (skipped) ++*skipped;
        continue;
      }
      pairs.push_back({trim(instruction), trim(response)});
    }
  }
  return pairs;
}

std::vector<std::string> read_unlabeled(const std::vector<DataSourceConfig>& sources) {
  std::vector<std::string> out;
  for (const auto& source : sources) {
    DataStats stats;
    if (is_unlabeled_format(source_format(source))) {
      for (auto& seg : read_text_segments(source, &stats))
        if (!trim(seg.text).empty()) out.push_back(trim(seg.text));
    } else {
      int64_t skipped = 0;
      for (auto& p : read_pairs({source}, "pipeline.unlabeled", &skipped)) out.push_back(p.response);
    }
  }
  return out;
}

}  // namespace mt::pipeline
