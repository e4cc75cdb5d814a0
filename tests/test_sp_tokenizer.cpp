// SentencePiece through libsentencepiece: ids equal to Python sentencepiece's on the shared text set
// (LLaMA-2, Mistral v1, v3) and llama.cpp's SPM vectors, special pieces split out only when asked,
// byte-fallback decoding, and load errors that name the file.
#include "models/sentencepiece_tokenizer.h"

#include <fstream>

#include "models/tokenizer.h"
#include "tests/shared_data.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using mt::test::require_error;

namespace {

// tests/fixtures/tokenizer/texts.json: a list of strings, or {"texts": [...]}.
std::vector<std::string> shared_texts() {
  const auto j = mt::test::read_json(mt::test::tokenizer_fixture("texts.json"));
  const auto& list = j.is_array() ? j : j.at("texts");
  std::vector<std::string> out;
  for (const auto& t : list) out.push_back(t.get<std::string>());
  return out;
}

std::string show(const std::vector<int64_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

std::vector<int64_t> ids_of(const mt::SentencePieceTokenizer& t, std::initializer_list<const char*> pieces) {
  std::vector<int64_t> ids;
  for (const char* p : pieces) ids.push_back(mt::sp_piece_id(t, p));
  return ids;
}

}  // namespace

TEST_CASE("sentencepiece: encode equals Python sentencepiece on the shared text set", "[sentencepiece][parity]") {
  const auto texts = shared_texts();
  REQUIRE(texts.size() > 20);
  for (const std::string vocab : {"llama2", "mistral", "mistral-v3"}) {
    const auto tok = mt::load_sentencepiece(mt::test::vocab_file(vocab));
    const auto expected = mt::test::read_json(mt::test::tokenizer_fixture(vocab + "_ids.json")).at("ids");
    REQUIRE(expected.size() == texts.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const auto got = mt::sp_encode(*tok, texts[i], false);
      const auto want = expected[i].get<std::vector<int64_t>>();
      if (got != want && ++mismatches <= 5) {
        INFO(vocab << " text " << i << ": got " << show(got) << " want " << show(want));
        CHECK(got == want);
      }
    }
    INFO(vocab << ": " << mismatches << " mismatches of " << texts.size());
    CHECK(mismatches == 0);
  }
}

TEST_CASE("sentencepiece: llama.cpp's LLaMA-2 SPM test vectors", "[sentencepiece][parity]") {
  // .inp: inputs separated by "\n__ggml_vocab_test__\n" (the file ends with one); .out: the
  // expected ids of each input, space separated, no BOS.
  const fs::path dir = mt::test::shared_data() / "tokenizers" / "llamacpp-vectors";
  const std::string inp = mt::test::read_file(dir / "ggml-vocab-llama-spm.gguf.inp");
  const std::string out = mt::test::read_file(dir / "ggml-vocab-llama-spm.gguf.out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0;;) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) break;
    inputs.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<int64_t>> expected;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream nums(line);
    std::vector<int64_t> ids;
    for (int64_t v; nums >> v;) ids.push_back(v);
    expected.push_back(ids);
  }
  REQUIRE(inputs.size() == 46);
  REQUIRE(expected.size() == inputs.size());
  const auto tok = mt::load_sentencepiece(mt::test::vocab_file("llama2"));
  size_t mismatches = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto got = mt::sp_encode(*tok, inputs[i], false);
    if (got != expected[i]) {
      ++mismatches;
      INFO("input " << i << ": got " << show(got) << " want " << show(expected[i]));
      CHECK(got == expected[i]);
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("sentencepiece: decode inverts encode on the shared text set", "[sentencepiece]") {
  const auto texts = shared_texts();
  for (const std::string vocab : {"llama2", "mistral-v3"}) {
    const auto tok = mt::load_sentencepiece(mt::test::vocab_file(vocab));
    size_t mismatches = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string back = mt::sp_decode(*tok, mt::sp_encode(*tok, texts[i], false), false);
      if (back != texts[i] && ++mismatches <= 5) {
        INFO(vocab << " text " << i << ": '" << texts[i] << "' decoded as '" << back << "'");
        CHECK(back == texts[i]);
      }
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("sentencepiece: special pieces become ids only with allow_special, each segment encoded alone",
          "[sentencepiece]") {
  const auto l2 = mt::load_sentencepiece(mt::test::vocab_file("llama2"));
  // Ids from Python: [1] + sp.encode("hello") + [2] + sp.encode(" world ").
  CHECK(mt::sp_encode(*l2, "<s>hello</s> world ", true) == std::vector<int64_t>{1, 22172, 2, 29871, 3186, 29871});
  CHECK(mt::sp_encode(*l2, "Hello <s> world", false) == std::vector<int64_t>{15043, 529, 29879, 29958, 3186});
  CHECK(mt::sp_encode(*l2, "x<unk>y", true) == std::vector<int64_t>{921, 0, 343});
  CHECK(mt::sp_encode(*l2, "<unk>", false) == std::vector<int64_t>{529, 2960, 29958});
  CHECK(mt::sp_encode(*l2, "<s></s>", true) == std::vector<int64_t>{1, 2});
  CHECK(mt::sp_encode(*l2, "", true).empty());

  const auto v3 = mt::load_sentencepiece(mt::test::vocab_file("mistral-v3"));
  CHECK(mt::sp_encode(*v3, "[INST] hi [/INST]", true) == std::vector<int64_t>{3, 29473, 12782, 29473, 4});
  CHECK(mt::sp_encode(*v3, "[INST] hi [/INST]", false) ==
        std::vector<int64_t>{1501, 17057, 29561, 12782, 1501, 29516, 17057, 29561});
  // User-defined pieces are sentencepiece's own business without allow_special...
  CHECK(mt::sp_encode(*v3, "a[REFERENCE_DOC_19]b", false) == std::vector<int64_t>{1032, 751, 29494});
  // ...and segment boundaries like control pieces with it.
  const auto b_alone = mt::sp_encode(*v3, "b", false);
  std::vector<int64_t> want = {1032, 751};
  want.insert(want.end(), b_alone.begin(), b_alone.end());
  CHECK(mt::sp_encode(*v3, "a[REFERENCE_DOC_19]b", true) == want);
}

TEST_CASE("sentencepiece: ids, special pieces and vocabulary size come from the model", "[sentencepiece]") {
  const auto l2 = mt::load_sentencepiece(mt::test::vocab_file("llama2"));
  CHECK(mt::sp_vocab_size(*l2) == 32000);
  CHECK(mt::sp_bos_id(*l2) == 1);
  CHECK(mt::sp_eos_id(*l2) == 2);
  CHECK(mt::sp_unk_id(*l2) == 0);
  CHECK(mt::sp_pad_id(*l2) == -1);
  CHECK(mt::sp_special_pieces(*l2) == std::map<std::string, int64_t>{{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}});
  CHECK(mt::sp_piece_id(*l2, "\xE2\x96\x81hello") == 22172);
  CHECK(mt::sp_piece_id(*l2, "no such piece") == -1);
  CHECK(mt::sp_piece_id(*l2, "<unk>") == 0);

  const auto v3 = mt::load_sentencepiece(mt::test::vocab_file("mistral-v3"));
  CHECK(mt::sp_vocab_size(*v3) == 32768);
  const auto sp = mt::sp_special_pieces(*v3);
  CHECK(sp.at("[INST]") == 3);
  CHECK(sp.at("[/INST]") == 4);
  CHECK(sp.at("[REFERENCE_DOC_0]") == 770);  // user-defined
  CHECK(sp.size() == 771);                   // <unk>, 750 control, 20 user-defined
}

TEST_CASE("sentencepiece: byte-fallback pieces decode to UTF-8 - invalid bytes never crash", "[sentencepiece]") {
  const auto l2 = mt::load_sentencepiece(mt::test::vocab_file("llama2"));
  CHECK(mt::sp_decode(*l2, ids_of(*l2, {"<0xE2>", "<0x82>", "<0xAC>"}), false) == "\xE2\x82\xAC");  // €
  // sp_decode hands back the raw bytes; the Tokenizer shows them as U+FFFD (tests/test_tokenizer_load).
  CHECK(mt::sp_decode(*l2, ids_of(*l2, {"<0xE2>", "<0x82>"}), false) == "\xE2\x82");
  CHECK(mt::sp_decode(*l2, ids_of(*l2, {"<0xE2>", "\xE2\x96\x81hello"}), false) == "\xE2 hello");
  // libsentencepiece's decode rules: the first piece loses the dummy-prefix space, control pieces
  // are invisible when skipped, <unk> shows as " ⁇ ".
  CHECK(mt::sp_decode(*l2, {1, 22172, 2, 3186}, true) == "hello world");
  CHECK(mt::sp_decode(*l2, {1, 22172, 2, 3186}, false) == "<s>hello</s>world");
  CHECK(mt::sp_decode(*l2, {0, 22172}, true) == " \xE2\x81\x87  hello");
  CHECK(mt::sp_decode(*l2, {29871, 22172}, false) == " hello");
  CHECK(mt::sp_decode(*l2, {}, false).empty());
  require_error([&] { mt::sp_decode(*l2, {5, 32000}, false); }, {"32000", "position 1", "vocabulary"});
  require_error([&] { mt::sp_decode(*l2, {-1}, false); }, {"-1"});
}

TEST_CASE("sentencepiece: invalid UTF-8 input is encoded without a crash", "[sentencepiece][bad-input]") {
  const auto l2 = mt::load_sentencepiece(mt::test::vocab_file("llama2"));
  const std::string bad = "ok \xFF\xFE bytes \xC3 end \xED\xA0\x80";
  const auto ids = mt::sp_encode(*l2, bad, false);
  CHECK(!ids.empty());
  CHECK_NOTHROW(mt::sp_decode(*l2, ids, false));
  CHECK(mt::sp_encode(*l2, std::string("a\0b", 3), false).size() >= 2);
}

TEST_CASE("sentencepiece: encode_with_offsets gives each piece's input bytes", "[sentencepiece]") {
  const auto l2 = mt::load_sentencepiece(mt::test::vocab_file("llama2"));
  for (const std::string text : {"Hello world", " Hello  world ", "ä🦙 x", "\n\nx", ""}) {
    std::vector<std::pair<size_t, size_t>> off;
    const auto ids = mt::sp_encode_with_offsets(*l2, text, off);
    CHECK(ids == mt::sp_encode(*l2, text, false));
    REQUIRE(off.size() == ids.size());
    size_t pos = 0;
    for (const auto& [b, e] : off) {
      CHECK(b == pos);  // contiguous, in order, covering the input
      CHECK(e >= b);
      pos = e;
    }
    CHECK(pos == text.size());
  }
}

TEST_CASE("sentencepiece: load errors name the file", "[sentencepiece][bad-input]") {
  const fs::path dir = mt::test::temp_dir("sp_bad");
  const fs::path missing = dir / "nope.model";
  require_error([&] { mt::load_sentencepiece(missing); }, {missing.string(), "cannot open"});
  require_error([&] { mt::load_sentencepiece(dir); }, {dir.string()});
  mt::test::write_file(dir / "empty.model", "");
  require_error([&] { mt::load_sentencepiece(dir / "empty.model"); }, {"empty.model", "empty"});
  mt::test::write_file(dir / "text.model", "this is not a model\nat all\n");
  require_error([&] { mt::load_sentencepiece(dir / "text.model"); }, {"text.model", "SentencePiece"});
  std::string noise(4096, '\0');
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 7919 + 13) % 251);
  mt::test::write_file(dir / "noise.model", noise);
  require_error([&] { mt::load_sentencepiece(dir / "noise.model"); }, {"noise.model"});

  const std::string real = mt::test::read_file(mt::test::vocab_file("llama2"));
  // Truncated anywhere, including exactly at the end of the piece list (a cut protobuf that still
  // parses, but has lost its trainer and normalizer specs).
  size_t after_pieces = 0;
  while (after_pieces < real.size() && real[after_pieces] == 0x0A) {  // field 1, length-delimited
    size_t pos = after_pieces + 1, len = 0;
    for (int shift = 0;; shift += 7) {
      const auto b = static_cast<uint8_t>(real[pos++]);
      len |= static_cast<size_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) break;
    }
    after_pieces = pos + len;
  }
  REQUIRE(after_pieces > 1000);
  for (const size_t n : {size_t{1}, size_t{10}, size_t{1000}, real.size() / 2, after_pieces, real.size() - 1}) {
    const fs::path p = dir / ("cut_" + std::to_string(n) + ".model");
    mt::test::write_file(p, real.substr(0, n));
    INFO("truncated to " << n << " bytes");
    require_error([&] { mt::load_sentencepiece(p); }, {p.string(), "not a valid SentencePiece model"});
  }
  fs::remove_all(dir);
}
