// Single-turn conversation formats (see conversation_records.h): alpaca, alpaca_seed (one
// conversation per instance), prompt_response, TRL's prompt_completion (plain strings or message
// lists) and prompts (no response: generation only; TRL's conversational prompts too); each with
// the record's optional system field, else the config's system prompt.
#include <fmt/format.h>

#include <optional>

#include "models/error.h"
#include "trainer/data/conversation_records.h"
#include "trainer/data/record_fields.h"
#include "trainer/data/text_chars.h"

namespace mt {

using json = nlohmann::json;

namespace {

// "instruction" + "\n\n" + "input", leaving out an empty part.
std::string join_instruction(const std::string& instruction, const std::string& input) {
  if (is_blank(input)) return instruction;
  if (is_blank(instruction)) return input;
  return instruction + "\n\n" + input;
}

// [system], user, and the response as assistant (none: a prompts-only conversation).
Conversation make_conversation(const DataSourceConfig& c, const json& obj, const std::string& where,
                               const std::string& user, const std::optional<std::string>& response) {
  Conversation conv;
  conv.where = where;
  std::optional<std::string> system = get_string(obj, c.system_field, where, false);
  if (!system && !c.system_prompt.empty()) system = c.system_prompt;
  if (system) conv.messages.push_back({"system", *system});
  conv.messages.push_back({"user", user});
  if (response)
    conv.messages.push_back({"assistant", *response});
  else
    conv.prompts_only = true;
  return conv;
}

// A field that must be present and not null, of any type.
const json& required_field(const json& obj, const std::string& key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) throw Error(fmt::format("{}: missing field '{}'", where, key));
  return *it;
}

// TRL conversational prompt-completion: the prompt's turns (system, user, and earlier assistant
// answers, kept as context: TRL trains on the completion only), then the completion's assistant turns.
Conversation conversational_pair(const DataSourceConfig& c, const json& obj, const std::string& where,
                                 const json& prompt, const json& completion) {
  Conversation conv;
  conv.where = where;
  const std::string pw = fmt::format("{} {}", where, c.prompt_field);
  const std::string cw = fmt::format("{} {}", where, c.completion_field);
  conv.messages = read_message_list(prompt, c.role_field, c.content_field, pw);
  const std::vector<ChatMessage> answer = read_message_list(completion, c.role_field, c.content_field, cw);
  if (answer.empty()) throw Error(fmt::format("{}: field '{}' is an empty list", where, c.completion_field));
  for (size_t k = 0; k < answer.size(); ++k)
    if (answer[k].role != "assistant")
      throw Error(fmt::format("{}[{}]: role '{}' in the completion, which holds the assistant's answer", cw, k,
                              answer[k].role));
  add_system_prompt(c, obj, where, conv.messages);
  // Up to the prompt's last assistant turn, the conversation is context (without one, the prompt's
  // turns hold nothing to train on anyway).
  for (size_t k = conv.messages.size(); k > 0; --k)
    if (conv.messages[k - 1].role == "assistant") {
      conv.context_messages = k;
      break;
    }
  conv.messages.insert(conv.messages.end(), answer.begin(), answer.end());
  return conv;
}

}  // namespace

void read_alpaca_record(const DataSourceConfig& c, const json& obj, const std::string& where, const EmitFn& emit) {
  const std::string instruction = *get_string(obj, c.instruction_field, where, true);
  const std::string input = get_string(obj, c.input_field, where, false).value_or("");
  const std::string output = *get_string(obj, c.output_field, where, true);
  emit(make_conversation(c, obj, where, join_instruction(instruction, input), output));
}

void read_alpaca_seed_record(const DataSourceConfig& c, const json& obj, const std::string& where,
                             const EmitFn& emit) {
  const std::string instruction = *get_string(obj, c.instruction_field, where, true);
  const json& instances = get_array(obj, c.instances_field, where);
  if (instances.empty()) throw Error(fmt::format("{}: field '{}' is an empty list", where, c.instances_field));
  std::vector<Conversation> convs;  // all or nothing: a bad instance makes the record malformed
  for (size_t k = 0; k < instances.size(); ++k) {
    const std::string iw = fmt::format("{} instance {}", where, k);
    if (!instances[k].is_object())
      throw Error(fmt::format("{}: must be an object, got {}", iw, json_type(instances[k])));
    const std::string input = get_string(instances[k], c.input_field, iw, false).value_or("");
    const std::string output = *get_string(instances[k], c.output_field, iw, true);
    convs.push_back(make_conversation(c, obj, iw, join_instruction(instruction, input), output));
  }
  for (auto& conv : convs) emit(std::move(conv));
}

void read_prompt_response_record(const DataSourceConfig& c, const json& obj, const std::string& where,
                                 const EmitFn& emit) {
  const std::string prompt = *get_string(obj, c.prompt_field, where, true);
  const std::string response = *get_string(obj, c.response_field, where, true);
  emit(make_conversation(c, obj, where, prompt, response));
}

void read_prompt_completion_record(const DataSourceConfig& c, const json& obj, const std::string& where,
                                   const EmitFn& emit) {
  const json& prompt = required_field(obj, c.prompt_field, where);
  const json& completion = required_field(obj, c.completion_field, where);
  if (prompt.is_string() && completion.is_string())
    emit(make_conversation(c, obj, where, prompt.get<std::string>(), completion.get<std::string>()));
  else if (prompt.is_array() && completion.is_array())
    emit(conversational_pair(c, obj, where, prompt, completion));
  else
    throw Error(fmt::format("{}: fields '{}' and '{}' must be both strings or both lists of messages, got {} and {}",
                            where, c.prompt_field, c.completion_field, json_type(prompt), json_type(completion)));
}

void read_prompts_record(const DataSourceConfig& c, const json& obj, const std::string& where, const EmitFn& emit) {
  const json& prompt = required_field(obj, c.prompt_field, where);
  if (!prompt.is_array()) {
    emit(make_conversation(c, obj, where, *get_string(obj, c.prompt_field, where, true), std::nullopt));
    return;
  }
  Conversation conv;  // TRL conversational prompt-only: its turns, for generation
  conv.where = where;
  conv.messages = read_message_list(prompt, c.role_field, c.content_field, fmt::format("{} {}", where, c.prompt_field));
  add_system_prompt(c, obj, where, conv.messages);
  conv.prompts_only = true;
  emit(std::move(conv));
}

}  // namespace mt
