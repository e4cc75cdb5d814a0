// The tokenizer a model uses, whatever its kind: SentencePiece (LLaMA-2, Mistral `tokenizer.model`)
// or byte-level BPE (LLaMA-3: tiktoken-format `tokenizer.model` or HF `tokenizer.json`). Loaded from
// a HF model directory or a single file, with special-token ids read from the files, never assumed.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mt {

struct SentencePieceTokenizer;  // models/sentencepiece_tokenizer.h
struct BpeTokenizer;            // models/bpe_tokenizer.h

struct SpecialTokens {
  int64_t bos = -1, eos = -1, pad = -1, unk = -1;  // -1: the tokenizer has none
  // Every special / added / control token by its text ("<|eot_id|>", "[INST]", "<s>", ...).
  std::map<std::string, int64_t> by_text;
  // What "add special tokens" means for this tokenizer (tokenizer_config.json add_bos_token /
  // add_eos_token; default: BOS only, as HF's LLaMA tokenizers do).
  bool add_bos = true, add_eos = false;
};

class Tokenizer {
 public:
  // `path`: a HF model directory (tokenizer.json / tokenizer.model + tokenizer_config.json +
  // special_tokens_map.json, whichever exist), or a single tokenizer.model / tokenizer.json file.
  // Throws mt::Error naming the file (and place) on anything malformed or missing.
  static Tokenizer load(const std::filesystem::path& path);

  // Encodes text to ids. No BOS/EOS is added. Special-token text ("<|eot_id|>") is recognized only
  // when `allow_special`; otherwise it is encoded as ordinary text, as the reference libraries do.
  std::vector<int64_t> encode(std::string_view text, bool allow_special = false) const;
  // encode(text, false), plus for each id the byte range [begin, end) of `text` it covers (a
  // SentencePiece dummy-prefix space covers none). Chat templates build loss masks from it.
  std::vector<int64_t> encode_with_offsets(std::string_view text,
                                           std::vector<std::pair<size_t, size_t>>& offsets) const;
  // Decodes ids to UTF-8 text; byte sequences that are not valid UTF-8 become U+FFFD, never a crash.
  // Ids outside the vocabulary are an mt::Error. `skip_special` drops special tokens.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const;

  int64_t vocab_size() const;  // including special tokens
  const SpecialTokens& special() const { return special_; }
  // Id of an exact token text (special or regular piece), if any.
  std::optional<int64_t> token_id(std::string_view text) const;
  std::string kind() const;  // "sentencepiece" or "bpe"

  // Where it was loaded from, and chat_template text from tokenizer_config.json, else from
  // chat_template.jinja ("" if none), with the file it came from ("" if none).
  const std::filesystem::path& source() const { return source_; }
  const std::string& chat_template() const { return chat_template_; }
  const std::filesystem::path& chat_template_file() const { return chat_template_file_; }

 private:
  std::shared_ptr<const SentencePieceTokenizer> sp_;
  std::shared_ptr<const BpeTokenizer> bpe_;
  SpecialTokens special_;
  std::filesystem::path source_;
  std::string chat_template_;
  std::filesystem::path chat_template_file_;
};

}  // namespace mt
