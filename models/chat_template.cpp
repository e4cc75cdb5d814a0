// Chat templates rendered straight to ids: each family's documented format is written as a list of
// parts (special tokens by id, text pieces marked prompt or target); consecutive text parts are
// encoded together, exactly as the reference tokenizes the rendered string, and a token is a loss
// target when any byte it covers belongs to a target part. Special-token text inside messages is
// never parsed: it stays ordinary text.
// The prompt/answer boundary: whatever a template writes between the generation prompt's end and
// the answer is a target (LLaMA-2's space after "[/INST]"), never prompt, so the generation prompt
// is exactly the rendering up to the answer's first target token. The other way round (the space in
// the prompt) would need a prompt ending in "▁", which is not a prefix of "▁Hello"; this way the ids
// are HF's for the whole rendering and for add_generation_prompt=True, and only the mask moves.
#include "models/chat_template.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>

#include "models/error.h"

namespace mt {

namespace {

// Python's str.isspace() code points: Jinja's `trim` and Python's str.strip() remove these.
bool is_py_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Decodes the UTF-8 character starting at s[i] (length in *len); invalid bytes count as one char.
uint32_t utf8_at(std::string_view s, size_t i, size_t* len) {
  const auto c = static_cast<uint8_t>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    *len = 1;
    return 0xFFFD;
  }
  uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      *len = 1;
      return 0xFFFD;
    }
    v = (v << 6) | (b & 0x3F);
  }
  *len = n;
  return v;
}

std::string py_strip(std::string_view s) {
  size_t b = 0, len = 0;
  while (b < s.size() && is_py_space(utf8_at(s, b, &len))) b += len;
  size_t e = b;  // end of the last non-space character
  for (size_t i = b; i < s.size(); i += len)
    if (!is_py_space(utf8_at(s, i, &len))) e = i + len;
  return std::string(s.substr(b, e - b));
}

std::string rstrip_spaces(std::string_view s) {  // Python's str.rstrip(" ")
  size_t e = s.size();
  while (e > 0 && s[e - 1] == ' ') --e;
  return std::string(s.substr(0, e));
}

// Collects parts and turns them into ids and a loss mask.
class ChatBuilder {
 public:
  ChatBuilder(const Tokenizer& tok, const std::string& tmpl) : tok_(tok), tmpl_(tmpl) {}

  void special(int64_t id, bool target) {
    flush();
    out_.ids.push_back(id);
    out_.loss_mask.push_back(target ? 1 : 0);
  }
  void text(const std::string& s, bool target) {
    if (s.empty()) return;
    if (target) {
      const bool run_continues = !targets_.empty() && targets_.back().second == segment_.size();
      if (run_continues) targets_.back().second += s.size();
      else targets_.emplace_back(segment_.size(), segment_.size() + s.size());
    }
    segment_ += s;
  }
  // Ends the current text segment: what follows is encoded on its own (as mistral-common encodes
  // each message separately).
  void cut() { flush(); }

  RenderedChat finish(bool train_on_prompt) {
    flush();
    if (train_on_prompt) {
      const int64_t bos = tok_.special().bos;
      for (size_t i = 0; i < out_.ids.size(); ++i)
        out_.loss_mask[i] = (i == 0 && bos >= 0 && out_.ids[0] == bos) ? 0 : 1;
    }
    return std::move(out_);
  }

 private:
  // A generation prompt ends where an answer starts, with the text before it encoded alone. The
  // tokens of the whole segment before that point must be those, or generation would continue from
  // a prefix training never shows: true for every template and vocabulary tested, but a byte-level
  // BPE can merge across (LLaMA-3's ":\n" + "\n" -> ":\n\n" in Alpaca's "### Response:\n" before an
  // answer that starts with a newline). There the two sides are encoded separately, as generation
  // sees them; SentencePiece cannot do that (a separately encoded piece gets a dummy-prefix space
  // the text does not have), so it is an error.
  bool encodes_alone_before(size_t start, const std::vector<int64_t>& ids,
                            const std::vector<std::pair<size_t, size_t>>& offsets) const {
    size_t k = 0;  // tokens that end at or before `start`
    while (k < ids.size() && offsets[k].first < start && offsets[k].second <= start) ++k;
    if (k < ids.size() && offsets[k].first < start) return false;  // a token spans the boundary
    const std::vector<int64_t> before(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k));
    return tok_.encode(std::string_view(segment_).substr(0, start)) == before;
  }

  void flush() {
    if (segment_.empty()) return;
    std::vector<std::pair<size_t, size_t>> offsets;
    std::vector<int64_t> ids = tok_.encode_with_offsets(segment_, offsets);
    std::vector<size_t> cuts = {0};
    for (const auto& [tb, te] : targets_)
      if (tb > 0 && !encodes_alone_before(tb, ids, offsets)) cuts.push_back(tb);
    if (cuts.size() > 1) {
      if (tok_.kind() == "sentencepiece")
        throw Error(fmt::format("chat template '{}': the tokenizer ({}) encodes the end of the prompt together "
                                "with the start of the answer (at byte {} of a text piece), so no generation "
                                "prompt is a prefix of this rendering",
                                tmpl_, tok_.source().string(), cuts[1]));
      cuts.push_back(segment_.size());
      ids.clear();
      offsets.clear();
      for (size_t c = 0; c + 1 < cuts.size(); ++c) {
        std::vector<std::pair<size_t, size_t>> part_offsets;
        const std::string_view text = std::string_view(segment_).substr(cuts[c], cuts[c + 1] - cuts[c]);
        const auto part = tok_.encode_with_offsets(text, part_offsets);
        ids.insert(ids.end(), part.begin(), part.end());
        for (const auto& [b, e] : part_offsets) offsets.emplace_back(b + cuts[c], e + cuts[c]);
      }
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto [b, e] = offsets[i];
      bool target = false;
      for (const auto& [tb, te] : targets_)
        target |= (e > b) ? (std::max(b, tb) < std::min(e, te)) : (tb <= b && b < te);
      out_.ids.push_back(ids[i]);
      out_.loss_mask.push_back(target ? 1 : 0);
    }
    segment_.clear();
    targets_.clear();
  }

  const Tokenizer& tok_;
  const std::string tmpl_;
  RenderedChat out_;
  std::string segment_;
  std::vector<std::pair<size_t, size_t>> targets_;  // byte ranges of segment_ that are targets (one a run)
};

int64_t need_special(const Tokenizer& tok, const std::string& tmpl, const char* text) {
  auto it = tok.special().by_text.find(text);
  if (it == tok.special().by_text.end())
    throw Error(fmt::format("chat template '{}': the tokenizer ({}) has no special token {}", tmpl,
                            tok.source().string(), text));
  return it->second;
}

int64_t need_id(int64_t id, const Tokenizer& tok, const std::string& tmpl, const char* what) {
  if (id < 0)
    throw Error(fmt::format("chat template '{}': the tokenizer ({}) has no {} token", tmpl, tok.source().string(), what));
  return id;
}

void check_roles(const std::vector<ChatMessage>& messages, const std::string& tmpl) {
  if (messages.empty()) throw Error(fmt::format("chat template '{}': empty conversation", tmpl));
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant")
      throw Error(fmt::format("chat template '{}': message {} has unknown role '{}' (expected system, user or "
                              "assistant)", tmpl, i, r));
  }
}

// LLaMA-2 and Mistral: an optional leading system message, then user/assistant strictly alternating
// starting with user. Returns the system text (if any) and the remaining messages.
std::pair<std::optional<std::string>, std::vector<const ChatMessage*>> split_alternating(
    const std::vector<ChatMessage>& messages, const std::string& tmpl) {
  std::optional<std::string> system;
  std::vector<const ChatMessage*> rest;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "system") {
      if (i != 0)
        throw Error(fmt::format("chat template '{}': a system message is only allowed first (message {})", tmpl, i));
      system = m.content;
      continue;
    }
    const bool want_user = rest.size() % 2 == 0;
    if ((m.role == "user") != want_user)
      throw Error(fmt::format("chat template '{}': roles must alternate user/assistant after the optional system "
                              "message, but message {} is '{}' after '{}'", tmpl, i, m.role,
                              rest.empty() ? "the start" : rest.back()->role));
    rest.push_back(&m);
  }
  if (rest.empty()) throw Error(fmt::format("chat template '{}': the conversation has no user message", tmpl));
  return {system, rest};
}

// Meta-Llama-3-8B-Instruct's template: BOS, then per message
// "<|start_header_id|>{role}<|end_header_id|>\n\n{content | trim}<|eot_id|>". Llama 3.1's (without
// tools) writes a system header first, always: "<|start_header_id|>system<|end_header_id|>\n\n
// Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n{first system message | trim}<|eot_id|>",
// the first system message taken into it.
void render_llama3(ChatBuilder& b, const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool gen,
                   bool llama31) {
  const std::string t = llama31 ? "llama3.1" : "llama3";
  const int64_t bos = need_id(tok.special().bos, tok, t, "BOS");
  const int64_t start = need_special(tok, t, "<|start_header_id|>"), end = need_special(tok, t, "<|end_header_id|>");
  const int64_t eot = need_special(tok, t, "<|eot_id|>");
  b.special(bos, false);
  size_t first = 0;
  if (llama31) {
    const bool has_system = messages[0].role == "system";
    b.special(start, false);
    b.text("system", false);
    b.special(end, false);
    b.text(fmt::format("\n\nCutting Knowledge Date: December 2023\nToday Date: {}\n\n", kLlama31Date), false);
    if (has_system) b.text(py_strip(messages[0].content), false);
    b.special(eot, false);
    first = has_system ? 1 : 0;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const bool target = m.role == "assistant";
    b.special(start, false);
    b.text(m.role, false);
    b.special(end, false);
    b.text("\n\n", false);
    b.text(py_strip(m.content), target);
    b.special(eot, target);
  }
  if (gen) {
    b.special(start, false);
    b.text("assistant", false);
    b.special(end, false);
    b.text("\n\n", false);
  }
}

// Llama-2-chat's HF template (= Meta's chat_completion): "<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n
// {user} [/INST] {assistant} </s><s>[INST] ..." with contents stripped.
void render_llama2(ChatBuilder& b, const Tokenizer& tok, const std::vector<ChatMessage>& messages) {
  const std::string t = "llama2";
  const int64_t bos = need_id(tok.special().bos, tok, t, "BOS"), eos = need_id(tok.special().eos, tok, t, "EOS");
  const auto [system, rest] = split_alternating(messages, t);
  for (size_t i = 0; i < rest.size(); ++i) {
    const ChatMessage& m = *rest[i];
    if (m.role == "user") {
      const std::string content =
          (i == 0 && system) ? "<<SYS>>\n" + *system + "\n<</SYS>>\n\n" + m.content : m.content;
      b.special(bos, false);
      b.text("[INST] " + py_strip(content) + " [/INST]", false);
    } else {
      // The space before the answer is a target. Generation prompts end at "[/INST]" (HF's template
      // has no generation-prompt block, so add_generation_prompt=True adds nothing; Meta's
      // chat_completion ends the prompt there too), and the space cannot go to the prompt instead:
      // SentencePiece merges it into "▁Hello" but not into "4" of "42", so no prompt ending in "▁"
      // is a prefix of every rendering. As a target, "▁Hello" and the lone "▁" before "42" are both
      // the answer's first emitted token, and the ids stay HF's.
      b.text(" ", true);
      b.text(py_strip(m.content), true);
      b.text(" ", true);  // the space before </s> is part of what the model must emit
      b.special(eos, true);
    }
  }
}

// Mistral, following mistral-common (Mistral's reference). Without [INST] control tokens (v1
// vocabulary, Mistral-7B-Instruct v0.1/v0.2): BOS, encode("[INST] {user} [/INST]"),
// encode("{assistant}"), EOS, ... each message encoded on its own, the system prompt prepended to
// the first user message with "\n\n". With them (v3 vocabulary): BOS [INST] encode(user) [/INST]
// encode(assistant.rstrip(" ")) EOS, the system prompt prepended to the last user message.
void render_mistral(ChatBuilder& b, const Tokenizer& tok, const std::vector<ChatMessage>& messages) {
  const std::string t = "mistral";
  const int64_t bos = need_id(tok.special().bos, tok, t, "BOS"), eos = need_id(tok.special().eos, tok, t, "EOS");
  const auto& by_text = tok.special().by_text;
  const bool control = has_inst_control_tokens(tok);
  const auto [system, rest] = split_alternating(messages, t);
  size_t last_user = 0;
  for (size_t i = 0; i < rest.size(); ++i)
    if (rest[i]->role == "user") last_user = i;
  const bool has_system = system && !system->empty();  // mistral-common ignores an empty system prompt
  b.special(bos, false);
  for (size_t i = 0; i < rest.size(); ++i) {
    const ChatMessage& m = *rest[i];
    if (m.role == "user") {
      const bool with_system = has_system && i == (control ? last_user : 0);
      const std::string content = with_system ? *system + "\n\n" + m.content : m.content;
      if (control) {
        b.special(by_text.at("[INST]"), false);
        b.text(content, false);
        b.special(by_text.at("[/INST]"), false);
      } else {
        b.cut();
        b.text("[INST] " + content + " [/INST]", false);
        b.cut();
      }
    } else {
      b.text(control ? rstrip_spaces(m.content) : m.content, true);
      b.special(eos, true);
    }
  }
}

// Qwen2's ChatML template: "<|im_start|>{role}\n{content}<|im_end|>\n" per message, a default system
// message when the conversation has none: Qwen2's "You are a helpful assistant." (chatml), Qwen2.5's
// "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." (qwen2.5; its template is
// Qwen2's otherwise, when there are no tools). No BOS.
void render_chatml(ChatBuilder& b, const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool gen,
                   bool qwen25) {
  const std::string t = qwen25 ? "qwen2.5" : "chatml";
  const int64_t start = need_special(tok, t, "<|im_start|>"), end = need_special(tok, t, "<|im_end|>");
  if (messages[0].role != "system") {
    b.special(start, false);
    b.text(qwen25 ? "system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                  : "system\nYou are a helpful assistant.",
           false);
    b.special(end, false);
    b.text("\n", false);
  }
  for (const auto& m : messages) {
    const bool target = m.role == "assistant";
    b.special(start, false);
    b.text(m.role + "\n", false);
    b.text(m.content, target);
    b.special(end, target);
    b.text("\n", false);
  }
  if (gen) {
    b.special(start, false);
    b.text("assistant\n", false);
  }
}

// Stanford Alpaca's prompt. Messages: [system] user [user] [assistant]; the first user message is
// the instruction, a second one the input (the "paired with an input" prompt when it is non-empty),
// a system message replaces the preamble sentence. BOS first when the tokenizer has one; EOS after
// the response.
void render_alpaca(ChatBuilder& b, const Tokenizer& tok, const std::vector<ChatMessage>& messages) {
  const std::string t = "alpaca";
  const int64_t eos = need_id(tok.special().eos, tok, t, "EOS");
  size_t i = 0;
  std::optional<std::string> system, input, response;
  if (messages[i].role == "system") system = messages[i++].content;
  if (i >= messages.size() || messages[i].role != "user")
    throw Error(fmt::format("chat template '{}': expected a user message (the instruction) at message {}", t, i));
  const std::string instruction = messages[i++].content;
  if (i < messages.size() && messages[i].role == "user") input = messages[i++].content;
  if (i < messages.size() && messages[i].role == "assistant") response = messages[i++].content;
  if (i < messages.size())
    throw Error(fmt::format("chat template '{}': cannot express message {} ('{}'): the Alpaca prompt takes "
                            "[system], user (instruction), [user (input)], [assistant] only", t, i, messages[i].role));
  const bool with_input = input && !input->empty();
  const std::string preamble =
      system ? *system
             : with_input ? "Below is an instruction that describes a task, paired with an input that provides further "
                            "context. Write a response that appropriately completes the request."
                          : "Below is an instruction that describes a task. Write a response that appropriately "
                            "completes the request.";
  std::string prompt = preamble + "\n\n### Instruction:\n" + instruction;
  if (with_input) prompt += "\n\n### Input:\n" + *input;
  prompt += "\n\n### Response:\n";
  if (tok.special().bos >= 0) b.special(tok.special().bos, false);
  b.text(prompt, false);
  if (response) {
    b.text(*response, true);
    b.special(eos, true);
  }
}

std::string unknown_template(const std::string& t) {
  return fmt::format("unknown chat template '{}' (known: {})", t, fmt::join(chat_template_names(), ", "));
}

}  // namespace

const std::vector<std::string>& chat_template_names() {
  static const std::vector<std::string> names = {"llama3", "llama3.1", "llama2", "mistral", "chatml", "qwen2.5",
                                                 "alpaca"};
  return names;
}

RenderedChat render_chat(const Tokenizer& tok, const std::string& template_name,
                         const std::vector<ChatMessage>& messages, bool train_on_prompt, bool add_generation_prompt) {
  const std::string& t = template_name;
  const auto& names = chat_template_names();
  if (std::find(names.begin(), names.end(), t) == names.end()) throw Error(unknown_template(t));
  check_roles(messages, t);
  ChatBuilder b(tok, t);
  if (t == "llama3" || t == "llama3.1") render_llama3(b, tok, messages, add_generation_prompt, t == "llama3.1");
  else if (t == "llama2") render_llama2(b, tok, messages);
  else if (t == "mistral") render_mistral(b, tok, messages);
  else if (t == "chatml" || t == "qwen2.5") render_chatml(b, tok, messages, add_generation_prompt, t == "qwen2.5");
  else render_alpaca(b, tok, messages);
  return b.finish(train_on_prompt);
}

ChatTurnSplit split_last_turn(const Tokenizer& tok, const std::string& template_name,
                              const std::vector<ChatMessage>& messages) {
  ChatTurnSplit out;
  if (messages.empty() || messages.back().role != "assistant") {
    out.prompt = render_chat(tok, template_name, messages, false, /*add_generation_prompt=*/true).ids;
    return out;
  }
  const std::vector<ChatMessage> before(messages.begin(), messages.end() - 1);
  const RenderedChat full = render_chat(tok, template_name, messages);
  out.prompt = render_chat(tok, template_name, before, false, /*add_generation_prompt=*/true).ids;
  size_t end = full.ids.size();  // after the last target (ChatML's newline after <|im_end|> is not one)
  while (end > 0 && full.loss_mask[end - 1] == 0) --end;
  const size_t n = out.prompt.size();
  if (n == 0 || n >= end || !std::equal(out.prompt.begin(), out.prompt.end(), full.ids.begin()) ||
      full.loss_mask[n - 1] != 0 || full.loss_mask[n] == 0)
    throw Error(fmt::format("chat template '{}': the generation prompt is not the start of the rendered exchange "
                            "up to the answer's first target token", template_name));
  out.target.assign(full.ids.begin() + static_cast<std::ptrdiff_t>(n),
                    full.ids.begin() + static_cast<std::ptrdiff_t>(end));
  return out;
}

int64_t chat_end_of_turn_id(const Tokenizer& tok, const std::string& template_name) {
  const std::string& t = template_name;
  if (t == "llama3" || t == "llama3.1") return need_special(tok, t, "<|eot_id|>");
  if (t == "chatml" || t == "qwen2.5") return need_special(tok, t, "<|im_end|>");
  if (t == "llama2" || t == "mistral" || t == "alpaca") return need_id(tok.special().eos, tok, t, "EOS");
  throw Error(unknown_template(t));
}

std::vector<int64_t> chat_stop_ids(const Tokenizer& tok, const std::string& template_name,
                                   const std::vector<int64_t>& eos_ids) {
  std::vector<int64_t> out = {chat_end_of_turn_id(tok, template_name)};
  std::vector<int64_t> rest = eos_ids;
  rest.push_back(tok.special().eos);
  for (const int64_t id : rest)
    if (id >= 0 && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  return out;
}

bool has_inst_control_tokens(const Tokenizer& tok) {
  const auto& by_text = tok.special().by_text;
  return by_text.count("[INST]") > 0 && by_text.count("[/INST]") > 0;
}

}  // namespace mt
