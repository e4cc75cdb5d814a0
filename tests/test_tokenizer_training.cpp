// SentencePiece training (trainer/method/tokenizer_training.h) on the demo suite's texts: the written
// tokenizer.model loads through mt::Tokenizer with exactly the requested vocabulary, LLaMA-2's
// special ids and single-digit pieces, round-trips every text (newlines included), renders a
// LLaMA-2 chat, is byte-identical when trained twice, trains without a word on stderr, and bad
// input is an mt::Error that names the problem.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "models/chat_template.h"
#include "models/tokenizer.h"
#include "trainer/method/demo_tasks.h"
#include "trainer/method/tokenizer_training.h"
#include "tests/test_util.h"

namespace {

std::vector<std::string> demo_texts() {
  mt::DemoSuiteOptions o;
  o.seed_pairs = 100;
  o.unlabeled = 50;
  o.eval_pairs = 20;
  const mt::DemoSuite s = mt::make_demo_suite(o);
  std::vector<std::string> texts;
  for (const auto* split : {&s.seed, &s.eval}) {
    for (const auto& p : *split) {
      texts.push_back(p.instruction);
      texts.push_back(p.response);
    }
  }
  for (const auto& p : s.unlabeled) texts.push_back(p.response);
  texts.push_back("Two lines,\nnot two sentences.");
  texts.push_back("");  // skipped
  return texts;
}

// What fn writes to file descriptor 2 (sentencepiece logs through std::cerr).
template <typename Fn>
std::string stderr_of(Fn&& fn) {
  const auto path = mt::test::temp_dir("stderr") / "stderr.txt";
  std::cerr.flush();
  std::fflush(stderr);
  const int saved = dup(2);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(saved >= 0);
  REQUIRE(fd >= 0);
  dup2(fd, 2);
  close(fd);
  auto restore = [&] {
    std::cerr.flush();
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
  };
  try {
    fn();
  } catch (...) {
    restore();
    throw;
  }
  restore();
  return mt::test::read_file(path);
}

// Renders a one-turn LLaMA-2 chat: BOS first, EOS last, and the loss mask covers the response.
mt::RenderedChat check_llama2_chat(const mt::Tokenizer& tok) {
  const mt::RenderedChat chat =
      mt::render_chat(tok, "llama2", {{"user", "Reverse the word garden."}, {"assistant", "nedrag"}});
  REQUIRE(chat.ids.size() == chat.loss_mask.size());
  CHECK(chat.ids.front() == 1);
  CHECK(chat.ids.back() == 2);
  std::vector<int64_t> target;
  for (size_t i = 0; i < chat.ids.size(); ++i)
    if (chat.loss_mask[i]) target.push_back(chat.ids[i]);
  CHECK(target.back() == 2);
  CHECK(tok.decode(target, /*skip_special=*/true) == "nedrag ");
  return chat;
}

}  // namespace

TEST_CASE("tokenizer training: a LLaMA-2 style tokenizer from the demo texts", "[tokenizer_training]") {
  const auto texts = demo_texts();
  mt::SentencePieceTrainOptions o;
  o.vocab_size = 400;
  o.user_defined_symbols = {"[INST]", "[/INST]"};
  const auto dir = mt::test::temp_dir("sp_train");
  const std::string log = stderr_of([&] { mt::train_sentencepiece_tokenizer(texts, o, dir); });
  INFO("stderr: " << log.substr(0, 500));
  CHECK(log.empty());
  REQUIRE(std::filesystem::is_regular_file(dir / "tokenizer.model"));

  const mt::Tokenizer tok = mt::Tokenizer::load(dir);
  CHECK(tok.kind() == "sentencepiece");
  CHECK(tok.vocab_size() == 400);
  CHECK(tok.special().unk == 0);
  CHECK(tok.special().bos == 1);
  CHECK(tok.special().eos == 2);
  CHECK(tok.special().pad == -1);
  CHECK(tok.special().add_bos);
  CHECK_FALSE(tok.special().add_eos);
  CHECK(tok.token_id("<unk>") == 0);
  CHECK(tok.token_id("<s>") == 1);
  CHECK(tok.token_id("</s>") == 2);
  CHECK(tok.token_id("[INST]") == 3);
  CHECK(tok.token_id("[/INST]") == 4);
  // Byte-fallback pieces <0x00>..<0xFF> come right after the user-defined symbols.
  CHECK(tok.token_id("<0x00>") == 5);
  CHECK(tok.token_id("<0xFF>") == 5 + 255);

  for (const auto& text : texts) {
    INFO("text: " << text);
    const auto ids = tok.encode(text);
    CHECK(tok.decode(ids) == text);
    CHECK(std::find(ids.begin(), ids.end(), int64_t{0}) == ids.end());  // never <unk>
  }
  // Characters never seen in training come through byte fallback, still exactly.
  for (const std::string text : {"\xC3\xA9t\xC3\xA9 \xE2\x82\xAC 42", "tab\there", "  two  spaces "}) {
    INFO("text: " << text);
    CHECK(tok.decode(tok.encode(text)) == text);
  }

  // Digits are single tokens.
  const auto digits = tok.encode("123");
  REQUIRE(digits.size() >= 3);
  const std::vector<int64_t> last3(digits.end() - 3, digits.end());
  CHECK(last3 == std::vector<int64_t>{*tok.token_id("1"), *tok.token_id("2"), *tok.token_id("3")});
  for (size_t i = 0; i + 3 < digits.size(); ++i) CHECK(tok.decode({digits[i]}).find_first_of("0123456789") == std::string::npos);

  // A LLaMA-2 chat renders with the [INST] pieces. Text right after a special piece decodes as a
  // text of its own (its leading space is the dummy prefix), as HF decodes it.
  const mt::RenderedChat chat = check_llama2_chat(tok);
  CHECK(std::count(chat.ids.begin(), chat.ids.end(), int64_t{3}) == 1);
  CHECK(std::count(chat.ids.begin(), chat.ids.end(), int64_t{4}) == 1);
  CHECK(tok.decode(chat.ids) == "<s>[INST]Reverse the word garden. [/INST]nedrag </s>");
}

TEST_CASE("tokenizer training: the same texts and seed give the same file", "[tokenizer_training]") {
  const auto texts = demo_texts();
  mt::SentencePieceTrainOptions o;
  o.vocab_size = 400;
  o.seed = 5;
  const auto a = mt::test::temp_dir("sp_train_a"), b = mt::test::temp_dir("sp_train_b") / "nested" / "dir";
  mt::train_sentencepiece_tokenizer(texts, o, a);
  mt::train_sentencepiece_tokenizer(texts, o, b);  // creates the directory
  const std::string model = mt::test::read_file(a / "tokenizer.model");
  CHECK(model.size() > 1000);
  CHECK(model == mt::test::read_file(b / "tokenizer.model"));
  // Only the model file: no temporaries left beside it.
  CHECK(std::distance(std::filesystem::directory_iterator(a), std::filesystem::directory_iterator()) == 1);
  // Without [INST] symbols the chat is plain text between BOS and EOS, as with LLaMA-2's own model.
  const mt::Tokenizer bpe = mt::Tokenizer::load(a);
  CHECK(bpe.decode(check_llama2_chat(bpe).ids) == "<s>[INST] Reverse the word garden. [/INST] nedrag </s>");

  // Unigram training works too, with the same layout.
  o.model_type = "unigram";
  const auto u = mt::test::temp_dir("sp_train_unigram");
  mt::train_sentencepiece_tokenizer(texts, o, u);
  const mt::Tokenizer tok = mt::Tokenizer::load(u);
  CHECK(tok.vocab_size() == 400);
  CHECK(tok.special().bos == 1);
  for (size_t i = 0; i < texts.size(); i += 7) CHECK(tok.decode(tok.encode(texts[i])) == texts[i]);
}

TEST_CASE("tokenizer training: bad input is mt::Error", "[tokenizer_training]") {
  const auto texts = demo_texts();
  const auto dir = mt::test::temp_dir("sp_train_bad");
  mt::SentencePieceTrainOptions o;
  o.vocab_size = 400;
  mt::test::require_error([&] { mt::train_sentencepiece_tokenizer({}, o, dir); }, {"no training text"});
  mt::test::require_error([&] { mt::train_sentencepiece_tokenizer({"", ""}, o, dir); }, {"no training text"});
  {
    mt::SentencePieceTrainOptions small = o;
    small.vocab_size = 5;
    mt::test::require_error([&] { mt::train_sentencepiece_tokenizer(texts, small, dir); },
                            {"vocab_size 5", "too small"});
  }
  {
    // Above the byte pieces but below the characters the text needs (character_coverage 1.0).
    mt::SentencePieceTrainOptions small = o;
    small.vocab_size = 270;
    mt::test::require_error([&] { mt::train_sentencepiece_tokenizer(texts, small, dir); }, {"vocab_size 270"});
  }
  {
    mt::SentencePieceTrainOptions large = o;
    large.vocab_size = 20000;
    mt::test::require_error([&] { mt::train_sentencepiece_tokenizer(texts, large, dir); }, {"vocab_size 20000"});
  }
  {
    mt::SentencePieceTrainOptions bad = o;
    bad.model_type = "wordpiece";
    mt::test::require_error([&] { mt::train_sentencepiece_tokenizer(texts, bad, dir); }, {"model_type", "wordpiece"});
    bad = o;
    bad.user_defined_symbols = {"a,b"};
    mt::test::require_error([&] { mt::train_sentencepiece_tokenizer(texts, bad, dir); }, {"a,b"});
  }
  CHECK_FALSE(std::filesystem::exists(dir / "tokenizer.model"));  // nothing written on failure

  // An output directory that cannot be created (its parent is a file).
  mt::test::write_file(dir / "file", "x");
  mt::test::require_error([&] { mt::train_sentencepiece_tokenizer(texts, o, dir / "file" / "out"); },
                          {"file/out"});
}
