// The tokenizer files of an exported HF model directory, written so that transformers (and what
// loads through it, vLLM) tokenizes as we do and renders the chat template the model was trained
// with: the source's tokenizer.json / tokenizer.model / special_tokens_map.json copied, and
// tokenizer_config.json the source's (or a new one) completed with what transformers would
// otherwise guess: the chat template, bos/eos tokens, the special tokens a tiktoken file cannot
// name, the tokenizer class, SentencePiece's per-piece dummy prefix (legacy).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "models/tokenizer.h"

namespace mt {

// tokenizer_config.json for `tok` (loaded from `tokenizer_path`, a directory or one file):
// `source_config` (the source's, or null) with the keys above filled in. `chat_template` is a
// template name ("" = none: the source's template, if any, is kept). `with_tokenizer_json`: whether
// the export carries a tokenizer.json (which then defines the added tokens itself).
nlohmann::json export_tokenizer_config(const Tokenizer& tok, const nlohmann::json& source_config,
                                       const std::string& chat_template, bool with_tokenizer_json);

// Writes the tokenizer files of `tok` (loaded from `tokenizer_path`) into `dir`: the source's files,
// tokenizer_config.json and, with a template, chat_template.jinja (the file transformers 5 reads
// first; the same text is in the config for older readers). Errors name the file.
void write_tokenizer_files(const Tokenizer& tok, const std::filesystem::path& tokenizer_path,
                           const std::string& chat_template, const std::filesystem::path& dir);

}  // namespace mt
