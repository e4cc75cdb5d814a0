// --tokenizer / --template for subcommands that accept text: the tokenizer is loaded only when an
// input record uses text, from --tokenizer or else the model directory.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/tokenizer.h"
#include "trainer/cli/args.h"
#include "trainer/data/text_requests.h"

namespace mt::cli {

std::vector<OptionSpec> text_options();

// Holds the tokenizer a TextContext points to.
struct TextSetup {
  std::unique_ptr<Tokenizer> tokenizer;
  TextContext context;
};

// Loads the tokenizer (from --tokenizer, else --model) and picks the chat template (--template,
// else detected from the tokenizer; may stay empty). Call only when some record uses text. A
// tokenizer that fails to load leaves context.tokenizer null with the reason in tokenizer_error.
TextSetup load_text_setup(const Args& args);

// The JSONL records of --data with their "FILE:LINE" names, and the text setup, loaded only when
// some record uses text.
struct InputRecords {
  std::vector<nlohmann::json> records;
  std::vector<std::string> where;
  TextSetup text;
};
InputRecords read_input_records(const Args& args, const std::string& data);

}  // namespace mt::cli
