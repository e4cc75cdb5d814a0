// Conversation -> tokenized example (see examples.h): render_chat for ids and loss mask, then the
// truncate/drop length policy, counted in DataStats.
#include "trainer/data/examples.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/error.h"

namespace mt {

void TokenizedDataset::add(const TokenizedExample& e) {
  if (e.ids.size() != e.loss_mask.size()) throw Error("tokenized example: ids and loss mask differ in length");
  tokens.insert(tokens.end(), e.ids.begin(), e.ids.end());
  masks.insert(masks.end(), e.loss_mask.begin(), e.loss_mask.end());
  offsets.push_back(tokens.size());
}

void mark_synthetic_targets(TokenizedDataset& data) {
  for (uint8_t& m : data.masks)
    if (m != 0) m = kMaskSyntheticTarget;
}

void check_example_options(const ExampleOptions& o) {
  if (o.max_len < 2) throw Error(fmt::format("max_len must be at least 2, got {}", o.max_len));
  if (o.too_long != "truncate" && o.too_long != "drop")
    throw Error(fmt::format("too_long must be \"truncate\" or \"drop\", got \"{}\"", o.too_long));
  if (o.on_malformed != "fail" && o.on_malformed != "skip")
    throw Error(fmt::format("on_malformed must be \"fail\" or \"skip\", got \"{}\"", o.on_malformed));
}

std::optional<TokenizedExample> apply_length_policy(const RenderedChat& r, const ExampleOptions& o, DataStats& stats) {
  if (r.ids.size() != r.loss_mask.size()) throw Error("render_chat gave ids and loss mask of different lengths");
  const auto n = static_cast<int64_t>(r.ids.size());
  int64_t keep = n;
  if (n > o.max_len) {
    // A token is trained on as the target of the one before it, so position 0 never counts.
    const bool target_survives =
        std::any_of(r.loss_mask.begin() + 1, r.loss_mask.begin() + o.max_len, [](uint8_t m) { return m != 0; });
    if (o.too_long == "drop" || !target_survives) {
      ++stats.dropped_too_long;
      return std::nullopt;
    }
    keep = o.max_len;
    ++stats.truncated;
  }
  TokenizedExample e;
  e.ids.reserve(static_cast<size_t>(keep));
  for (int64_t i = 0; i < keep; ++i) {
    const int64_t id = r.ids[static_cast<size_t>(i)];
    if (id < 0 || id > 0xFFFFFFFFll) throw Error(fmt::format("token id {} does not fit the uint32 token store", id));
    e.ids.push_back(static_cast<uint32_t>(id));
  }
  e.loss_mask.assign(r.loss_mask.begin(), r.loss_mask.begin() + keep);
  int64_t targets = 0;
  for (int64_t i = 1; i < keep; ++i) targets += e.loss_mask[static_cast<size_t>(i)] != 0;
  ++stats.examples;
  stats.tokens += keep;
  stats.target_tokens += targets;
  stats.max_tokens = std::max(stats.max_tokens, keep);
  return e;
}

namespace {

// Takes the context messages' tokens out of the loss. They are the rendering of those messages alone,
// which every template here renders as a prefix of the whole conversation; checked, since a template
// that did not would silently train on the wrong span.
void mask_context_messages(const Tokenizer& tok, const std::string& template_name, const Conversation& conv, RenderedChat& r) {
  const std::vector<ChatMessage> context(conv.messages.begin(),
                                         conv.messages.begin() + static_cast<long>(conv.context_messages));
  const RenderedChat prefix = render_chat(tok, template_name, context);
  if (prefix.ids.size() > r.ids.size() || !std::equal(prefix.ids.begin(), prefix.ids.end(), r.ids.begin()))
    throw Error(fmt::format("template {} does not render the prompt's turns as the start of the conversation, so "
                            "the completion cannot be trained alone",
                            template_name));
  std::fill(r.loss_mask.begin(), r.loss_mask.begin() + static_cast<long>(prefix.ids.size()), uint8_t{0});
}

}  // namespace

std::optional<TokenizedExample> make_example(const Tokenizer& tok, const Conversation& conv, const ExampleOptions& o,
                                             DataStats& stats) {
  if (conv.prompts_only) return std::nullopt;
  RenderedChat r;
  try {
    r = render_chat(tok, o.template_name, conv.messages, o.train_on_prompt);
    if (conv.context_messages > 0 && !o.train_on_prompt) mask_context_messages(tok, o.template_name, conv, r);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", conv.where, e.what()));
  }
  return apply_length_policy(r, o, stats);
}

TokenizedDataset tokenize_conversations(const Tokenizer& tok, const std::vector<Conversation>& convs,
                                        const ExampleOptions& o, DataStats* stats_out) {
  check_example_options(o);
  DataStats local;
  DataStats& stats = stats_out ? *stats_out : local;
  TokenizedDataset ds;
  for (const Conversation& conv : convs) {
    std::optional<TokenizedExample> e;
    try {
      e = make_example(tok, conv, o, stats);
    } catch (const Error& err) {
      if (o.on_malformed != "skip") throw;
      ++stats.skipped_malformed;
      if (stats.skipped_messages.size() < 10) stats.skipped_messages.push_back(err.what());
      continue;
    }
    if (e) ds.add(*e);
  }
  return ds;
}

}  // namespace mt
