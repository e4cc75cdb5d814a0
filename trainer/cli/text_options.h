// --tokenizer / --template for subcommands that accept text: the tokenizer is loaded only when an
// input record uses text, from --tokenizer or else where --model's text comes from (TextDefaults).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/tokenizer.h"
#include "trainer/cli/args.h"
#include "trainer/data/text_requests.h"

namespace mt::cli {

std::vector<OptionSpec> text_options();

// What --tokenizer and --template default to: for a model dir the dir itself and detection, for a
// training checkpoint its run's tokenizer and chat template (trainer/cli/commands.h ModelSource).
struct TextDefaults {
  std::string tokenizer;
  std::string chat_template;  // "" = detected from the tokenizer
};

// Holds the tokenizer a TextContext points to.
struct TextSetup {
  std::unique_ptr<Tokenizer> tokenizer;
  TextContext context;
};

// Loads the tokenizer (from --tokenizer, else defaults.tokenizer) and picks the chat template
// (--template, else defaults.chat_template, else detected from the tokenizer; may stay empty). Call only when some record uses text. A
// tokenizer that fails to load leaves context.tokenizer null with the reason in tokenizer_error.
TextSetup load_text_setup(const Args& args, const TextDefaults& defaults);

// The JSONL records of --data with their "FILE:LINE" names, and the text setup, loaded only when
// some record uses text.
struct InputRecords {
  std::vector<nlohmann::json> records;
  std::vector<std::string> where;
  TextSetup text;
};
InputRecords read_input_records(const Args& args, const std::string& data, const TextDefaults& defaults);

}  // namespace mt::cli
