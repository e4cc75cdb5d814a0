// Turns one JSONL record into the token ids `generate` and `score` work on: either ids given
// directly (prompt_ids / target_ids), plain text (prompt / target: BOS + prompt, target encoded on
// its own), or an instruction pair (instruction / response) rendered with the model's chat
// template, so the target is exactly what the model is trained to emit, end-of-turn included.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/tokenizer.h"

namespace mt {

struct TextContext {
  const Tokenizer* tokenizer = nullptr;  // required for text fields
  std::string tokenizer_error;           // why there is none (shown when a record needs one)
  std::string chat_template;             // required for instruction fields
};

// Prompt ids for generation from {"prompt_ids"}, {"prompt"}, {"instruction"} or {"turns"} (the first
// turn's prompt; see chat_turns_from_json). `where` = "FILE:LINE".
std::vector<int64_t> generation_prompt_from_json(const nlohmann::json& obj, const TextContext& ctx,
                                                 const std::string& where);

// A multi-turn request, MT-Bench's question format: {"turns": [q1, q2, ...]} and an optional
// "system": user turns asked one after another, each after the model's answer to the one before.
struct ChatTurns {
  std::string system;              // "" = none
  std::vector<std::string> turns;  // at least one
};
// The record's turns when it has a "turns" field, else nullopt; a bad one throws naming `where`.
std::optional<ChatTurns> chat_turns_from_json(const nlohmann::json& obj, const std::string& where);
// The generation prompt of turn answers.size(): the system prompt, the user turns before it with
// the model's answers to them (as text, so the conversation renders exactly as a chat client would
// send it back), then that turn and the assistant opening.
std::vector<int64_t> chat_turn_prompt(const ChatTurns& request, const std::vector<std::string>& answers,
                                      const TextContext& ctx, const std::string& where);

// Prompt and target ids for scoring from {"prompt_ids","target_ids"}, {"prompt","target"} or
// {"instruction","response"}.
std::pair<std::vector<int64_t>, std::vector<int64_t>> score_pair_from_json(const nlohmann::json& obj,
                                                                           const TextContext& ctx,
                                                                           const std::string& where);

// The ids generation stops at unless told otherwise: the model's `eos_ids`, and when some record
// is an {"instruction"} or {"turns"} prompt (rendered with ctx's chat template) the template's end of turn and
// the tokenizer's EOS too (chat_stop_ids), since that is what the model learned to end a turn with.
std::vector<int64_t> default_stop_ids(const std::vector<int64_t>& eos_ids, const TextContext& ctx,
                                      const std::vector<nlohmann::json>& records);

// Copies the record's id field, the first of "id", "key" and "question_id" it has (benchmark files
// name their items so), into an output line, so that answers can be joined back to questions.
void copy_record_id(const nlohmann::json& record, nlohmann::json& out);

// True when the record uses text rather than ids (so the caller knows to load a tokenizer).
bool json_uses_text(const nlohmann::json& obj);

}  // namespace mt
