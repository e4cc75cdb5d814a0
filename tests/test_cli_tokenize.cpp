// `maintune tokenize` end to end: JSONL text in, {"ids": [...]} out per line, the same ids as the
// library; BOS/EOS only with --add-special (as the tokenizer config says); special text only with
// --allow-special; bad lines exit 1 naming file:line.
#include <nlohmann/json.hpp>

#include "models/tokenizer.h"
#include "tests/shared_data.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using mt::test::json_lines;
using mt::test::quoted;

TEST_CASE("tokenizer cli: prints the tokenizer's ids for each JSONL text line", "[cli][tokenizer]") {
  const fs::path dir = mt::test::temp_dir("cli_tok");
  const std::vector<std::string> texts = {"Hello world", " leading space", "ünïcödé 🦙", "", "<s>special</s>"};
  std::string data;
  for (const auto& t : texts) data += nlohmann::json{{"text", t}}.dump() + "\n\n";
  mt::test::write_file(dir / "in.jsonl", data);
  const fs::path model = mt::test::vocab_file("llama2");
  const auto tok = mt::Tokenizer::load(model);

  auto r = mt::test::run_maintune("tokenize --tokenizer " + quoted(model) + " --data " + quoted(dir / "in.jsonl"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  auto lines = json_lines(r.output);
  REQUIRE(lines.size() == texts.size());
  for (size_t i = 0; i < texts.size(); ++i) CHECK(lines[i]["ids"].get<std::vector<int64_t>>() == tok.encode(texts[i]));

  r = mt::test::run_maintune("tokenize --tokenizer " + quoted(model) + " --data " + quoted(dir / "in.jsonl") +
                             " --add-special --allow-special");
  REQUIRE(r.exit_code == 0);
  lines = json_lines(r.output);
  REQUIRE(lines.size() == texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int64_t> want = {1};  // LLaMA-2: BOS only
    const auto body = tok.encode(texts[i], true);
    want.insert(want.end(), body.begin(), body.end());
    CHECK(lines[i]["ids"].get<std::vector<int64_t>>() == want);
  }
  CHECK(lines[4]["ids"].get<std::vector<int64_t>>().at(1) == 1);  // "<s>" became BOS's id

  // A HF dir whose config asks for EOS too.
  const fs::path hf = mt::test::temp_dir("cli_tok_hf");
  fs::create_symlink(fs::absolute(model), hf / "tokenizer.model");
  mt::test::write_file(hf / "tokenizer_config.json", R"({"add_bos_token": false, "add_eos_token": true})");
  r = mt::test::run_maintune("tokenize --tokenizer " + quoted(hf) + " --data " + quoted(dir / "in.jsonl") + " --add-special");
  REQUIRE(r.exit_code == 0);
  lines = json_lines(r.output);
  REQUIRE(lines.size() == texts.size());
  auto want = tok.encode(texts[0]);
  want.push_back(2);
  CHECK(lines[0]["ids"].get<std::vector<int64_t>>() == want);
  fs::remove_all(hf);
  fs::remove_all(dir);
}

TEST_CASE("tokenizer cli: bad input names the file and line", "[cli][tokenizer][bad-input]") {
  const fs::path dir = mt::test::temp_dir("cli_tok_bad");
  const fs::path model = mt::test::vocab_file("mistral");
  struct Case {
    std::string data, expect;
  };
  for (const auto& c : std::vector<Case>{
           {"{\"text\": \"ok\"}\n{\"txt\": \"x\"}\n", "in.jsonl:2: missing field 'text'"},
           {"{\"text\": \"ok\"}\n\n{\"text\": 5}\n", "in.jsonl:3: field 'text' must be a string"},
           {"{\"text\": [\"a\"]}\n", "in.jsonl:1: field 'text' must be a string"},
           {"{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n", "in.jsonl:2: invalid JSON"},
           {"[1, 2]\n", "in.jsonl:1: expected a JSON object"}}) {
    mt::test::write_file(dir / "in.jsonl", c.data);
    const auto r = mt::test::run_maintune("tokenize --tokenizer " + quoted(model) + " --data " + quoted(dir / "in.jsonl"));
    INFO(c.data << " -> " << r.output);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, MT_HAS(c.expect));
  }
  auto r = mt::test::run_maintune("tokenize --tokenizer " + quoted(dir / "none.model") + " --data " + quoted(dir / "in.jsonl"));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, MT_HAS("none.model"));
  r = mt::test::run_maintune("tokenize --data " + quoted(dir / "in.jsonl"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, MT_HAS("--tokenizer"));
  r = mt::test::run_maintune("tokenize --tokenizer " + quoted(model) + " --data " + quoted(dir / "in.jsonl") + " --bos");
  CHECK(r.exit_code == 2);
  r = mt::test::run_maintune("tokenize --help");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, MT_HAS("--add-special"));
  r = mt::test::run_maintune("--help");
  CHECK_THAT(r.output, MT_HAS("tokenize"));
  fs::remove_all(dir);
}
