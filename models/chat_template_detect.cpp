// Which of our chat templates a tokenizer's own chat_template (tokenizer_config.json, else
// chat_template.jinja) is. There is no Jinja engine here: `from_model` recognises the text when it is
// one of the templates chat_template_jinja writes (the official ones of llama3, llama3.1, llama2,
// chatml and qwen2.5, our own for mistral and alpaca), compared after removing the whitespace Jinja
// itself does not render under transformers' settings; anything else is an error listing ours.
// `auto` (detect_chat_template) takes that answer first, else guesses from marks in the text.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string_view>

#include "models/chat_template.h"
#include "models/error.h"

namespace mt {

namespace {

bool is_jinja_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool starts(std::string_view s, size_t i, std::string_view what) { return s.compare(i, what.size(), what) == 0; }

// The template text less what Jinja, configured as transformers' apply_chat_template configures it
// (trim_blocks, lstrip_blocks, keep_trailing_newline off), would not render either, so two texts
// equal after it render the same for every input:
// - line ends: "\r\n" and "\r" become "\n" (Jinja's lexer normalises them, in text and strings);
// - whitespace before "{%-", "{{-", "{#-" and after "-%}", "-}}", "-#}" (whitespace control);
// - the spaces and tabs from a line's start to a "{%" or "{#" (lstrip_blocks; not before "{%+");
// - one newline right after a "%}" or "#}" (trim_blocks);
// - one newline at the end of the text (keep_trailing_newline is off).
// A copy of an official template that is re-indented, saved with CRLF or without its last newline
// is thus still that template; one with any other difference is not.
std::string jinja_text_as_rendered(std::string_view text) {
  std::string s;
  s.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\r') s += text[i];
    else if (i + 1 >= text.size() || text[i + 1] != '\n') s += '\n';
  }
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (starts(s, i, "{%-") || starts(s, i, "{{-") || starts(s, i, "{#-")) {
      while (!out.empty() && is_jinja_space(out.back())) out.pop_back();
    } else if ((starts(s, i, "{%") || starts(s, i, "{#")) && !starts(s, i, "{%+")) {
      size_t j = i, run = 0;  // spaces and tabs back to the line's start
      while (j > 0 && (s[j - 1] == ' ' || s[j - 1] == '\t')) --j, ++run;
      if (j == 0 || s[j - 1] == '\n')
        while (run-- > 0 && !out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
    }
    if (starts(s, i, "-%}") || starts(s, i, "-}}") || starts(s, i, "-#}")) {
      out.append(s, i, 3);
      i += 3;
      while (i < s.size() && is_jinja_space(s[i])) ++i;
      continue;
    }
    if (starts(s, i, "%}") || starts(s, i, "#}")) {
      out.append(s, i, 2);
      i += 2;
      if (i < s.size() && s[i] == '\n') ++i;
      continue;
    }
    out += s[i++];
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// The template whose Jinja (as an export writes it, for this tokenizer) the text is; "" if none.
std::string recognised_template(const Tokenizer& tok, const std::string& text) {
  const std::string have = jinja_text_as_rendered(text);
  for (const std::string& name : chat_template_names())
    if (jinja_text_as_rendered(chat_template_jinja(tok, name)) == have) return name;
  return "";
}

std::string guessed_template(const std::string& ct) {
  if (ct.find("Cutting Knowledge Date") != std::string::npos && ct.find("<|start_header_id|>") != std::string::npos)
    return "llama3.1";
  if (ct.find("<|start_header_id|>") != std::string::npos) return "llama3";
  if (ct.find("You are Qwen, created by Alibaba Cloud.") != std::string::npos && ct.find("<|im_start|>") != std::string::npos)
    return "qwen2.5";
  if (ct.find("<|im_start|>") != std::string::npos) return "chatml";
  if (ct.find("<<SYS>>") != std::string::npos) return "llama2";
  if (ct.find("[INST]") != std::string::npos) return "mistral";
  if (ct.find("### Instruction") != std::string::npos) return "alpaca";
  return "";
}

}  // namespace

std::string chat_template_from_model(const Tokenizer& tok) {
  const std::string names = fmt::format("{}", fmt::join(chat_template_names(), ", "));
  if (tok.chat_template().empty())
    throw Error(fmt::format("{}: no chat_template in tokenizer_config.json or chat_template.jinja beside it, so "
                            "template from_model has nothing to use; name one of the templates maintune implements: {}",
                            tok.source().string(), names));
  const std::string found = recognised_template(tok, tok.chat_template());
  if (!found.empty()) return found;
  const std::string guess = guessed_template(tok.chat_template());
  throw Error(fmt::format("{}: its chat_template is not one that maintune implements (template from_model renders a "
                          "model's template only when it is exactly the official Jinja of llama3, llama3.1, llama2, "
                          "chatml (Qwen2) or qwen2.5, or what a maintune export writes; maintune has no Jinja "
                          "engine){}; name one of the templates maintune implements: {}",
                          tok.chat_template_file().string(),
                          guess.empty() ? "" : fmt::format("; `auto` would render it as '{}'", guess), names));
}

std::string detect_chat_template(const Tokenizer& tok) {
  const std::string& ct = tok.chat_template();
  if (!ct.empty()) {
    const std::string found = recognised_template(tok, ct);
    return found.empty() ? guessed_template(ct) : found;
  }
  // No template text: go by the special tokens the tokenizer has.
  const auto& s = tok.special().by_text;
  if (s.count("<|start_header_id|>") && s.count("<|eot_id|>")) return "llama3";
  if (s.count("<|im_start|>") && s.count("<|im_end|>")) return "chatml";
  if (s.count("[INST]") && s.count("[/INST]")) return "mistral";
  return "";
}

std::string resolve_chat_template(const Tokenizer& tok, const std::string& name) {
  if (name == "auto") return detect_chat_template(tok);
  if (name == "from_model") return chat_template_from_model(tok);
  return name;
}

}  // namespace mt
