// `maintune tokenize`: encodes the "text" of each JSONL line with a model's tokenizer (a HF model
// directory or one tokenizer file) and prints {"ids": [...]} per line, in input order, streaming.
// No BOS/EOS unless --add-special (then what the tokenizer's config asks for: BOS by default).
#include <fmt/format.h>

#include "models/error.h"
#include "models/tokenizer.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/output.h"
#include "trainer/base/jsonl.h"

namespace mt::cli {

int cmd_tokenize(int argc, char** argv) {
  const std::vector<OptionSpec> spec = {
      {"tokenizer", true, "HF model directory, tokenizer.model or tokenizer.json", ""},
      {"data", true, "JSONL file, one {\"text\": \"...\"} per line", ""},
      {"add-special", false, "add BOS/EOS as the tokenizer's config says (add_bos_token/add_eos_token; default BOS)", ""},
      {"allow-special", false, "recognize special-token text (\"<|eot_id|>\", \"</s>\") in the input", ""},
  };
  const auto parsed = parse_command_line(argc, argv, spec, "usage: maintune tokenize --tokenizer DIR_OR_FILE --data FILE [options]");
  if (!parsed) return 0;
  const Args& args = *parsed;
  const std::string tok_path = args.require("tokenizer");
  const std::string data = args.require("data");
  const bool add_special = args.has("add-special"), allow_special = args.has("allow-special");
  const Tokenizer tok = Tokenizer::load(tok_path);
  const SpecialTokens& sp = tok.special();
  std::string line_out;
  for_each_jsonl(data, [&](const nlohmann::json& obj, int64_t line) {
    if (!obj.contains("text")) throw Error(fmt::format("{}:{}: missing field 'text'", data, line));
    if (!obj["text"].is_string())
      throw Error(fmt::format("{}:{}: field 'text' must be a string, got {}", data, line, obj["text"].type_name()));
    std::vector<int64_t> ids;
    if (add_special && sp.add_bos && sp.bos >= 0) ids.push_back(sp.bos);
    const std::vector<int64_t> body = tok.encode(obj["text"].get_ref<const std::string&>(), allow_special);
    ids.insert(ids.end(), body.begin(), body.end());
    if (add_special && sp.add_eos && sp.eos >= 0) ids.push_back(sp.eos);
    line_out = "{\"ids\": [";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line_out += ", ";
      line_out += std::to_string(ids[i]);
    }
    line_out += "]}";
    out().write_line(line_out);
  });
  return 0;
}

}  // namespace mt::cli
