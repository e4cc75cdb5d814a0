// JSONL records -> token ids for generate/score (see text_requests.h). Plain prompts get the
// tokenizer's BOS (as HF's add_special_tokens does for these families); chat-template prompts
// carry their own. Prompt and target are encoded separately, so the split is exact.
#include "trainer/data/text_requests.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/chat_template.h"
#include "models/error.h"
#include "trainer/base/jsonl.h"

namespace mt {
namespace {

std::string text_field(const nlohmann::json& obj, const char* key, const std::string& where) {
  const auto& v = obj[key];
  if (!v.is_string()) throw Error(fmt::format("{}: field '{}' must be a string", where, key));
  return v.get<std::string>();
}

const Tokenizer& need_tokenizer(const TextContext& ctx, const std::string& where) {
  if (ctx.tokenizer == nullptr)
    throw Error(fmt::format("{}: text fields need a tokenizer ({}; pass --tokenizer)", where,
                            ctx.tokenizer_error.empty() ? "none loaded" : ctx.tokenizer_error));
  return *ctx.tokenizer;
}

const std::string& need_template(const TextContext& ctx, const std::string& where) {
  if (ctx.chat_template.empty())
    throw Error(fmt::format("{}: 'instruction' needs a chat template; none was detected (pass --template)", where));
  return ctx.chat_template;
}

std::vector<int64_t> bos_plus(const Tokenizer& tok, const std::string& text) {
  std::vector<int64_t> ids;
  if (tok.special().bos >= 0) ids.push_back(tok.special().bos);
  std::vector<int64_t> body = tok.encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

// The chat-rendered prompt (user turn + assistant header) for an instruction.
std::vector<int64_t> instruction_prompt(const Tokenizer& tok, const std::string& tmpl, const std::string& instruction) {
  return render_chat(tok, tmpl, {{"user", instruction}}, false, /*add_generation_prompt=*/true).ids;
}

bool is_chat_request(const nlohmann::json& r) {
  return r.is_object() && (r.contains("instruction") || r.contains("turns"));
}

}  // namespace

std::vector<int64_t> default_stop_ids(const std::vector<int64_t>& eos_ids, const TextContext& ctx,
                                      const std::vector<nlohmann::json>& records) {
  const bool chat = std::any_of(records.begin(), records.end(), is_chat_request);
  if (!chat || ctx.tokenizer == nullptr || ctx.chat_template.empty()) return eos_ids;
  return chat_stop_ids(*ctx.tokenizer, ctx.chat_template, eos_ids);
}

void copy_record_id(const nlohmann::json& record, nlohmann::json& out) {
  for (const char* key : {"id", "key", "question_id"})
    if (record.contains(key)) {
      out[key] = record[key];
      return;
    }
}

bool json_uses_text(const nlohmann::json& obj) {
  return obj.contains("prompt") || obj.contains("instruction") || obj.contains("target") || obj.contains("response") ||
         obj.contains("turns");
}

std::optional<ChatTurns> chat_turns_from_json(const nlohmann::json& obj, const std::string& where) {
  if (!obj.contains("turns")) return std::nullopt;
  const auto& turns = obj["turns"];
  if (!turns.is_array() || turns.empty())
    throw Error(fmt::format("{}: field 'turns' must be a non-empty list of strings (the user turns)", where));
  ChatTurns request;
  for (size_t i = 0; i < turns.size(); ++i) {
    if (!turns[i].is_string())
      throw Error(fmt::format("{}: turns[{}] must be a string, got {}", where, i, turns[i].type_name()));
    request.turns.push_back(turns[i].get<std::string>());
  }
  if (obj.contains("system")) request.system = text_field(obj, "system", where);
  return request;
}

std::vector<int64_t> chat_turn_prompt(const ChatTurns& request, const std::vector<std::string>& answers,
                                      const TextContext& ctx, const std::string& where) {
  if (answers.size() >= request.turns.size())
    throw Error(fmt::format("{}: no turn {} to ask (the record has {})", where, answers.size() + 1, request.turns.size()));
  std::vector<ChatMessage> messages;
  if (!request.system.empty()) messages.push_back({"system", request.system});
  for (size_t i = 0; i < answers.size(); ++i) {
    messages.push_back({"user", request.turns[i]});
    messages.push_back({"assistant", answers[i]});
  }
  messages.push_back({"user", request.turns[answers.size()]});
  const std::string turn_where = fmt::format("{}: turn {}", where, answers.size() + 1);
  const Tokenizer& tok = need_tokenizer(ctx, turn_where);
  const std::string& tmpl = need_template(ctx, turn_where);
  try {
    return render_chat(tok, tmpl, messages, false, /*add_generation_prompt=*/true).ids;
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", turn_where, e.what()));
  }
}

std::vector<int64_t> generation_prompt_from_json(const nlohmann::json& obj, const TextContext& ctx,
                                                 const std::string& where) {
  const int given = int(obj.contains("prompt_ids")) + int(obj.contains("prompt")) + int(obj.contains("instruction")) +
                    int(obj.contains("turns"));
  if (given != 1)
    throw Error(fmt::format("{}: give exactly one of 'prompt_ids', 'prompt', 'instruction' or 'turns'", where));
  if (obj.contains("prompt_ids")) return json_token_ids(obj, "prompt_ids", where);
  if (const auto request = chat_turns_from_json(obj, where)) return chat_turn_prompt(*request, {}, ctx, where);
  if (obj.contains("prompt")) {
    const std::string prompt = text_field(obj, "prompt", where);
    return bos_plus(need_tokenizer(ctx, where), prompt);
  }
  const std::string instruction = text_field(obj, "instruction", where);
  return instruction_prompt(need_tokenizer(ctx, where), need_template(ctx, where), instruction);
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> score_pair_from_json(const nlohmann::json& obj,
                                                                           const TextContext& ctx,
                                                                           const std::string& where) {
  if (obj.contains("prompt_ids") || obj.contains("target_ids"))
    return {json_token_ids(obj, "prompt_ids", where), json_token_ids(obj, "target_ids", where)};
  if (obj.contains("prompt") || obj.contains("target")) {
    if (!obj.contains("prompt") || !obj.contains("target"))
      throw Error(fmt::format("{}: text scoring needs both 'prompt' and 'target'", where));
    const std::string prompt = text_field(obj, "prompt", where), target = text_field(obj, "target", where);
    const Tokenizer& tok = need_tokenizer(ctx, where);
    return {bos_plus(tok, prompt), tok.encode(target)};
  }
  if (obj.contains("instruction") || obj.contains("response")) {
    if (!obj.contains("instruction") || !obj.contains("response"))
      throw Error(fmt::format("{}: pair scoring needs both 'instruction' and 'response'", where));
    const std::string instruction = text_field(obj, "instruction", where);
    const std::string response = text_field(obj, "response", where);
    // The target is the assistant turn exactly as training renders and masks it, end-of-turn
    // token included, after the prompt generation would use.
    const Tokenizer& tok = need_tokenizer(ctx, where);
    const std::string& tmpl = need_template(ctx, where);
    ChatTurnSplit split = split_last_turn(tok, tmpl, {{"user", instruction}, {"assistant", response}});
    return {std::move(split.prompt), std::move(split.target)};
  }
  throw Error(fmt::format("{}: give 'prompt_ids'/'target_ids', 'prompt'/'target' or 'instruction'/'response'", where));
}

}  // namespace mt
