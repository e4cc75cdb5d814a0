// read_conversations (see data_formats.h): resolves the format, reads the file's records with the
// reader of that format under the malformed-record policy, and keeps the non-empty conversations.
#include <fmt/format.h>

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
  else if (c.format == "prompts")
    reader = read_prompts_record;
  if (reader) return [&c, &emit, reader](const json& obj, const std::string& where) { reader(c, obj, where, emit); };
  return [&c, &answers, &emit](const json& obj, const std::string& where) {  // mt_bench
    read_mt_bench_record(c, answers, obj, where, emit);
  };
}

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

  for_each_record(c.path, c, policy, mine, record_reader(c, answers, emit));
  if (out.empty())
    throw Error(fmt::format("{}: no usable records ({})", c.path.string(), mine.summary()));
  stats.merge(mine);
  return out;
}

}  // namespace mt
