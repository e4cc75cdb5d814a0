// The resume rule: which keys differ between a run's saved config and the resumed one and may not
// (every key not marked resume-safe in the schema; source lists compared entry by entry); for train
// at another world size, the batch keys as one product, the global batch.
#include <fmt/format.h>

#include "trainer/config/key_def.h"

namespace mt {
using namespace config_detail;

namespace {

std::vector<std::string> incompatibilities(const PipelineConfig& saved, const PipelineConfig& resumed, bool train_only) {
  std::vector<std::string> lines;
  for (const auto& key : config_keys()) {
    if (key.resume_safe || (train_only && !key.read_by_train)) continue;
    const Value before = key.get(saved), after = key.get(resumed);
    if (key.kind != Kind::Sources) {
      if (render(before) != render(after))
        lines.push_back(fmt::format("{}: {} -> {}", key.path, render(before), render(after)));
      continue;
    }
    // Lists of sources: entry by entry, so the line names the field that changed.
    const auto& a = std::get<std::vector<DataSourceConfig>>(before);
    const auto& b = std::get<std::vector<DataSourceConfig>>(after);
    if (a.size() != b.size()) {
      auto entries = [](size_t n) { return fmt::format("{} entr{}", n, n == 1 ? "y" : "ies"); };
      lines.push_back(fmt::format("{}: {} -> {}", key.path, entries(a.size()), entries(b.size())));
      continue;
    }
    for (size_t i = 0; i < a.size(); ++i)
      for (const auto& source_key : source_keys()) {
        if (source_key.resume_safe) continue;
        const std::string x = render(source_key.get(a[i])), y = render(source_key.get(b[i]));
        if (x != y) lines.push_back(fmt::format("{}[{}].{}: {} -> {}", key.path, i, source_key.path, x, y));
      }
  }
  return lines;
}

}  // namespace

std::vector<std::string> resume_incompatibilities(const TrainConfig& saved, const TrainConfig& resumed) {
  PipelineConfig a, b;
  static_cast<TrainConfig&>(a) = saved;
  static_cast<TrainConfig&>(b) = resumed;
  return incompatibilities(a, b, true);
}

std::vector<std::string> resume_incompatibilities(const TrainConfig& saved, const TrainConfig& resumed,
                                                  int64_t saved_world_size, int64_t world_size) {
  // The global batch is what an optimizer step means: the schedule (warmup, decay, total steps),
  // AdamW's bias correction and the step counter all count steps, and the data loader's rows of
  // step s are the rows [s*G, (s+1)*G) of the epoch whatever G's factors are. Rescaling the step
  // count or the schedule for another G would give a run no uninterrupted run is; refused.
  TrainConfig same_batch = resumed;
  same_batch.training.micro_batch_size = saved.training.micro_batch_size;
  same_batch.training.grad_accum_steps = saved.training.grad_accum_steps;
  std::vector<std::string> lines = resume_incompatibilities(saved, same_batch);
  const TrainingSection &a = saved.training, &b = resumed.training;
  const int64_t before = a.micro_batch_size * a.grad_accum_steps * saved_world_size;
  const int64_t after = b.micro_batch_size * b.grad_accum_steps * world_size;
  if (before != after) {
    std::string hint;
    if (before % (b.micro_batch_size * world_size) == 0)
      hint = fmt::format(" (training.grad_accum_steps={} keeps it)", before / (b.micro_batch_size * world_size));
    lines.push_back(fmt::format("the global batch, training.micro_batch_size x training.grad_accum_steps x ranks: "
                                "{} x {} x {} = {} -> {} x {} x {} = {} rows per optimizer step{}",
                                a.micro_batch_size, a.grad_accum_steps, saved_world_size, before, b.micro_batch_size,
                                b.grad_accum_steps, world_size, after, hint));
  }
  return lines;
}

std::vector<std::string> resume_incompatibilities(const PipelineConfig& saved, const PipelineConfig& resumed) {
  return incompatibilities(saved, resumed, false);
}

}  // namespace mt
