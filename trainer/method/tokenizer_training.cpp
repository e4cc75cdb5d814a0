// SentencePiece tokenizer training (see tokenizer_training.h): the texts go to libsentencepiece's
// trainer through its sentence-iterator API (so newlines inside a text are not sentence breaks),
// the serialized model comes back in memory, is checked for the exact vocabulary size, and is
// written atomically.
#include "trainer/method/tokenizer_training.h"

#include <fmt/format.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <system_error>
#include <unordered_map>

#include "models/atomic_file.h"
#include "models/error.h"

namespace mt {

namespace {

// The texts as sentencepiece's training input, empty ones skipped (they carry no characters).
class TextIterator : public sentencepiece::SentenceIterator {
 public:
  explicit TextIterator(const std::vector<std::string>& texts) : texts_(texts) { skip_empty(); }
  bool done() const override { return next_ >= texts_.size(); }
  void Next() override {
    ++next_;
    skip_empty();
  }
  const std::string& value() const override { return texts_[next_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  void skip_empty() {
    while (next_ < texts_.size() && texts_[next_].empty()) ++next_;
  }
  const std::vector<std::string>& texts_;
  size_t next_ = 0;
};

constexpr int64_t kSpecialPieces = 3, kBytePieces = 256;  // <unk> <s> </s>; <0x00>..<0xFF>

}  // namespace

void train_sentencepiece_tokenizer(const std::vector<std::string>& texts, const SentencePieceTrainOptions& options,
                                   const std::filesystem::path& out_dir) {
  const char* what = "train_sentencepiece_tokenizer";
  if (options.model_type != "bpe" && options.model_type != "unigram")
    throw Error(fmt::format("{}: model_type '{}' is not one of bpe, unigram", what, options.model_type));
  size_t chars = 0, longest = 0;
  for (const auto& t : texts) {
    chars += t.size();
    longest = std::max(longest, t.size());
  }
  if (chars == 0) throw Error(fmt::format("{}: no training text ({} texts, all empty)", what, texts.size()));
  std::string symbols;
  for (const auto& s : options.user_defined_symbols) {
    // The trainer takes the list comma-separated, so a comma cannot be part of a symbol.
    if (s.empty() || s.find(',') != std::string::npos)
      throw Error(fmt::format("{}: user-defined symbol '{}' must be non-empty and contain no comma", what, s));
    symbols += (symbols.empty() ? "" : ",") + s;
  }
  const int64_t reserved = kSpecialPieces + kBytePieces + static_cast<int64_t>(options.user_defined_symbols.size());
  if (options.vocab_size <= reserved)
    throw Error(fmt::format("{}: vocab_size {} is too small: the 3 special tokens, 256 byte-fallback pieces and {} "
                            "user-defined symbols alone take {}, and the characters of the text need more",
                            what, options.vocab_size, options.user_defined_symbols.size(), reserved));
  if (options.vocab_size > (int64_t{1} << 24))
    throw Error(fmt::format("{}: vocab_size {} is too large (at most {})", what, options.vocab_size, int64_t{1} << 24));

  std::unordered_map<std::string, std::string> args = {
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"hard_vocab_limit", "true"},
      {"character_coverage", "1.0"},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"unk_id", "0"}, {"bos_id", "1"}, {"eos_id", "2"}, {"pad_id", "-1"},
      {"unk_piece", "<unk>"}, {"bos_piece", "<s>"}, {"eos_piece", "</s>"},
      // As LLaMA-2's model: no normalization, whitespace kept, so that decode(encode(t)) == t.
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"input_sentence_size", "0"},  // every text, no sampling
      {"max_sentence_length", std::to_string(std::max<size_t>(4192, longest))},  // none skipped
      {"num_threads", "1"},          // one thread: the same model on every run
      {"minloglevel", "3"},          // quiet (process-wide); failures come back as a status
  };
  if (!symbols.empty()) args["user_defined_symbols"] = symbols;

  // sentencepiece's random seed is process-wide; (unsigned)-1 means "from std::random_device".
  auto seed = static_cast<unsigned>(options.seed ^ (options.seed >> 32));
  if (seed == static_cast<unsigned>(-1)) seed -= 1;
  sentencepiece::SetRandomGeneratorSeed(seed);
  TextIterator sentences(texts);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &sentences, &model);
  sentencepiece::SetRandomGeneratorSeed(static_cast<unsigned>(-1));  // back to the library's default
  if (!status.ok())
    throw Error(fmt::format("{}: sentencepiece training failed (vocab_size {}, model_type {}, {} texts): {}", what,
                            options.vocab_size, options.model_type, texts.size(), status.ToString()));

  // BPE stops early, without an error, when the texts have no more pairs to merge.
  sentencepiece::SentencePieceProcessor trained;
  const auto loaded = trained.LoadFromSerializedProto(model);
  if (!loaded.ok()) throw Error(fmt::format("{}: the trained model does not load: {}", what, loaded.ToString()));
  if (trained.GetPieceSize() != options.vocab_size)
    throw Error(fmt::format("{}: vocab_size {} is too large for these texts: training found only {} pieces", what,
                            options.vocab_size, trained.GetPieceSize()));

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw Error(fmt::format("{}: cannot create output directory {}: {}", what, out_dir.string(), ec.message()));
  write_file_atomically(out_dir / "tokenizer.model", [&](int fd, const std::string& tmp) {
    write_all(fd, model.data(), model.size(), tmp);
  });
}

}  // namespace mt
