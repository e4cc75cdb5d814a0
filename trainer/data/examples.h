// Conversations to tokenized training examples: render_chat gives ids and the loss mask (assistant
// turns and their end-of-turn token by default, every token but BOS with train_on_prompt), then
// the length policy cuts or drops examples over max_len. Examples live in one flat dataset
// (tokens, masks, offsets) that the token cache stores and the packer reads.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/chat_template.h"
#include "models/tokenizer.h"
#include "trainer/data/data_formats.h"

namespace mt {

struct ExampleOptions {
  std::string template_name = "llama3";  // see render_chat
  int64_t max_len = 2048;                // the packed row length: no example is longer
  bool train_on_prompt = false;
  // Over max_len: "truncate" keeps the first max_len tokens (the prompt whole, the response cut)
  // when at least one loss-mask token survives, else drops; "drop" always drops.
  std::string too_long = "truncate";
  std::string on_malformed = "fail";     // conversations render_chat rejects: "fail" | "skip"
};

// Loss-mask values. Any non-zero value means "a training target"; the value says which source kind
// it came from, for the source-weighted loss (training.synthetic_weight). Readers test != 0.
constexpr uint8_t kMaskTarget = 1;           // a target of a real (human-written) source
constexpr uint8_t kMaskSyntheticTarget = 2;  // a target of a source marked synthetic

struct TokenizedExample {
  std::vector<uint32_t> ids;
  std::vector<uint8_t> loss_mask;  // 0: not trained on; kMaskTarget or kMaskSyntheticTarget: a target
};

// Read-only view of a tokenized dataset: example i is tokens/masks [offsets[i], offsets[i+1]).
struct DatasetView {
  const uint32_t* tokens = nullptr;
  const uint8_t* masks = nullptr;
  const uint64_t* offsets = nullptr;  // num_examples + 1 entries, offsets[0] = 0
  int64_t num_examples = 0;
  int64_t length(int64_t i) const { return static_cast<int64_t>(offsets[i + 1] - offsets[i]); }
  int64_t num_tokens() const { return num_examples ? static_cast<int64_t>(offsets[num_examples]) : 0; }
};

// A tokenized dataset in memory.
struct TokenizedDataset {
  std::vector<uint32_t> tokens;
  std::vector<uint8_t> masks;
  std::vector<uint64_t> offsets{0};
  void add(const TokenizedExample& e);
  int64_t size() const { return static_cast<int64_t>(offsets.size()) - 1; }
  DatasetView view() const { return {tokens.data(), masks.data(), offsets.data(), size()}; }
};

// Applies the length policy to rendered ids/mask; nullopt when dropped. Counts in stats
// (examples, truncated, dropped_too_long, tokens, target_tokens, max_tokens).
std::optional<TokenizedExample> apply_length_policy(const RenderedChat& rendered, const ExampleOptions& options,
                                                    DataStats& stats);

// Renders and applies the length policy. Prompts-only conversations give nullopt (they are counted
// by the reader). render_chat's errors are rethrown prefixed with the conversation's place.
std::optional<TokenizedExample> make_example(const Tokenizer& tok, const Conversation& conv,
                                             const ExampleOptions& options, DataStats& stats);

// All conversations of a source; a conversation render_chat rejects follows options.on_malformed.
TokenizedDataset tokenize_conversations(const Tokenizer& tok, const std::vector<Conversation>& convs,
                                        const ExampleOptions& options, DataStats* stats = nullptr);

// Turns every target of `data` into a synthetic-source target (mask value kMaskSyntheticTarget):
// applied to the examples of a source marked synthetic, right after tokenizing it.
void mark_synthetic_targets(TokenizedDataset& data);

// Checks the option values; throws mt::Error naming the bad one.
void check_example_options(const ExampleOptions& options);

}  // namespace mt
