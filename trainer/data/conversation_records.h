// One record of a conversation format -> its conversations, one reader per format family:
// single-turn (alpaca, alpaca_seed, prompt_response, prompt_completion, prompts), messages
// (OpenAI / ShareGPT) and
// mt_bench (with FastChat answers). read_conversations (data_formats.h) picks one per file.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "trainer/data/data_formats.h"

namespace mt {

// Receives each conversation of a record. A reader throws mt::Error (naming `where`) before it emits
// anything from a bad record, so a malformed record is never half used.
using EmitFn = std::function<void(Conversation)>;

// mt_bench answers: question_id -> the answer turns of choices[0].
using MtBenchAnswers = std::map<int64_t, std::vector<std::string>>;

void read_alpaca_record(const DataSourceConfig& c, const nlohmann::json& obj, const std::string& where,
                        const EmitFn& emit);
void read_alpaca_seed_record(const DataSourceConfig& c, const nlohmann::json& obj, const std::string& where,
                             const EmitFn& emit);
void read_prompt_response_record(const DataSourceConfig& c, const nlohmann::json& obj, const std::string& where,
                                 const EmitFn& emit);
void read_prompts_record(const DataSourceConfig& c, const nlohmann::json& obj, const std::string& where,
                         const EmitFn& emit);
void read_prompt_completion_record(const DataSourceConfig& c, const nlohmann::json& obj, const std::string& where,
                                   const EmitFn& emit);
void read_messages_record(const DataSourceConfig& c, const nlohmann::json& obj, const std::string& where,
                          const EmitFn& emit);
// answers: from read_mt_bench_answers, empty when there is no answers file (prompts-only questions).
void read_mt_bench_record(const DataSourceConfig& c, const MtBenchAnswers& answers, const nlohmann::json& obj,
                          const std::string& where, const EmitFn& emit);

// A list of turns ({role_key, content_key} objects) with roles mapped to system / user / assistant;
// the turn K's place is "LIST_WHERE[K]". Unknown roles, tool turns and tool calls are errors.
std::vector<ChatMessage> read_message_list(const nlohmann::json& list, const std::string& role_key,
                                           const std::string& content_key, const std::string& list_where);

// Prepends the record's system field, else c.system_prompt, unless the messages have a system turn.
void add_system_prompt(const DataSourceConfig& c, const nlohmann::json& obj, const std::string& where,
                       std::vector<ChatMessage>& messages);

// The answers file c.answers_path, always under on_malformed = "fail".
MtBenchAnswers read_mt_bench_answers(const DataSourceConfig& c);

}  // namespace mt
