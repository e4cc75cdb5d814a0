// SentencePiece models (LLaMA-2, Mistral v1/v3 `tokenizer.model`) through libsentencepiece.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mt {

struct SentencePieceTokenizer;  // opaque: defined in sentencepiece_tokenizer.cpp

std::shared_ptr<const SentencePieceTokenizer> load_sentencepiece(const std::filesystem::path& file);

// Encoding as HF's slow/fast LLaMA tokenizers and sentencepiece's own encode() do for these models
// (add_dummy_prefix from the model's normalizer spec; no BOS/EOS). With `allow_special`, control
// and user-defined pieces written in the text ("[INST]", "</s>") become their ids; text between
// them is encoded as separate segments.
std::vector<int64_t> sp_encode(const SentencePieceTokenizer& t, std::string_view text, bool allow_special);
// sp_encode(text, false), plus each piece's byte range [begin, end) in `text` (the dummy-prefix
// space covers no input byte). Chat templates use it to find which tokens hold assistant text.
std::vector<int64_t> sp_encode_with_offsets(const SentencePieceTokenizer& t, std::string_view text,
                                            std::vector<std::pair<size_t, size_t>>& offsets);
std::string sp_decode(const SentencePieceTokenizer& t, const std::vector<int64_t>& ids, bool skip_special);
int64_t sp_vocab_size(const SentencePieceTokenizer& t);
int64_t sp_piece_id(const SentencePieceTokenizer& t, std::string_view piece);  // -1 if unknown
// Control and user-defined pieces (text -> id), and bos/eos/pad/unk ids from the model (-1 = none).
std::map<std::string, int64_t> sp_special_pieces(const SentencePieceTokenizer& t);
int64_t sp_bos_id(const SentencePieceTokenizer& t);
int64_t sp_eos_id(const SentencePieceTokenizer& t);
int64_t sp_pad_id(const SentencePieceTokenizer& t);
int64_t sp_unk_id(const SentencePieceTokenizer& t);

}  // namespace mt
