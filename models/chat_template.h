// Chat templates rendered straight to token ids with a loss mask: LLaMA-3 and Llama 3.1 (header
// tokens, <|eot_id|>; 3.1's system header with its knowledge-cutoff and date lines), LLaMA-2 and
// Mistral ([INST] ... [/INST], system prompt), ChatML with Qwen2's or Qwen2.5's default system
// prompt, and a plain Alpaca prompt. The end-of-turn token the model must learn to emit is the
// template's own, and it is inside the loss mask of every assistant turn.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "models/tokenizer.h"

namespace mt {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

struct RenderedChat {
  std::vector<int64_t> ids;
  std::vector<uint8_t> loss_mask;  // 1 where the token is a training target, same length as ids
};

// Every template render_chat knows, in the order its error messages name them.
const std::vector<std::string>& chat_template_names();

// Template names: see chat_template_names().
// Renders a conversation (BOS included where the family's format has one). Loss mask: assistant
// turns' content (LLaMA-2: with the spaces its template writes around it) and their end-of-turn
// token; with `train_on_prompt`, every token but BOS. `add_generation_prompt` appends the opening of
// an assistant turn (for generation). Invariant, for every template: the generation prompt of a
// conversation is exactly the ids of that conversation plus an assistant answer up to the answer's
// first target token (tests/test_chat_boundary.cpp), so generation continues from the prefix
// training conditioned on.
// Throws mt::Error for an unknown template, a role it cannot express, or bad turn order.
RenderedChat render_chat(const Tokenizer& tok, const std::string& template_name,
                         const std::vector<ChatMessage>& messages, bool train_on_prompt = false,
                         bool add_generation_prompt = false);

// A conversation that ends in an assistant turn, cut where generating that turn starts: `prompt` is
// the generation prompt of the messages before it (render_chat with add_generation_prompt, the one
// rendering every generation uses), `target` the turn's tokens as training renders and masks them,
// up to its last target token (the end of turn). Scoring uses it, so a score is the log-likelihood
// of what generation would emit. Throws mt::Error if the prompt is not the rendering's start (the
// invariant above), besides render_chat's errors; `target` is empty for a conversation without an
// assistant turn at the end.
struct ChatTurnSplit {
  std::vector<int64_t> prompt, target;
};
ChatTurnSplit split_last_turn(const Tokenizer& tok, const std::string& template_name,
                              const std::vector<ChatMessage>& messages);

// The token id that ends an assistant turn under this template for this tokenizer.
int64_t chat_end_of_turn_id(const Tokenizer& tok, const std::string& template_name);

// Where a model trained on this template stops generating: the end-of-turn id, then `eos_ids` (the
// model's own, from generation_config.json or config.json), then the tokenizer's EOS, each once.
std::vector<int64_t> chat_stop_ids(const Tokenizer& tok, const std::string& template_name,
                                   const std::vector<int64_t>& eos_ids);

// The template as Jinja text for a HF tokenizer config (models/chat_template_jinja.cpp), such that
// transformers' apply_chat_template gives render_chat's ids (with add_generation_prompt too).
std::string chat_template_jinja(const Tokenizer& tok, const std::string& template_name);

// Whether the tokenizer has Mistral's [INST]/[/INST] control tokens (the v3 vocabulary), which
// changes how the mistral template renders.
bool has_inst_control_tokens(const Tokenizer& tok);

// The date llama3.1's system header writes ("Today Date: 26 Jul 2024"): the official template's
// date_string default, which transformers' apply_chat_template renders when it is given none. Fixed,
// so that the same data renders to the same ids on any day, and an export's template (the official
// text) renders it too.
inline constexpr const char* kLlama31Date = "26 Jul 2024";

// Which of our templates a tokenizer's own chat_template is (models/chat_template_detect.cpp).
// chat_template_from_model: the template whose Jinja text it is, exactly, up to whitespace Jinja does
// not render under transformers' settings: the official templates of llama3, llama3.1, llama2,
// chatml (Qwen2) and qwen2.5, or what a maintune export writes for any template (mistral, alpaca).
// Throws mt::Error naming the file and listing the templates we implement when it is none of them,
// or when the tokenizer has no chat_template.
std::string chat_template_from_model(const Tokenizer& tok);

// Picks a template from a tokenizer's chat_template text and kind ("" if it cannot tell): the one
// chat_template_from_model recognises, else a guess from the text's marks (header tokens, the
// Llama 3.1 knowledge-cutoff line, <|im_start|>, Qwen2.5's system prompt, [INST] ...), else from the
// special tokens.
std::string detect_chat_template(const Tokenizer& tok);

// A data.template (or --template) value as the template to render: "auto" -> detect_chat_template
// ("" if it cannot tell), "from_model" -> chat_template_from_model, any other name as it is.
std::string resolve_chat_template(const Tokenizer& tok, const std::string& name);

}  // namespace mt
