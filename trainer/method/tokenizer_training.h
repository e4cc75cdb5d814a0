// Training a SentencePiece tokenizer from texts in memory with libsentencepiece's own trainer,
// set up as LLaMA-2's (unk/bos/eos = 0/1/2, byte fallback, single-digit pieces, no normalization),
// deterministic for a given seed, and written as a tokenizer.model that mt::Tokenizer::load reads.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mt {

struct SentencePieceTrainOptions {
  int64_t vocab_size = 512;
  std::string model_type = "bpe";       // "bpe" | "unigram"
  uint64_t seed = 0;
  std::vector<std::string> user_defined_symbols;  // e.g. "[INST]", "[/INST]"
};

// Trains on the texts (one sentence per entry, newlines inside an entry kept; empty entries are
// skipped) and writes out_dir/tokenizer.model atomically, creating out_dir. The vocabulary has
// exactly vocab_size pieces: "<unk>" 0, "<s>" 1, "</s>" 2, no pad, the user-defined symbols, the
// 256 byte-fallback pieces, then every character of the texts and learned merges. Text
// round-trips exactly (identity normalization, whitespace kept). Errors (no text, vocab_size too
// small or too large for the texts, a bad option, unwritable out_dir) are mt::Error naming what is
// wrong. Sentencepiece's log is silenced (process-wide), and training sets its process-wide
// random seed, so do not train two tokenizers at once.
void train_sentencepiece_tokenizer(const std::vector<std::string>& texts, const SentencePieceTrainOptions& options,
                                   const std::filesystem::path& out_dir);

}  // namespace mt
