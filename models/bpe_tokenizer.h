// Byte-level BPE as LLaMA-3 uses it: mergeable ranks from a tiktoken file ("base64 rank" lines) or
// from a HF tokenizer.json (BPE model, GPT-2 byte-to-unicode alphabet, merges), LLaMA-3's
// pre-tokenization regex, and special tokens recognized only when asked.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mt {

struct BpeTokenizer;  // opaque: defined in bpe_vocab.h (internal to the BPE files)

// tiktoken-format file. Special tokens are not in that file: `special_tokens` (text -> id) adds
// them (for LLaMA-3: the 256 tokens at 128000+, see llama3_special_tokens()).
std::shared_ptr<const BpeTokenizer> load_tiktoken_bpe(const std::filesystem::path& file,
                                                      const std::map<std::string, int64_t>& special_tokens);
// HF tokenizer.json with a byte-level BPE model; its added_tokens marked special become special.
std::shared_ptr<const BpeTokenizer> load_tokenizer_json_bpe(const std::filesystem::path& file);

// LLaMA-3's special tokens: <|begin_of_text|> = 128000, <|end_of_text|>, <|reserved_special_token_0..|>,
// <|start_header_id|>, <|end_header_id|>, <|eot_id|> ... up to 128255, as Meta's tokenizer.py names them.
std::map<std::string, int64_t> llama3_special_tokens(int64_t num_base_tokens = 128000);

std::vector<int64_t> bpe_encode(const BpeTokenizer& t, std::string_view text, bool allow_special);
// Raw bytes of the tokens (may be partial UTF-8); specials contribute their text unless skipped.
std::string bpe_decode_bytes(const BpeTokenizer& t, const std::vector<int64_t>& ids, bool skip_special);
int64_t bpe_vocab_size(const BpeTokenizer& t);
const std::map<std::string, int64_t>& bpe_special_tokens(const BpeTokenizer& t);
// Id of a regular token given its raw bytes, or -1.
int64_t bpe_token_id(const BpeTokenizer& t, std::string_view bytes);

// LLaMA-3 pre-tokenization: splits text into the pieces the regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// matches, exactly as tiktoken's regex engine does (Unicode 16 classes, see unicode_tables.h).
// tiktoken only ever sees valid text; here each invalid UTF-8 byte counts as one punctuation-like
// character (so "a\xFF\xFEb" splits as a | \xFF\xFE | b), never a crash. Returns views into `text`.
std::vector<std::string_view> llama3_pretokenize(std::string_view text);

}  // namespace mt
