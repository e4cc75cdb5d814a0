// The messages format (see conversation_records.h): OpenAI {role, content} lists, content parts
// included, and ShareGPT {from, value} lists, with their role names mapped to system / user /
// assistant; a record's system field (else the config's prompt) is added when it has no system turn.
// Tool turns, tool calls and tool definitions are errors: no chat template here renders them.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>

#include "models/error.h"
#include "trainer/data/conversation_records.h"
#include "trainer/data/record_fields.h"
#include "trainer/data/text_chars.h"

namespace mt {

using json = nlohmann::json;

namespace {

// OpenAI content: a string, or a list of parts of which only {"type": "text", "text": ...} are accepted.
std::string message_content(const json& m, const std::string& key, const std::string& where) {
  auto it = m.find(key);
  if (it != m.end() && it->is_array()) {
    std::string out;
    for (size_t k = 0; k < it->size(); ++k) {
      const json& part = (*it)[k];
      const std::string pw = fmt::format("{} part {}", where, k);
      if (!part.is_object()) throw Error(fmt::format("{}: content parts must be objects", pw));
      const auto type = get_string(part, "type", pw, true);
      if (*type != "text") throw Error(fmt::format("{}: content part of type '{}' is not supported", pw, *type));
      out += *get_string(part, "text", pw, true);
    }
    return out;
  }
  return *get_string(m, key, where, true);
}

// OpenAI and ShareGPT role names -> "system" | "user" | "assistant"; nullopt for any other.
std::optional<std::string> normalize_role(const std::string& r) {
  if (r == "system") return "system";
  if (r == "user" || r == "human") return "user";
  if (r == "assistant" || r == "gpt" || r == "chatgpt" || r == "bard" || r == "bing" || r == "model") return "assistant";
  return std::nullopt;
}

// Roles of tool results and calls in OpenAI / TRL, LLaMA-3 and LLaMA-Factory ShareGPT data.
bool is_tool_role(const std::string& r) {
  return r == "tool" || r == "function" || r == "ipython" || r == "observation" || r == "function_call";
}

// Present and not null or empty: a field that would carry tool material.
bool has_value(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && !it->is_null() && !(it->is_array() && it->empty());
}

std::string no_tool_templates() {
  return fmt::format("no chat template here ({}) has a tool role", fmt::join(chat_template_names(), ", "));
}

}  // namespace

std::vector<ChatMessage> read_message_list(const json& list, const std::string& role_key,
                                           const std::string& content_key, const std::string& list_where) {
  std::vector<ChatMessage> out;
  for (size_t k = 0; k < list.size(); ++k) {
    const std::string mw = fmt::format("{}[{}]", list_where, k);
    if (!list[k].is_object()) throw Error(fmt::format("{}: must be an object, got {}", mw, json_type(list[k])));
    const std::string raw_role = *get_string(list[k], role_key, mw, true);
    if (is_tool_role(raw_role))
      throw Error(fmt::format("{}: role '{}' (a tool turn) is not supported: {}", mw, printable(raw_role),
                              no_tool_templates()));
    if (has_value(list[k], "tool_calls"))
      throw Error(fmt::format("{}: tool_calls are not supported: {}", mw, no_tool_templates()));
    const auto role = normalize_role(raw_role);
    if (!role) throw Error(fmt::format("{}: unknown role '{}'", mw, printable(raw_role)));
    out.push_back({*role, message_content(list[k], content_key, mw)});
  }
  return out;
}

void add_system_prompt(const DataSourceConfig& c, const json& obj, const std::string& where,
                       std::vector<ChatMessage>& messages) {
  for (const auto& m : messages)
    if (m.role == "system") return;
  std::optional<std::string> system = get_string(obj, c.system_field, where, false);
  if (!system && !c.system_prompt.empty()) system = c.system_prompt;
  if (system) messages.insert(messages.begin(), ChatMessage{"system", *system});
}

void read_messages_record(const DataSourceConfig& c, const json& obj, const std::string& where,
                          const EmitFn& emit) {
  const bool openai = obj.contains(c.messages_field);
  if (!openai && !obj.contains(c.sharegpt_field))
    throw Error(fmt::format("{}: missing field '{}' (or '{}')", where, c.messages_field, c.sharegpt_field));
  if (has_value(obj, "tools"))
    throw Error(fmt::format("{}: field 'tools' (tool definitions) is not supported: {}", where, no_tool_templates()));
  const std::string& list_field = openai ? c.messages_field : c.sharegpt_field;
  Conversation conv;
  conv.where = where;
  conv.messages = read_message_list(get_array(obj, list_field, where), openai ? c.role_field : c.sharegpt_role_field,
                                    openai ? c.content_field : c.sharegpt_content_field,
                                    fmt::format("{} {}", where, list_field));
  conv.prompts_only = std::none_of(conv.messages.begin(), conv.messages.end(),
                                   [](const ChatMessage& m) { return m.role == "assistant"; });
  add_system_prompt(c, obj, where, conv.messages);
  emit(std::move(conv));
}

}  // namespace mt
