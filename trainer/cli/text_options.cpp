// --tokenizer / --template handling shared by generate and score (see text_options.h).
#include "trainer/cli/text_options.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <fstream>

#include "models/chat_template.h"
#include "models/error.h"
#include "models/json_read.h"
#include "trainer/base/jsonl.h"

namespace mt::cli {

std::vector<OptionSpec> text_options() {
  return {
      {"tokenizer", true, "tokenizer dir or file, for text inputs",
       "the --model directory, or a checkpoint's run's tokenizer"},
      {"template", true,
       fmt::format("chat template for instruction inputs: {}, or from_model (the tokenizer's own, when it is one "
                   "of those)", fmt::join(chat_template_names(), ", ")),
       "a checkpoint's run's, else detected from the tokenizer"},
  };
}

TextSetup load_text_setup(const Args& args, const TextDefaults& defaults) {
  TextSetup setup;
  // A load failure is reported by the first record that needs the tokenizer, with its line, so a
  // malformed record is still named as such rather than hidden behind a tokenizer error.
  try {
    setup.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(args.get("tokenizer", defaults.tokenizer)));
  } catch (const Error& e) {
    setup.context.tokenizer_error = e.what();
    return setup;
  }
  setup.context.tokenizer = setup.tokenizer.get();
  if (args.has("template")) setup.context.chat_template = resolve_chat_template(*setup.tokenizer, args.get("template"));
  else if (!defaults.chat_template.empty()) setup.context.chat_template = defaults.chat_template;
  else setup.context.chat_template = detect_chat_template(*setup.tokenizer);
  return setup;
}

namespace {

// Whether a data file is one JSON array (benchmark files often are) rather than JSONL: a .json file
// whose first character is '['. A .jsonl file is read by lines whatever it holds, so its errors
// keep naming lines.
bool is_json_array_file(const std::string& data) {
  if (data == "-" || std::filesystem::path(data).extension() != ".json") return false;
  std::ifstream f(data, std::ios::binary);  // unreadable: not an array here, for_each_jsonl says why
  char c = 0;
  while (f.get(c))
    if (!std::isspace(static_cast<unsigned char>(c))) return c == '[';
  return false;
}

}  // namespace

InputRecords read_input_records(const Args& args, const std::string& data, const TextDefaults& defaults) {
  InputRecords in;
  bool uses_text = false;
  const auto add = [&](const nlohmann::json& obj, std::string where) {
    in.where.push_back(std::move(where));
    in.records.push_back(obj);
    uses_text = uses_text || json_uses_text(obj);
  };
  if (is_json_array_file(data)) {
    const nlohmann::json array = read_json_file(data, "data file");
    if (!array.is_array()) throw Error(fmt::format("{}: expected a JSON array of objects", data));
    if (array.empty()) throw Error(fmt::format("{}: an empty JSON array, no records", data));
    for (size_t i = 0; i < array.size(); ++i) {
      if (!array[i].is_object()) throw Error(fmt::format("{}[{}]: expected a JSON object", data, i));
      add(array[i], fmt::format("{}[{}]", data, i));
    }
  } else {
    for_each_jsonl(data, [&](const nlohmann::json& obj, int64_t line) {
      add(obj, fmt::format("{}:{}", input_name(data), line));
    });
  }
  if (uses_text) in.text = load_text_setup(args, defaults);
  return in;
}

}  // namespace mt::cli
