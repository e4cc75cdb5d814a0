// Tokenizer files of an exported model directory (see hf_tokenizer_files.h).
#include "models/hf_tokenizer_files.h"

#include <fmt/format.h>

#include <optional>
#include <vector>

#include "models/atomic_file.h"
#include "models/chat_template.h"
#include "models/error.h"
#include "models/hf_config.h"
#include "models/json_read.h"
#include "models/read_file.h"

namespace mt {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::optional<std::string> special_text(const Tokenizer& tok, int64_t id) {
  if (id < 0) return std::nullopt;
  for (const auto& [text, i] : tok.special().by_text)
    if (i == id) return text;
  return std::nullopt;
}

}  // namespace

json export_tokenizer_config(const Tokenizer& tok, const json& source_config, const std::string& chat_template,
                             bool with_tokenizer_json) {
  json cfg = source_config.is_object() ? source_config : json::object();
  if (!chat_template.empty()) cfg["chat_template"] = chat_template_jinja(tok, chat_template);
  // Without these transformers takes its class defaults ("<s>", "</s>") or none at all, and the
  // templates' bos_token / eos_token would render as something else.
  for (const auto& [key, id] : {std::pair{"bos_token", tok.special().bos}, std::pair{"eos_token", tok.special().eos}})
    if (!cfg.contains(key) || cfg[key].is_null())
      if (const auto text = special_text(tok, id)) cfg[key] = *text;
  const bool sentencepiece = tok.kind() == "sentencepiece";
  // The class decides how transformers builds the tokenizer from the files: LlamaTokenizer converts a
  // SentencePiece model; a byte-level BPE must be taken as its tokenizer.json / tiktoken file says.
  if (!cfg.contains("tokenizer_class"))
    cfg["tokenizer_class"] = sentencepiece ? "LlamaTokenizer" : "PreTrainedTokenizerFast";
  // Our SentencePiece encoding gives every piece between special tokens its dummy-prefix space, as
  // sentencepiece encodes a piece alone (and Meta's and mistral-common's references do); with
  // legacy=false transformers' conversion gives it to the first piece only.
  if (sentencepiece) cfg["legacy"] = true;
  // Special tokens that only our loader knows (a tiktoken file's, which follow its ranks): without
  // them transformers would split "<|eot_id|>" into ordinary pieces. A tokenizer.json lists its own.
  if (!with_tokenizer_json) {
    json& added = cfg["added_tokens_decoder"];
    if (!added.is_object()) added = json::object();
    for (const auto& [text, id] : tok.special().by_text) {
      const std::string key = std::to_string(id);
      if (!added.contains(key))
        added[key] = {{"content", text}, {"lstrip", false}, {"normalized", false}, {"rstrip", false},
                      {"single_word", false}, {"special", true}};
    }
  }
  return cfg;
}

void write_tokenizer_files(const Tokenizer& tok, const fs::path& tokenizer_path, const std::string& chat_template,
                           const fs::path& dir) {
  const bool is_dir = fs::is_directory(tokenizer_path);
  // A directory's files under their own names (its chat_template.jinja only when no template
  // replaces it); a single file under the name transformers looks for.
  std::vector<std::pair<std::string, std::string>> copies;  // name, contents
  if (is_dir) {
    for (const char* f : {"tokenizer.json", "tokenizer.model", "special_tokens_map.json", "chat_template.jinja"})
      if (fs::is_regular_file(tokenizer_path / f) && (chat_template.empty() || std::string(f) != "chat_template.jinja"))
        copies.emplace_back(f, read_file(tokenizer_path / f, "tokenizer file"));
  } else {
    std::string text = read_file(tokenizer_path, "tokenizer file");
    const size_t first = text.find_first_not_of(" \t\r\n");
    const bool json_file = first != std::string::npos && text[first] == '{';
    copies.emplace_back(json_file ? "tokenizer.json" : "tokenizer.model", std::move(text));
  }
  bool with_tokenizer_json = false;
  for (const auto& [name, text] : copies) {
    write_text_file_atomically(dir / name, text);
    with_tokenizer_json |= name == "tokenizer.json";
  }
  const fs::path src_cfg = tokenizer_path / "tokenizer_config.json";
  const json source = is_dir && fs::is_regular_file(src_cfg) ? read_json_file(src_cfg) : json();
  if (!source.is_null() && !source.is_object())
    throw Error(fmt::format("{}: expected a JSON object", src_cfg.string()));
  const json cfg = export_tokenizer_config(tok, source, chat_template, with_tokenizer_json);
  write_text_file_atomically(dir / "tokenizer_config.json", cfg.dump(2) + "\n");
  if (!chat_template.empty()) write_text_file_atomically(dir / "chat_template.jinja", cfg["chat_template"].get<std::string>());
}

}  // namespace mt
