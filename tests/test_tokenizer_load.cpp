// Tokenizer::load on single files and HF model directories: kind detected by content, special ids
// from tokenizer_config.json / special_tokens_map.json, errors naming file and key, and decode
// turning invalid UTF-8 into U+FFFD exactly as Python's bytes.decode("utf-8", "replace").
#include "models/tokenizer.h"

#include "models/chat_template.h"
#include "models/sentencepiece_tokenizer.h"
#include "tests/shared_data.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using mt::test::require_error;
using nlohmann::json;

namespace {

const std::string kFFFD = "\xEF\xBF\xBD";

// A temp dir with the llama2 vocabulary linked in and the given config files written.
fs::path dir_with(const std::map<std::string, std::string>& files, const std::string& model = "llama2") {
  const fs::path dir = mt::test::temp_dir("tok_cfg");
  fs::create_symlink(fs::absolute(mt::test::vocab_file(model)), dir / "tokenizer.model");
  for (const auto& [name, text] : files) mt::test::write_file(dir / name, text);
  return dir;
}

std::vector<int64_t> cat(std::vector<int64_t> a, const std::vector<int64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("tokenizer: a SentencePiece file is recognized by content, not by name", "[tokenizer]") {
  const fs::path dir = mt::test::temp_dir("tok_sp");
  fs::create_symlink(fs::absolute(mt::test::vocab_file("llama2")), dir / "vocab.bin");
  const auto tok = mt::Tokenizer::load(dir / "vocab.bin");
  CHECK(tok.kind() == "sentencepiece");
  CHECK(tok.vocab_size() == 32000);
  CHECK(tok.special().bos == 1);
  CHECK(tok.special().eos == 2);
  CHECK(tok.special().unk == 0);
  CHECK(tok.special().pad == -1);
  CHECK(tok.special().add_bos);
  CHECK_FALSE(tok.special().add_eos);
  CHECK(tok.chat_template().empty());
  CHECK(tok.source() == dir / "vocab.bin");
  CHECK(tok.token_id("<s>") == 1);
  CHECK(tok.token_id("\xE2\x96\x81hello") == 22172);
  CHECK_FALSE(tok.token_id("no such piece").has_value());
  CHECK(mt::detect_chat_template(tok).empty());
  fs::remove_all(dir);

  const mt::Tokenizer unloaded;  // a default-constructed Tokenizer answers errors, not crashes
  require_error([&] { unloaded.encode("x"); }, {"Tokenizer::load"});
  require_error([&] { unloaded.decode({1}); }, {"Tokenizer::load"});
  CHECK(unloaded.kind().empty());
  CHECK(unloaded.vocab_size() == 0);
}

TEST_CASE("tokenizer: encode and decode dispatch to SentencePiece, special text only when asked", "[tokenizer]") {
  const auto tok = mt::Tokenizer::load(mt::test::vocab_file("llama2"));
  const auto sp = mt::load_sentencepiece(mt::test::vocab_file("llama2"));
  for (const std::string text : {"Hello world", " Hello <s> x</s>", "ä🦙", ""}) {
    CHECK(tok.encode(text) == mt::sp_encode(*sp, text, false));
    CHECK(tok.encode(text, true) == mt::sp_encode(*sp, text, true));
    CHECK(tok.decode(tok.encode(text)) == text);
  }
  CHECK(tok.encode("<s>hello</s> world ", true) == std::vector<int64_t>{1, 22172, 2, 29871, 3186, 29871});
  CHECK(tok.decode({1, 22172, 2, 29871, 3186, 29871}) == "<s>hello</s> world ");
  CHECK(tok.decode({1, 22172, 2, 29871, 3186, 29871}, true) == "hello  world ");  // = Python sp.decode
  require_error([&] { tok.decode({32000}); }, {"32000", "vocabulary"});
}

TEST_CASE("tokenizer: decode maps invalid UTF-8 to U+FFFD like Python's bytes.decode(errors='replace')",
          "[tokenizer][bad-input]") {
  const auto tok = mt::Tokenizer::load(mt::test::vocab_file("llama2"));
  auto bytes = [&](std::initializer_list<int> bs) {
    std::vector<int64_t> ids;
    for (int b : bs) ids.push_back(*tok.token_id(fmt::format("<0x{:02X}>", b)));
    return ids;
  };
  // Expected strings from Python: bytes(...).decode("utf-8", "replace").
  CHECK(tok.decode(bytes({0xE2, 0x82, 0xAC})) == "\xE2\x82\xAC");
  CHECK(tok.decode(bytes({0xE2, 0x82})) == kFFFD);                             // truncated: one U+FFFD
  CHECK(tok.decode(cat(bytes({0xE2}), {22172})) == kFFFD + " hello");
  CHECK(tok.decode(bytes({0xFF})) == kFFFD);
  CHECK(tok.decode(bytes({0xF0, 0x9F, 0xA6, 0x41})) == kFFFD + "A");
  CHECK(tok.decode(bytes({0xED, 0xA0, 0x80})) == kFFFD + kFFFD + kFFFD);   // a surrogate
  CHECK(tok.decode(bytes({0xC0, 0xAF})) == kFFFD + kFFFD);                 // overlong
  CHECK(tok.decode(bytes({0xE0, 0x80})) == kFFFD + kFFFD);
  CHECK(tok.decode(bytes({0xF4, 0x90})) == kFFFD + kFFFD);                 // above U+10FFFF
  CHECK(tok.decode(bytes({0xE2, 0x82, 0x41})) == kFFFD + "A");
  CHECK(tok.decode(bytes({0xF0, 0x9F, 0xA6, 0x99})) == "\xF0\x9F\xA6\x99");
  CHECK(tok.decode(cat(bytes({0xE2}), {1})) == kFFFD + "<s>");  // a special token ends the byte run
}

TEST_CASE("tokenizer: HF directory special tokens come from tokenizer_config.json and special_tokens_map.json",
          "[tokenizer]") {
  SECTION("Llama-2-chat") {
    const fs::path dir = mt::test::make_hf_dir("tokenizers/llama2/tokenizer.model", "llama2-chat");
    const auto tok = mt::Tokenizer::load(dir);
    CHECK(tok.kind() == "sentencepiece");
    CHECK(tok.source() == dir / "tokenizer.model");
    CHECK(tok.special().bos == 1);
    CHECK(tok.special().eos == 2);
    CHECK(tok.special().pad == -1);
    CHECK(tok.special().add_bos);
    CHECK_FALSE(tok.special().add_eos);
    CHECK(tok.chat_template().find("<<SYS>>") != std::string::npos);
    CHECK(mt::detect_chat_template(tok) == "llama2");
    fs::remove_all(dir);
  }
  SECTION("a ChatML fine-tune of Mistral: added tokens after the vocabulary, <|im_end|> as EOS") {
    const fs::path dir = mt::test::make_hf_dir("tokenizers/mistral/tokenizer.model", "chatml-mistral");
    const auto tok = mt::Tokenizer::load(dir);
    CHECK(tok.vocab_size() == 32002);
    CHECK(tok.special().eos == 32000);
    CHECK(tok.special().bos == 1);
    CHECK(tok.token_id("<|im_start|>") == 32001);
    CHECK(mt::detect_chat_template(tok) == "chatml");
    const auto user = tok.encode("user");
    CHECK(tok.encode("<|im_start|>user", true) == cat({32001}, user));
    CHECK(tok.encode("<|im_start|>user", false) != cat({32001}, user));
    CHECK(tok.decode(cat({32001}, user)) == "<|im_start|>user");
    CHECK(tok.decode(cat({32001}, user), true) == "user");
    require_error([&] { tok.decode({32002}); }, {"32002"});
    fs::remove_all(dir);
  }
  SECTION("Mistral v3: control tokens [INST]/[/INST]; template detected from the special tokens") {
    const fs::path dir = mt::test::make_hf_dir("tokenizers/mistral-v3/tokenizer.model", "mistral-v3-instruct");
    const auto tok = mt::Tokenizer::load(dir);
    CHECK(tok.vocab_size() == 32768);
    CHECK(tok.special().by_text.at("[INST]") == 3);
    CHECK(tok.special().by_text.at("[/INST]") == 4);
    CHECK(tok.chat_template().empty());
    CHECK(mt::detect_chat_template(tok) == "mistral");
    fs::remove_all(dir);
  }
  SECTION("special_tokens_map.json wins over tokenizer_config.json; null means none") {
    const fs::path dir = dir_with({
        {"tokenizer_config.json",
         R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>", "pad_token": "<unk>", "add_eos_token": true,
             "added_tokens_decoder": {"32000": {"content": "<pad>", "special": true}}})"},
        {"special_tokens_map.json", R"({"pad_token": "<pad>", "bos_token": null,
             "additional_special_tokens": ["</s>", {"content": "<pad>"}]})"}});
    const auto tok = mt::Tokenizer::load(dir);
    CHECK(tok.special().pad == 32000);
    CHECK(tok.special().bos == -1);
    CHECK(tok.special().eos == 2);
    CHECK(tok.special().add_eos);
    CHECK(tok.vocab_size() == 32001);
    CHECK(tok.decode({32000, 22172}) == "<pad>hello");
    fs::remove_all(dir);
  }
  SECTION("an added token renames an id; chat_template as a list of named templates") {
    const fs::path dir = dir_with({{"tokenizer_config.json",
        R"({"added_tokens_decoder": {"2": {"content": "<|end|>"}, "22172": {"content": "\u2581hello", "special": false}},
            "chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "<|im_start|>"}]})"}});
    const auto tok = mt::Tokenizer::load(dir);
    CHECK(tok.token_id("<|end|>") == 2);
    CHECK(tok.special().by_text.count("\xE2\x96\x81hello") == 0);  // a plain vocabulary entry stays text
    CHECK(tok.decode({22172}, true) == "hello");
    CHECK(tok.special().by_text.count("</s>") == 0);
    CHECK(tok.encode("<|end|>", true) == std::vector<int64_t>{2});
    CHECK(tok.chat_template() == "<|im_start|>");
    fs::remove_all(dir);
  }
}

TEST_CASE("tokenizer: a HF dir prefers a byte-level BPE tokenizer.json, else reads tokenizer.model",
          "[tokenizer]") {
  const auto texts_json = mt::test::read_json(mt::test::tokenizer_fixture("texts.json")).at("texts");
  const auto with_special = mt::test::read_json(mt::test::tokenizer_fixture("tiny_bpe_ids.json")).at("ids");
  const auto plain = mt::test::read_json(mt::test::tokenizer_fixture("tiny_bpe_nospecial_ids.json")).at("ids");
  REQUIRE(with_special.size() == texts_json.size());
  REQUIRE(plain.size() == texts_json.size());
  const fs::path dir = dir_with({});  // tokenizer.model (LLaMA-2) beside the tiny byte-level tokenizer.json
  fs::copy_file(mt::test::tokenizer_fixture("tiny_bpe") / "tokenizer.json", dir / "tokenizer.json");
  for (const fs::path& path : {dir, dir / "tokenizer.json"}) {
    const auto tok = mt::Tokenizer::load(path);
    CHECK(tok.kind() == "bpe");
    CHECK(tok.source() == dir / "tokenizer.json");
    CHECK(tok.vocab_size() == 1004);
    CHECK(tok.token_id("<|eot_id|>") == 4);
    size_t mismatches = 0;
    for (size_t i = 0; i < texts_json.size(); ++i) {  // HF tokenizers' ids, through the front end
      const std::string text = texts_json[i].get<std::string>();
      mismatches += tok.encode(text, true) != with_special[i].get<std::vector<int64_t>>();
      mismatches += tok.encode(text, false) != plain[i].get<std::vector<int64_t>>();
    }
    CHECK(mismatches == 0);
    const auto ids = cat(cat({0}, tok.encode("hi there")), {4});
    CHECK(tok.decode(ids) == "<|begin_of_text|>hi there<|eot_id|>");
    CHECK(tok.decode(ids, true) == "hi there");
  }
  // A SentencePiece-style tokenizer.json (byte_fallback, no ByteLevel): tokenizer.model is read.
  mt::test::write_file(dir / "tokenizer.json", R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {},
      "merges": []}, "normalizer": {"type": "Sequence", "normalizers": []}, "pre_tokenizer": null})");
  const auto sp = mt::Tokenizer::load(dir);
  CHECK(sp.kind() == "sentencepiece");
  CHECK(sp.source() == dir / "tokenizer.model");
  fs::remove_all(dir);
}

TEST_CASE("tokenizer: bad tokenizer files and configs name the file and the key", "[tokenizer][bad-input]") {
  require_error([] { mt::Tokenizer::load("/no/such/tokenizer/dir"); }, {"/no/such/tokenizer/dir"});
  const fs::path empty = mt::test::temp_dir("tok_empty");
  require_error([&] { mt::Tokenizer::load(empty); }, {empty.string(), "no tokenizer.json or tokenizer.model"});
  fs::remove_all(empty);

  struct Bad {
    std::string file, text;
    std::vector<std::string> expect;
  };
  const std::vector<Bad> bad = {
      {"tokenizer_config.json", "{not json", {"tokenizer_config.json", "invalid JSON"}},
      {"tokenizer_config.json", "[1, 2]", {"tokenizer_config.json", "object"}},
      {"tokenizer_config.json", R"({"added_tokens_decoder": {"abc": {"content": "x"}}})",
       {"tokenizer_config.json", "added_tokens_decoder[\"abc\"]", "integer"}},
      {"tokenizer_config.json", R"({"added_tokens_decoder": {"7": {"special": true}}})",
       {"tokenizer_config.json", "added_tokens_decoder[\"7\"]", "content"}},
      {"tokenizer_config.json", R"({"added_tokens_decoder": []})", {"tokenizer_config.json", "added_tokens_decoder"}},
      {"tokenizer_config.json", R"({"bos_token": "<nope>"})", {"tokenizer_config.json", "bos_token", "<nope>"}},
      {"tokenizer_config.json", R"({"eos_token": 5})", {"tokenizer_config.json", "eos_token"}},
      {"tokenizer_config.json", R"({"add_bos_token": "yes"})", {"tokenizer_config.json", "add_bos_token"}},
      {"tokenizer_config.json", R"({"chat_template": 3})", {"tokenizer_config.json", "chat_template"}},
      {"tokenizer_config.json", R"({"additional_special_tokens": "<s>"})",
       {"tokenizer_config.json", "additional_special_tokens"}},
      {"special_tokens_map.json", R"({"additional_special_tokens": ["<s>", "<what>"]})",
       {"special_tokens_map.json", "additional_special_tokens[1]", "<what>"}},
      {"special_tokens_map.json", "", {"special_tokens_map.json", "invalid JSON"}},
      {"tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true}", {"tokenizer.json", "invalid JSON"}},
  };
  for (const auto& b : bad) {
    const fs::path dir = dir_with({{b.file, b.text}});
    std::string message = "(no error)";
    try {
      mt::Tokenizer::load(dir);
    } catch (const mt::Error& e) {
      message = e.what();
    }
    INFO(b.file << " = " << b.text << "\n  -> " << message);
    CHECK_THAT(message, MT_HAS((dir / b.file).string()));
    for (const auto& p : b.expect) CHECK_THAT(message, MT_HAS(p));
    fs::remove_all(dir);
  }

  // A SentencePiece-style tokenizer.json (LLaMA-2's HF conversion) with no tokenizer.model: say so.
  const fs::path only_json = mt::test::temp_dir("tok_json");
  mt::test::write_file(only_json / "tokenizer.json",
                       R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []},
                           "pre_tokenizer": null, "decoder": {"type": "Sequence", "decoders": []}})");
  require_error([&] { mt::Tokenizer::load(only_json); }, {"tokenizer.json", "byte-level BPE", "byte_fallback"});
  mt::test::write_file(only_json / "tokenizer.json", R"({"version": "1.0"})");
  require_error([&] { mt::Tokenizer::load(only_json); }, {"tokenizer.json", "model"});
  require_error([&] { mt::Tokenizer::load(only_json / "tokenizer.json"); }, {"tokenizer.json", "model"});
  fs::remove_all(only_json);

  // A model file that is neither tiktoken text nor a SentencePiece protobuf.
  const fs::path junk = mt::test::temp_dir("tok_junk");
  mt::test::write_file(junk / "tokenizer.model", "hello there\n");
  require_error([&] { mt::Tokenizer::load(junk); }, {(junk / "tokenizer.model").string()});
  fs::remove_all(junk);
}

TEST_CASE("tokenizer: LLaMA-3's tiktoken file is recognized by content and gets LLaMA-3's special tokens",
          "[tokenizer][llama3]") {
  const fs::path dir = mt::test::temp_dir("tok_l3");
  fs::create_symlink(fs::absolute(mt::test::vocab_file("llama3")), dir / "ranks.txt");
  const auto tok = mt::Tokenizer::load(dir / "ranks.txt");
  CHECK(tok.kind() == "bpe");
  CHECK(tok.vocab_size() == 128256);
  CHECK(tok.special().bos == 128000);
  CHECK(tok.special().eos == 128001);
  CHECK(tok.token_id("<|eot_id|>") == 128009);
  CHECK(tok.token_id("<|start_header_id|>") == 128006);
  CHECK(tok.encode("Hello world") == std::vector<int64_t>{9906, 1917});
  CHECK(tok.encode("<|eot_id|>", true) == std::vector<int64_t>{128009});
  CHECK(tok.encode("<|eot_id|>", false).size() > 1);
  CHECK(tok.decode({128000, 9906, 1917, 128009}) == "<|begin_of_text|>Hello world<|eot_id|>");
  CHECK(tok.decode({128000, 9906, 1917, 128009}, true) == "Hello world");
  // Byte-level tokens can split a character: decode shows the partial bytes as U+FFFD.
  const auto llama = tok.encode("\xF0\x9F\xA6\x99");
  CHECK(tok.decode(llama) == "\xF0\x9F\xA6\x99");
  if (llama.size() > 1) CHECK(tok.decode({llama[0]}).find(kFFFD) != std::string::npos);
  std::vector<std::pair<size_t, size_t>> off;
  const std::string text = "Hi there, ça va? 🦙";
  CHECK(tok.encode_with_offsets(text, off) == tok.encode(text));
  CHECK(off.back().second == text.size());
  fs::remove_all(dir);

  const fs::path hf = mt::test::make_hf_dir("tokenizers/llama3/tokenizer.model", "llama3-instruct");
  const auto inst = mt::Tokenizer::load(hf);
  CHECK(inst.special().eos == 128009);
  CHECK(inst.special().bos == 128000);
  CHECK(mt::detect_chat_template(inst) == "llama3");
  fs::remove_all(hf);
}
