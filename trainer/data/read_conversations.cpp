// read_conversations (see data_formats.h): resolves the format, reads the file's records with the
// reader of that format under the malformed-record policy, keeps the non-empty conversations, and
// tallies the records by shape (their set of keys) and use, for the per-source report.
#include <fmt/format.h>

#include <map>

#include "models/error.h"
#include "trainer/data/conversation_records.h"
#include "trainer/data/data_formats.h"
#include "trainer/data/format_detect.h"
#include "trainer/data/record_reader.h"
#include "trainer/data/text_chars.h"

namespace mt {

using json = nlohmann::json;

namespace {

// Empty: no user turn with text, or (when it has responses) no assistant turn with text.
bool conversation_is_empty(const Conversation& conv) {
  bool user = false, assistant = false;
  for (const auto& m : conv.messages) {
    if (m.role == "user" && !is_blank(m.content)) user = true;
    if (m.role == "assistant" && !is_blank(m.content)) assistant = true;
  }
  return !user || (!conv.prompts_only && !assistant);
}

// The record reader of c.format, a conversation format whose name is checked.
RecordFn record_reader(const DataSourceConfig& c, const MtBenchAnswers& answers, const EmitFn& emit) {
  using Reader = void (*)(const DataSourceConfig&, const json&, const std::string&, const EmitFn&);
  Reader reader = nullptr;
  if (c.format == "alpaca")
    reader = read_alpaca_record;
  else if (c.format == "alpaca_seed")
    reader = read_alpaca_seed_record;
  else if (c.format == "messages")
    reader = read_messages_record;
  else if (c.format == "prompt_response")
    reader = read_prompt_response_record;
  else if (c.format == "prompt_completion")
    reader = read_prompt_completion_record;
  else if (c.format == "prompts")
    reader = read_prompts_record;
  if (reader) return [&c, &emit, reader](const json& obj, const std::string& where) { reader(c, obj, where, emit); };
  return [&c, &answers, &emit](const json& obj, const std::string& where) {  // mt_bench
    read_mt_bench_record(c, answers, obj, where, emit);
  };
}

// Records by shape, in order of first appearance. Past kMaxShapes distinct key sets (data with
// free-form keys) the rest share one entry, so the report stays a few lines.
class ShapeTally {
 public:
  RecordShape& of(const json& obj) {
    std::string keys = record_keys(obj);
    auto it = index_.find(keys);
    if (it != index_.end()) return shapes_[it->second];
    if (shapes_.size() >= kMaxShapes) keys = "(other key sets)";
    auto [pos, added] = index_.emplace(keys, shapes_.size());
    if (added) {
      shapes_.emplace_back();
      shapes_.back().keys = keys;
    }
    return shapes_[pos->second];
  }
  std::vector<RecordShape> finish(const DataSourceConfig& c, int64_t file_records) {
    for (auto& s : shapes_) {
      s.file = c.path.string();
      s.format = c.format;
      s.file_records = file_records;
    }
    return std::move(shapes_);
  }

 private:
  static constexpr size_t kMaxShapes = 20;
  std::vector<RecordShape> shapes_;
  std::map<std::string, size_t> index_;
};

}  // namespace

std::vector<Conversation> read_conversations(const DataSourceConfig& config, DataStats* stats_out) {
  const DataSourceConfig c = with_format_resolved(config);
  if (is_unlabeled_format(c.format))
    throw Error(fmt::format("{}: format \"{}\" holds unlabeled text, not conversations", c.path.string(), c.format));
  DataStats local;
  DataStats& stats = stats_out ? *stats_out : local;
  DataStats mine;
  const Policy policy(c, &mine);
  MtBenchAnswers answers;
  if (c.format == "mt_bench" && !c.answers_path.empty()) answers = read_mt_bench_answers(c);

  std::vector<Conversation> out;
  const EmitFn emit = [&](Conversation conv) {
    if (conversation_is_empty(conv)) {
      ++mine.dropped_empty;
      return;
    }
    if (conv.prompts_only) ++mine.prompts_only;
    ++mine.conversations;
    out.push_back(std::move(conv));
  };

  // Each record's use, from the counts its reader moved: a training conversation, else prompts-only,
  // else empty; an error (before anything is emitted) makes it malformed.
  ShapeTally tally;
  const RecordFn read = record_reader(c, answers, emit);
  for_each_record(c.path, c, policy, mine, [&](const json& obj, const std::string& where) {
    RecordShape& shape = tally.of(obj);
    ++shape.records;
    const int64_t convs = mine.conversations, prompts = mine.prompts_only;
    try {
      if (auto kind = non_sft_kind(obj, c)) throw Error(fmt::format("{}: {}", where, *kind));
      read(obj, where);
    } catch (const Error&) {
      ++shape.malformed;
      throw;
    }
    if (mine.conversations - convs > mine.prompts_only - prompts)
      ++shape.trained;
    else if (mine.prompts_only > prompts)
      ++shape.prompts_only;
    else
      ++shape.empty;
  });
  mine.shapes = tally.finish(c, mine.read);
  if (out.empty())
    throw Error(fmt::format("{}: no usable records ({}){}", c.path.string(), mine.summary(),
                            mine.skipped_messages.empty() ? "" : "; the first skipped: " + mine.skipped_messages[0]));
  stats.merge(mine);
  return out;
}

}  // namespace mt
