// --tokenizer / --template handling shared by generate and score (see text_options.h).
#include "trainer/cli/text_options.h"

#include "models/chat_template.h"
#include "models/error.h"
#include "trainer/base/jsonl.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace mt::cli {

std::vector<OptionSpec> text_options() {
  return {
      {"tokenizer", true, "tokenizer dir or file, for text inputs", "the --model directory"},
      {"template", true, fmt::format("chat template for instruction inputs: {}", fmt::join(chat_template_names(), ", ")),
       "detected from the tokenizer"},
  };
}

TextSetup load_text_setup(const Args& args) {
  TextSetup setup;
  // A load failure is reported by the first record that needs the tokenizer, with its line, so a
  // malformed record is still named as such rather than hidden behind a tokenizer error.
  try {
    setup.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(args.get("tokenizer", args.get("model"))));
  } catch (const Error& e) {
    setup.context.tokenizer_error = e.what();
    return setup;
  }
  setup.context.tokenizer = setup.tokenizer.get();
  setup.context.chat_template = args.get("template", detect_chat_template(*setup.tokenizer));
  return setup;
}

InputRecords read_input_records(const Args& args, const std::string& data) {
  InputRecords in;
  bool uses_text = false;
  for_each_jsonl(data, [&](const nlohmann::json& obj, int64_t line) {
    in.where.push_back(fmt::format("{}:{}", data, line));
    in.records.push_back(obj);
    uses_text = uses_text || json_uses_text(obj);
  });
  if (uses_text) in.text = load_text_setup(args);
  return in;
}

}  // namespace mt::cli
