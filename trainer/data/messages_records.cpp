// The messages format (see conversation_records.h): OpenAI {role, content} lists, content parts
// included, and ShareGPT {from, value} lists, with their role names mapped to system / user /
// assistant; a record's system field (else the config's prompt) is added when it has no system turn.
#include <fmt/format.h>

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

}  // namespace

void read_messages_record(const DataSourceConfig& c, const json& obj, const std::string& where,
                          const EmitFn& emit) {
  const bool openai = obj.contains(c.messages_field);
  if (!openai && !obj.contains(c.sharegpt_field))
    throw Error(fmt::format("{}: missing field '{}' (or '{}')", where, c.messages_field, c.sharegpt_field));
  const std::string& list_field = openai ? c.messages_field : c.sharegpt_field;
  const std::string& role_key = openai ? c.role_field : c.sharegpt_role_field;
  const std::string& content_key = openai ? c.content_field : c.sharegpt_content_field;
  const json& list = get_array(obj, list_field, where);
  Conversation conv;
  conv.where = where;
  bool has_system = false, has_assistant = false;
  for (size_t k = 0; k < list.size(); ++k) {
    const std::string mw = fmt::format("{} {}[{}]", where, list_field, k);
    if (!list[k].is_object()) throw Error(fmt::format("{}: must be an object, got {}", mw, json_type(list[k])));
    const std::string raw_role = *get_string(list[k], role_key, mw, true);
    const auto role = normalize_role(raw_role);
    if (!role) throw Error(fmt::format("{}: unknown role '{}'", mw, printable(raw_role)));
    has_system |= *role == "system";
    has_assistant |= *role == "assistant";
    conv.messages.push_back({*role, message_content(list[k], content_key, mw)});
  }
  if (!has_system) {
    std::optional<std::string> system = get_string(obj, c.system_field, where, false);
    if (!system && !c.system_prompt.empty()) system = c.system_prompt;
    if (system) conv.messages.insert(conv.messages.begin(), ChatMessage{"system", *system});
  }
  conv.prompts_only = !has_assistant;
  emit(std::move(conv));
}

}  // namespace mt
