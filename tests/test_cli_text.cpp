// `generate` and `score` on text: {"prompt"}, {"prompt","target"} and {"instruction","response"}
// records through a real tokenizer (LLaMA-2's, from ../shared/data) and the chat template. The
// instruction/response target must be exactly the tokens training puts in the loss mask.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <sstream>

#include "models/chat_template.h"
#include "models/checkpoint_dir.h"
#include "models/score.h"
#include "models/tokenizer.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

// A tiny random LLaMA with LLaMA-2's 32000-token vocabulary and its tokenizer.model beside it.
fs::path make_text_model() {
  auto dir = mt::test::temp_dir("text_model");
  nlohmann::json cfg = {{"model_type", "llama"}, {"vocab_size", 32000}, {"hidden_size", 16},
                        {"intermediate_size", 32}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                        {"num_key_value_heads", 1}, {"max_position_embeddings", 512}, {"rms_norm_eps", 1e-5},
                        {"rope_theta", 10000.0}, {"bos_token_id", 1}, {"eos_token_id", 2}, {"torch_dtype", "float32"}};
  mt::ModelConfig config = mt::parse_hf_config(cfg, "test config");
  mt::Transformer model = mt::init_transformer(config, 3, at::TensorOptions().dtype(at::kFloat));
  mt::save_model_dir(model, {}, dir);
  fs::copy_file(mt::test::vocab_file("llama2"), dir / "tokenizer.model");
  return dir;
}


}  // namespace

TEST_CASE("cli text: score instruction/response scores exactly the trained tokens", "[cli][tokenizer]") {
  const fs::path dir = make_text_model();
  const std::string instruction = "Name three primary colors.", response = "Red, yellow and blue.";
  mt::test::write_file(dir / "pairs.jsonl", nlohmann::json{{"instruction", instruction}, {"response", response}}.dump() +
                                                "\n" + nlohmann::json{{"prompt", "The sky is"}, {"target", " blue today."}}.dump() + "\n");
  auto r = mt::test::run_maintune("score --model " + mt::test::quoted(dir) + " --device cpu --template llama2 --data " +
                                  mt::test::quoted(dir / "pairs.jsonl"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  auto lines = mt::test::json_lines(r.output);
  REQUIRE(lines.size() == 2);

  const mt::Tokenizer tok = mt::Tokenizer::load(dir);
  const mt::RenderedChat full = mt::render_chat(tok, "llama2", {{"user", instruction}, {"assistant", response}});
  int64_t trained = 0;
  for (uint8_t m : full.loss_mask) trained += m;
  CHECK(lines[0]["n_tokens"].get<int64_t>() == trained);
  // Same NLL as scoring the rendered ids directly: the prompt is the part before the first trained token.
  size_t first = 0;
  while (full.loss_mask[first] == 0) ++first;
  size_t last = full.ids.size();
  while (full.loss_mask[last - 1] == 0) --last;
  mt::LoadedModel m = mt::load_model_dir(dir, c10::kCPU, at::kFloat);
  c10::NoGradGuard no_grad;
  auto direct = mt::score_nll(m.model, {{std::vector<int64_t>(full.ids.begin(), full.ids.begin() + static_cast<long>(first)),
                                         std::vector<int64_t>(full.ids.begin() + static_cast<long>(first),
                                                              full.ids.begin() + static_cast<long>(last))},
                                        {[&] {
                                           std::vector<int64_t> p = {tok.special().bos};
                                           auto body = tok.encode("The sky is");
                                           p.insert(p.end(), body.begin(), body.end());
                                           return p;
                                         }(),
                                         tok.encode(" blue today.")}});
  CHECK(std::abs(lines[0]["nll_sum"].get<double>() - direct[0].nll_sum) < 1e-6);
  CHECK(lines[1]["n_tokens"].get<int64_t>() == static_cast<int64_t>(tok.encode(" blue today.").size()));
  CHECK(std::abs(lines[1]["nll_sum"].get<double>() - direct[1].nll_sum) < 1e-6);
  fs::remove_all(dir);
}

TEST_CASE("cli text: generate from a text prompt equals generating from its ids, and decodes", "[cli][tokenizer]") {
  const fs::path dir = make_text_model();
  const mt::Tokenizer tok = mt::Tokenizer::load(dir);
  std::vector<int64_t> ids = {tok.special().bos};
  for (int64_t id : tok.encode("Once upon a time")) ids.push_back(id);
  mt::test::write_file(dir / "p.jsonl", nlohmann::json{{"prompt", "Once upon a time"}}.dump() + "\n" +
                                            nlohmann::json{{"prompt_ids", ids}}.dump() + "\n");
  auto r = mt::test::run_maintune("generate --model " + mt::test::quoted(dir) + " --data " + mt::test::quoted(dir / "p.jsonl") +
                                  " --max-new-tokens 4 --stop-ids none");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  auto lines = mt::test::json_lines(r.output);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["generated_ids"] == lines[1]["generated_ids"]);
  CHECK(lines[0]["generated_ids"].size() == 4);
  CHECK(lines[0]["text"] == tok.decode(lines[0]["generated_ids"].get<std::vector<int64_t>>(), true));
  fs::remove_all(dir);
}

TEST_CASE("cli text: text inputs without a tokenizer or template are clear errors", "[cli][tokenizer][bad-input]") {
  const fs::path dir = make_text_model();
  mt::test::write_file(dir / "half.jsonl", "{\"prompt\": \"only a prompt\"}\n");
  auto r = mt::test::run_maintune("score --model " + mt::test::quoted(dir) + " --data " + mt::test::quoted(dir / "half.jsonl"));
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("half.jsonl:1") != std::string::npos);
  CHECK(r.output.find("'target'") != std::string::npos);
  mt::test::write_file(dir / "two.jsonl", "{\"prompt\": \"a\", \"prompt_ids\": [1]}\n");
  r = mt::test::run_maintune("generate --model " + mt::test::quoted(dir) + " --data " + mt::test::quoted(dir / "two.jsonl"));
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("two.jsonl:1: give exactly one of") != std::string::npos);
  // A model directory without any tokenizer file.
  fs::remove(dir / "tokenizer.model");
  mt::test::write_file(dir / "p.jsonl", "{\"prompt\": \"hello\"}\n");
  r = mt::test::run_maintune("generate --model " + mt::test::quoted(dir) + " --data " + mt::test::quoted(dir / "p.jsonl"));
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find(dir.string()) != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli text: generate asks {\"turns\"} one after another, each after the model's answer to the one before",
          "[cli][tokenizer][chat]") {
  const fs::path dir = make_text_model();
  const mt::Tokenizer tok = mt::Tokenizer::load(dir);
  using json = nlohmann::json;
  const std::vector<std::string> q = {"Name a colour.", "Why that one?", "And a second?"};
  // Mixed on purpose: conversations of 3, 1 and 2 turns next to a single instruction, so that a
  // batch's later rounds hold fewer requests than its first.
  const std::vector<json> records = {{{"question_id", 81}, {"turns", q}},
                                     {{"question_id", 82}, {"turns", {q[0]}}},
                                     {{"instruction", q[0]}},
                                     {{"question_id", 84}, {"system", "Be brief."}, {"turns", {q[1], q[2]}}}};
  std::string jsonl;
  for (const json& r : records) jsonl += r.dump() + "\n";
  mt::test::write_file(dir / "turns.jsonl", jsonl);
  const std::string base = "generate --model " + mt::test::quoted(dir) + " --device cpu --template llama2 " +
                           "--max-new-tokens 3 --stop-ids none --data ";
  const auto run = [&](const std::string& args) {
    auto r = mt::test::run_maintune(base + args);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    return mt::test::json_lines(r.output);
  };
  const auto lines = run(mt::test::quoted(dir / "turns.jsonl") + " --batch-size 4");
  REQUIRE(lines.size() == records.size());
  CHECK(lines[0]["question_id"] == 81);
  REQUIRE(lines[0]["turns"].size() == 3);
  REQUIRE(lines[1]["turns"].size() == 1);
  CHECK_FALSE(lines[2].contains("turns"));
  REQUIRE(lines[3]["turns"].size() == 2);
  // Batching changes nothing (greedy): one request at a time gives the same lines.
  CHECK(run(mt::test::quoted(dir / "turns.jsonl") + " --batch-size 1") == lines);
  // A one-turn conversation is an instruction.
  CHECK(lines[1]["turns"][0] == lines[2]);

  // Every turn continues the conversation as a chat client sends it back: the earlier turns with the
  // model's answers as text. Generating from those rendered ids directly gives the same answer.
  const auto turn_prompt = [&](const std::vector<mt::ChatMessage>& before, const json& answers, size_t k) {
    std::vector<mt::ChatMessage> m = before;
    for (size_t i = 0; i < k; ++i) {
      m.push_back({"user", q[i]});
      m.push_back({"assistant", answers[i]["text"].get<std::string>()});
    }
    m.push_back({"user", q[k]});
    return mt::render_chat(tok, "llama2", m, false, true).ids;
  };
  std::string direct;
  for (size_t k = 0; k < 3; ++k) direct += json{{"prompt_ids", turn_prompt({}, lines[0]["turns"], k)}}.dump() + "\n";
  mt::test::write_file(dir / "direct.jsonl", direct);
  const auto direct_lines = run(mt::test::quoted(dir / "direct.jsonl"));
  REQUIRE(direct_lines.size() == 3);
  for (size_t k = 0; k < 3; ++k) {
    INFO("turn " << k + 1);
    CHECK(direct_lines[k]["generated_ids"] == lines[0]["turns"][k]["generated_ids"]);
    CHECK(lines[0]["turns"][k]["text"] == tok.decode(lines[0]["turns"][k]["generated_ids"].get<std::vector<int64_t>>(), true));
  }
  // The system prompt comes first, in every turn.
  std::vector<mt::ChatMessage> second = {{"system", "Be brief."}, {"user", q[1]},
                                         {"assistant", lines[3]["turns"][0]["text"].get<std::string>()}, {"user", q[2]}};
  mt::test::write_file(dir / "sys.jsonl", json{{"prompt_ids", mt::render_chat(tok, "llama2", second, false, true).ids}}.dump() + "\n");
  CHECK(run(mt::test::quoted(dir / "sys.jsonl"))[0]["generated_ids"] == lines[3]["turns"][1]["generated_ids"]);

  // Bad turns name the line.
  for (const auto& [bad, says] : std::vector<std::pair<std::string, std::string>>{
           {R"({"turns": []})", "bad.jsonl:1: field 'turns' must be a non-empty list"},
           {R"({"turns": ["a", 7]})", "bad.jsonl:1: turns[1] must be a string"},
           {R"({"turns": ["a"], "instruction": "b"})", "bad.jsonl:1: give exactly one of"}}) {
    mt::test::write_file(dir / "bad.jsonl", bad + "\n");
    auto r = mt::test::run_maintune(base + mt::test::quoted(dir / "bad.jsonl"));
    INFO(r.output);
    CHECK(r.exit_code == 1);
    CHECK(r.output.find(says) != std::string::npos);
  }
  fs::remove_all(dir);
}
