// Chat templates rendered straight to token ids with a loss mask: LLaMA-3 (header tokens,
// <|eot_id|>), LLaMA-2 and Mistral ([INST] ... [/INST], system prompt), ChatML (Qwen2) and a plain
// Alpaca prompt. The end-of-turn token the model must learn to emit is the template's own, and it
// is inside the loss mask of every assistant turn.
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

// Template names: "llama3", "llama2", "mistral", "chatml", "alpaca".
// Renders a conversation (BOS included where the family's format has one). Loss mask: assistant
// turns' content (LLaMA-2: with the spaces its template writes around it) and their end-of-turn
// token; with `train_on_prompt`, every token but BOS. `add_generation_prompt` appends the opening of
// an assistant turn (for generation).
// Throws mt::Error for an unknown template, a role it cannot express, or bad turn order.
RenderedChat render_chat(const Tokenizer& tok, const std::string& template_name,
                         const std::vector<ChatMessage>& messages, bool train_on_prompt = false,
                         bool add_generation_prompt = false);

// The token id that ends an assistant turn under this template for this tokenizer.
int64_t chat_end_of_turn_id(const Tokenizer& tok, const std::string& template_name);

// Picks a template from a tokenizer's chat_template text and kind ("" if it cannot tell).
std::string detect_chat_template(const Tokenizer& tok);

}  // namespace mt
