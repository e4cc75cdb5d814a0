// Byte-level BPE (LLaMA-3): id parity with tiktoken, llama.cpp's vectors and HF tokenizers on the
// real LLaMA-3 vocabulary in ../shared/data and the tiny tokenizer.json fixture; the pre-tokenizer's
// tricky regex cases; byte-exact round trips (invalid UTF-8 too); clear errors for bad files.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <random>
#include <sstream>

#include "models/bpe_tokenizer.h"
#include "tests/test_util.h"

using mt::test::require_error;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using mt::test::read_json;
using mt::test::shared_data;
fs::path tok_fixture(const std::string& name) { return mt::test::tokenizer_fixture(name); }
fs::path llama3_file() { return mt::test::vocab_file("llama3"); }

const std::vector<std::string>& texts() {
  static const std::vector<std::string> t = read_json(tok_fixture("texts.json"))["texts"].get<std::vector<std::string>>();
  return t;
}

std::vector<std::vector<int64_t>> expected_ids(const std::string& name) {
  return read_json(tok_fixture(name))["ids"].get<std::vector<std::vector<int64_t>>>();
}

const mt::BpeTokenizer& llama3() {
  static const auto t = mt::load_tiktoken_bpe(llama3_file(), mt::llama3_special_tokens());
  return *t;
}
const mt::BpeTokenizer& tiny() {
  static const auto t = mt::load_tokenizer_json_bpe(tok_fixture("tiny_bpe/tokenizer.json"));
  return *t;
}

std::string ids_str(const std::vector<int64_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size() && i < 40; ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s + (ids.size() > 40 ? " ..." : "");
}

// Encodes every text and counts the ones whose ids differ from `want`, reporting the first few.
size_t count_mismatches(const mt::BpeTokenizer& t, const std::vector<std::string>& inputs,
                        const std::vector<std::vector<int64_t>>& want, bool allow_special, const std::string& what) {
  REQUIRE(inputs.size() == want.size());
  size_t bad = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto got = mt::bpe_encode(t, inputs[i], allow_special);
    if (got == want[i]) continue;
    if (++bad <= 5) {
      UNSCOPED_INFO(what << " text " << i << " " << json(inputs[i]).dump().substr(0, 80) << "\n  got  " << ids_str(got)
                         << "\n  want " << ids_str(want[i]));
    }
  }
  return bad;
}

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  for (auto p : mt::llama3_pretokenize(text)) out.emplace_back(p);
  return out;
}

fs::path write_temp(const std::string& tag, const std::string& name, const std::string& content) {
  const fs::path p = mt::test::temp_dir(tag) / name;
  mt::test::write_file(p, content);
  return p;
}

}  // namespace

TEST_CASE("tokenizer bpe: LLaMA-3 ids equal tiktoken's on every parity text", "[tokenizer]") {
  const auto& t = llama3();
  REQUIRE(texts().size() >= 150);
  CHECK(count_mismatches(t, texts(), expected_ids("llama3_ids.json"), false, "llama3_ids") == 0);
  CHECK(count_mismatches(t, texts(), expected_ids("llama3_special_ids.json"), true, "llama3_special_ids") == 0);
}

TEST_CASE("tokenizer bpe: LLaMA-3 ids equal llama.cpp's llama-bpe vectors", "[tokenizer]") {
  const fs::path dir = shared_data() / "tokenizers" / "llamacpp-vectors";
  const std::string inp = mt::test::read_file(dir / "ggml-vocab-llama-bpe.gguf.inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < inp.size();) {  // the file ends with a separator
    const size_t next = inp.find(sep, pos);
    REQUIRE(next != std::string::npos);
    inputs.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<int64_t>> want;
  std::istringstream out(mt::test::read_file(dir / "ggml-vocab-llama-bpe.gguf.out"));
  for (std::string line; std::getline(out, line);) {
    std::istringstream ls(line);
    want.emplace_back(std::istream_iterator<int64_t>(ls), std::istream_iterator<int64_t>());
  }
  REQUIRE(inputs.size() == 46);
  // The vectors come from HF's tokenizer (added tokens split out), i.e. allow_special.
  CHECK(count_mismatches(llama3(), inputs, want, true, "llama.cpp") == 0);
  CHECK(count_mismatches(llama3(), inputs, want, false, "llama.cpp") == 0);
}

TEST_CASE("tokenizer bpe: tiny tokenizer.json gives HF tokenizers' ids, in both merge spellings", "[tokenizer]") {
  CHECK(count_mismatches(tiny(), texts(), expected_ids("tiny_bpe_ids.json"), true, "tiny_bpe") == 0);
  CHECK(count_mismatches(tiny(), texts(), expected_ids("tiny_bpe_nospecial_ids.json"), false, "tiny_bpe_nospecial") == 0);
  // The same model with merges written as "a b" strings (the older tokenizers format).
  json j = read_json(tok_fixture("tiny_bpe/tokenizer.json"));
  REQUIRE(j["model"]["merges"][0].is_array());
  for (auto& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  const auto legacy = mt::load_tokenizer_json_bpe(write_temp("bpe_legacy", "tokenizer.json", j.dump()));
  CHECK(count_mismatches(*legacy, texts(), expected_ids("tiny_bpe_ids.json"), true, "tiny_bpe legacy merges") == 0);

  const auto& t = tiny();
  CHECK(mt::bpe_vocab_size(t) == 1004);
  CHECK(mt::bpe_special_tokens(t).at("<|eot_id|>") == 4);
  CHECK(mt::bpe_special_tokens(t).count("<tool_call>") == 0);  // added but not special
  CHECK(mt::bpe_token_id(t, "<tool_call>") == 1001);
  CHECK(mt::bpe_token_id(t, " the") >= 0);
  // Special text stays text without allow_special; plain added tokens are always split out (HF).
  CHECK(mt::bpe_encode(t, "<|eot_id|>", true) == std::vector<int64_t>{4});
  CHECK(mt::bpe_encode(t, "<|eot_id|>", false).size() > 1);
  CHECK(mt::bpe_encode(t, "<tool_call>", false) == std::vector<int64_t>{1001});
  // lstrip takes the white space before <mask> into it; rstrip the one after </tool_call>.
  CHECK(mt::bpe_encode(t, "a  <mask>", true) == std::vector<int64_t>{mt::bpe_token_id(t, "a"), 1000});
  CHECK(mt::bpe_encode(t, "</tool_call>  x", true).front() == 1003);
  CHECK(mt::bpe_encode(t, "</tool_call>  x", true).size() == 2);
  CHECK(mt::bpe_decode_bytes(t, {1002}, false) == "hello world");
  CHECK(mt::bpe_decode_bytes(t, {4, 1001}, true) == "<tool_call>");
}

TEST_CASE("tokenizer bpe: LLaMA-3 special tokens are Meta's Llama 3.1 list", "[tokenizer]") {
  const auto sp = mt::llama3_special_tokens();
  REQUIRE(sp.size() == 256);
  CHECK(sp.at("<|begin_of_text|>") == 128000);
  CHECK(sp.at("<|end_of_text|>") == 128001);
  CHECK(sp.at("<|reserved_special_token_1|>") == 128003);
  CHECK(sp.at("<|finetune_right_pad_id|>") == 128004);
  CHECK(sp.at("<|step_id|>") == 128005);
  CHECK(sp.at("<|start_header_id|>") == 128006);
  CHECK(sp.at("<|end_header_id|>") == 128007);
  CHECK(sp.at("<|eom_id|>") == 128008);
  CHECK(sp.at("<|eot_id|>") == 128009);
  CHECK(sp.at("<|python_tag|>") == 128010);
  CHECK(sp.at("<|reserved_special_token_2|>") == 128011);
  CHECK(sp.at("<|reserved_special_token_246|>") == 128255);
  const auto& t = llama3();
  CHECK(mt::bpe_vocab_size(t) == 128256);
  CHECK(mt::bpe_special_tokens(t) == sp);
  CHECK(mt::bpe_token_id(t, "Hello") == 9906);
  CHECK(mt::bpe_token_id(t, " world") == 1917);
  CHECK(mt::bpe_token_id(t, "<|eot_id|>") == -1);  // special, not a regular token
  CHECK(mt::bpe_token_id(t, "no such token at all here") == -1);
  const std::vector<int64_t> ids = mt::bpe_encode(t, "<|begin_of_text|>Hi<|eot_id|>", true);
  CHECK(ids == std::vector<int64_t>{128000, 13347, 128009});
  CHECK(mt::bpe_decode_bytes(t, ids, false) == "<|begin_of_text|>Hi<|eot_id|>");
  CHECK(mt::bpe_decode_bytes(t, ids, true) == "Hi");
}

TEST_CASE("tokenizer bpe: the pre-tokenizer splits as LLaMA-3's regex does", "[tokenizer]") {
  using V = std::vector<std::string>;
  // Expected pieces are tiktoken's / HF's for the same pattern.
  CHECK(pieces("Hello world") == V{"Hello", " world"});
  CHECK(pieces("") == V{});
  // Contractions: case-insensitive, only right after the apostrophe; U+017F folds to 's'.
  CHECK(pieces("I'm here, it'S") == V{"I", "'m", " here", ",", " it", "'S"});
  CHECK(pieces("WE'RE 'LL 'Ve 'rE") == V{"WE", "'RE", " '", "LL", " '", "Ve", " '", "rE"});
  CHECK(pieces("don't you'll I'D") == V{"don", "'t", " you", "'ll", " I", "'D"});
  CHECK(pieces("'sup") == V{"'s", "up"});
  CHECK(pieces("it'\xC5\xBF") == V{"it", "'\xC5\xBF"});    // 'ſ
  CHECK(pieces(" '\xC5\xBFt") == V{" '", "\xC5\xBFt"});   // the space comes first: no contraction
  CHECK(pieces("''s") == V{"''", "s"});
  CHECK(pieces("'123") == V{"'", "123"});
  CHECK(pieces("don\xE2\x80\x99t") == V{"don", "\xE2\x80\x99t"});  // U+2019 is not an apostrophe here
  // Numbers: runs of at most three, never with a leading space.
  CHECK(pieces("12345 1234567") == V{"123", "45", " ", "123", "456", "7"});
  CHECK(pieces("abc123def") == V{"abc", "123", "def"});
  CHECK(pieces("\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4") == V{"\xD9\xA1\xD9\xA2\xD9\xA3", "\xD9\xA4"});  // Arabic-Indic digits
  // White space: a run before a word gives its last space to the word; CR/LF runs end at the last one.
  CHECK(pieces("  foo") == V{" ", " foo"});
  CHECK(pieces("   foo bar  ") == V{"  ", " foo", " bar", "  "});
  CHECK(pieces("a \n  b") == V{"a", " \n", " ", " b"});
  CHECK(pieces("x  \n\n  y") == V{"x", "  \n\n", " ", " y"});
  CHECK(pieces("\r\n\r\n  x") == V{"\r\n\r\n", " ", " x"});
  CHECK(pieces("\t\tx") == V{"\t", "\tx"});
  CHECK(pieces("\tfoo") == V{"\tfoo"});
  CHECK(pieces(" 123") == V{" ", "123"});
  CHECK(pieces("end  ") == V{"end", "  "});
  CHECK(pieces("    def f():\n        return 1\n") ==
        V{"   ", " def", " f", "():\n", "       ", " return", " ", "1", "\n"});
  // Punctuation takes one leading space and trailing CR/LF; any non-letter/number/CRLF prefixes a word.
  CHECK(pieces(" !!!\n\nfoo") == V{" !!!\n\n", "foo"});
  CHECK(pieces("$hello (world)") == V{"$hello", " (", "world", ")"});
  CHECK(pieces("?!\r\n") == V{"?!\r\n"});
  // Unicode white space (White_Space, not Python's isspace) and letters.
  CHECK(pieces("a\xC2\xA0" "b") == V{"a", "\xC2\xA0" "b"});                               // U+00A0
  CHECK(pieces("x\xE3\x80\x80\xE3\x80\x80y") == V{"x", "\xE3\x80\x80", "\xE3\x80\x80y"});  // U+3000
  CHECK(pieces("a\xE2\x80\xA8" "b") == V{"a", "\xE2\x80\xA8" "b"});                         // U+2028
  CHECK(pieces("x\x1C\x1Dy") == V{"x", "\x1C\x1D", "y"});  // U+001C.. are not \s in Rust's regex
  CHECK(pieces("caf\xC3\xA9 cafe\xCC\x81") == V{"caf\xC3\xA9", " cafe", "\xCC\x81"});  // a combining mark is not \p{L}
  CHECK(pieces("\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C") == V{"\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C"});
  CHECK(pieces("\xF0\x90\x97\x80\xF0\x90\x97\x81") == V{"\xF0\x90\x97\x80\xF0\x90\x97\x81"});  // Todhri: letters in Unicode 16
  // Invalid UTF-8: each bad byte is a character of its own, grouped like punctuation.
  CHECK(pieces("a\xFF\xFE" "b") == V{"a", "\xFF\xFE", "b"});
  CHECK(pieces(" \xFF" "b") == V{" \xFF", "b"});
  CHECK(pieces("x \xC3") == V{"x", " \xC3"});
  CHECK(pieces("\xED\xA0\x80") == V{"\xED\xA0\x80"});  // a surrogate encoded: three bad bytes
  CHECK(pieces("\x80\x80 9") == V{"\x80\x80", " ", "9"});
}

TEST_CASE("tokenizer bpe: decode(encode(x)) == x for every text and for random bytes", "[tokenizer]") {
  std::vector<std::string> inputs = texts();
  std::mt19937_64 rng(20240611);
  for (int i = 0; i < 300; ++i) {  // random bytes: mostly invalid UTF-8
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    inputs.push_back(s);
  }
  for (int i = 0; i < 100; ++i) {  // random mixes of the tricky characters
    static const char* parts[] = {" ", "  ", "\n", "\r\n", "\t", "'", "'s", "a", "Z", "1", "\xC5\xBF", "\xC2\xA0",
                                  "\xE3\x80\x80", "\xE4\xBD\xA0", "!", "\xF0\x9F\x98\x80", "\xFF", "\xC3", "<|eot_id|>"};
    std::string s;
    for (int k = static_cast<int>(rng() % 40); k > 0; --k) s += parts[rng() % (sizeof(parts) / sizeof(parts[0]))];
    inputs.push_back(s);
  }
  for (const mt::BpeTokenizer* t : {&llama3(), &tiny()}) {
    size_t bad = 0;
    for (const auto& s : inputs) {
      for (bool special : {false, true}) {
        std::string joined;
        for (auto p : mt::llama3_pretokenize(s)) joined += p;
        if (joined != s) ++bad;
        if (mt::bpe_decode_bytes(*t, mt::bpe_encode(*t, s, special), false) != s) {
          if (++bad <= 3) UNSCOPED_INFO("round trip failed for " << json(s).dump(-1, ' ', false, json::error_handler_t::replace));
        }
      }
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("tokenizer bpe: long pieces round-trip and never go quadratic", "[tokenizer]") {
  // Parity for long pieces (heap merge path, > 64 bytes) is in the parity texts: 300 'a', a CJK
  // sentence x6, a 324-byte German compound, 500 random letters ... all equal tiktoken's ids.
  const auto& t = llama3();
  // One pre-token of 1 MB (no spaces): the heap merge must round-trip and scale like n log n, not
  // n^2. Timed against the same bytes as four 256 KB pre-tokens, so both runs do the same work but
  // for the piece length, and a loaded machine slows both alike: a quadratic merge would take 4x.
  std::string big;
  std::mt19937 rng(7);
  while (big.size() < (1 << 20)) big.push_back(static_cast<char>('a' + rng() % 26));
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = mt::bpe_encode(t, big, false);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto t1 = std::chrono::steady_clock::now();
  for (size_t q = 0; q < 4; ++q) (void)mt::bpe_encode(t, std::string_view(big).substr(q << 18, 1 << 18), false);
  const double quarter_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  CHECK(mt::bpe_decode_bytes(t, ids, false) == big);
  INFO("1 MB piece: " << secs << " s, four 256 KB pieces: " << quarter_secs << " s");
  CHECK(secs < 3 * quarter_secs + 0.2);  // 1.8x measured here
  // Prefixes of a long word, across the scan/heap boundary at 64 bytes.
  const std::string word = "Donaudampfschifffahrtselektrizitaetenhauptbetriebswerkbauunterbeamtengesellschaft";
  for (size_t n = 60; n <= word.size(); ++n) {
    const auto a = mt::bpe_encode(t, word.substr(0, n), false);
    CHECK(mt::bpe_decode_bytes(t, a, false) == word.substr(0, n));
  }
}

TEST_CASE("tokenizer bpe: bad tiktoken files are errors naming the file and line", "[tokenizer][bad-input]") {
  // A valid little file: all 256 bytes (ranks 0..255) plus a merge "ab" (256).
  std::string good;
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int b = 0; b < 256; ++b) {
    good += std::string{b64[b >> 2], b64[(b & 3) << 4], '=', '='} + " " + std::to_string(b) + "\n";
  }
  good += "YWI= 256\n";  // "ab"
  const auto ok = mt::load_tiktoken_bpe(write_temp("bpe_tt", "ok.tiktoken", good), {{"<|x|>", 300}});
  CHECK(mt::bpe_encode(*ok, "ab", false) == std::vector<int64_t>{256});
  CHECK(mt::bpe_encode(*ok, "ab<|x|>", true) == std::vector<int64_t>{256, 300});
  CHECK(mt::bpe_vocab_size(*ok) == 301);

  auto bad = [&](const std::string& text, std::initializer_list<std::string> parts) {
    const fs::path p = write_temp("bpe_tt_bad", "bad.tiktoken", text);
    require_error([&] { mt::load_tiktoken_bpe(p, {}); }, parts);
  };
  bad(good + "@@@@ 257\n", {"bad.tiktoken:258:", "invalid base64"});
  bad(good + "YWJj\n", {"bad.tiktoken:258:", "expected"});
  bad(good + "YWJj 12x\n", {"bad.tiktoken:258:", "rank"});
  bad(good + "YWJj -1\n", {"bad.tiktoken:258:", "rank"});
  bad(good + "YWJj 256\n", {"bad.tiktoken:258:", "duplicate rank 256", "line 257"});
  bad(good + "YWI= 257\n", {"bad.tiktoken:258:", "duplicate token", "line 257"});
  bad(good + "YWJj 999\n", {"bad.tiktoken:258:", "out of range"});
  bad(good + "YWJj 257 9\n", {"bad.tiktoken:258:", "expected"});
  bad("", {"bad.tiktoken", "empty"});
  bad("\n\n", {"bad.tiktoken", "empty"});
  bad("YQ== 0\n", {"bad.tiktoken", "no token for byte 0x00"});
  require_error([] { mt::load_tiktoken_bpe("/nonexistent/dir/tokenizer.model", {}); },
                {"/nonexistent/dir/tokenizer.model", "cannot open"});
  const fs::path p = write_temp("bpe_tt_sp", "ok.tiktoken", good);
  require_error([&] { mt::load_tiktoken_bpe(p, {{"<|x|>", 5}}); }, {"ok.tiktoken", "<|x|>", "already taken"});
}

TEST_CASE("tokenizer bpe: bad tokenizer.json files are errors naming the file and JSON path", "[tokenizer][bad-input]") {
  const json good = read_json(tok_fixture("tiny_bpe/tokenizer.json"));
  auto bad = [&](const std::function<void(json&)>& edit, std::initializer_list<std::string> parts) {
    json j = good;
    edit(j);
    const fs::path p = write_temp("bpe_json_bad", "tokenizer.json", j.dump());
    require_error([&] { mt::load_tokenizer_json_bpe(p); }, parts);
  };
  bad([](json& j) { j["model"]["type"] = "Unigram"; }, {"tokenizer.json", "model.type", "Unigram"});
  bad([](json& j) { j["model"].erase("type"); }, {"tokenizer.json", "model.type", "missing"});
  bad([](json& j) { j["model"].erase("merges"); }, {"tokenizer.json", "model.merges", "missing"});
  bad([](json& j) { j["model"].erase("vocab"); }, {"tokenizer.json", "model.vocab", "missing"});
  bad([](json& j) { j.erase("model"); }, {"tokenizer.json", "model"});
  bad([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] =
                        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"; },
      {"tokenizer.json", "pre_tokenizer.pretokenizers[0].pattern.Regex", "unsupported pre-tokenizer regex"});
  bad([](json& j) { j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}; },
      {"tokenizer.json", "pre_tokenizer", "unsupported pre-tokenizer"});
  bad([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true; },
      {"tokenizer.json", "pre_tokenizer.pretokenizers[1].use_regex"});
  bad([](json& j) { j["normalizer"] = {{"type", "NFC"}}; }, {"tokenizer.json", "normalizer", "unsupported"});
  bad([](json& j) { j["model"]["merges"][3] = json::array({"zzzq", "t"}); }, {"tokenizer.json", "model.merges[3]", "zzzq"});
  bad([](json& j) { j["model"]["merges"][5] = "a b c"; }, {"tokenizer.json", "model.merges[5]"});
  bad([](json& j) { j["model"]["merges"][7] = 42; }, {"tokenizer.json", "model.merges[7]"});
  bad([](json& j) { j["model"]["vocab"]["Ġthe"] = "x"; }, {"tokenizer.json", "model.vocab[\"Ġthe\"]"});
  bad([](json& j) { j["model"]["vocab"]["a b"] = 5000; }, {"tokenizer.json", "model.vocab[\"a b\"]", "byte-level"});
  bad([](json& j) { j["added_tokens"][0].erase("content"); }, {"tokenizer.json", "added_tokens[0].content"});
  bad([](json& j) { j["added_tokens"][1]["single_word"] = true; }, {"tokenizer.json", "added_tokens[1].single_word"});
  bad([](json& j) { j["decoder"] = nullptr; }, {"tokenizer.json", "decoder"});
  bad([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["invert"] = "yes"; }, {"tokenizer.json"});
  // Not JSON at all, and no file.
  const fs::path p = write_temp("bpe_json_bad", "tokenizer.json", "{\"model\": [1, 2,");
  require_error([&] { mt::load_tokenizer_json_bpe(p); }, {"tokenizer.json", "invalid JSON"});
  require_error([] { mt::load_tokenizer_json_bpe("/nonexistent/tokenizer.json"); }, {"/nonexistent/tokenizer.json"});
}

TEST_CASE("tokenizer bpe: decode rejects ids outside the vocabulary", "[tokenizer][bad-input]") {
  require_error([] { mt::bpe_decode_bytes(llama3(), {9906, 128256}, false); }, {"tokenizer.model", "128256"});
  require_error([] { mt::bpe_decode_bytes(llama3(), {-1}, false); }, {"-1"});
  require_error([] { mt::bpe_decode_bytes(tiny(), {1004}, false); }, {"tokenizer.json", "1004"});
  CHECK(mt::bpe_decode_bytes(llama3(), {}, false).empty());
}

// Hidden ("[.]": not run by CTest): the converted file is ~9 MB and not in the repo. Run it with
//   scripts/make_tokenizer_vectors.py --keep-llama3-json /tmp/llama3.json &&
//   MT_LLAMA3_TOKENIZER_JSON=/tmp/llama3.json build/tests/maintune_tests "[llama3-json]"
TEST_CASE("tokenizer bpe: a full LLaMA-3 tokenizer.json (MT_LLAMA3_TOKENIZER_JSON) gives tiktoken's ids",
          "[.][tokenizer][llama3-json]") {
  const char* path = std::getenv("MT_LLAMA3_TOKENIZER_JSON");
  INFO("set MT_LLAMA3_TOKENIZER_JSON to a converted LLaMA-3 tokenizer.json");
  REQUIRE((path != nullptr && *path != '\0'));
  const auto t = mt::load_tokenizer_json_bpe(path);
  CHECK(mt::bpe_vocab_size(*t) == 128256);
  CHECK(count_mismatches(*t, texts(), expected_ids("llama3_ids.json"), false, "llama3 tokenizer.json") == 0);
  CHECK(count_mismatches(*t, texts(), expected_ids("llama3_special_ids.json"), true, "llama3 tokenizer.json special") == 0);
}
