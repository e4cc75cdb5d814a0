// Chat templates: ids and loss masks equal to those made by scripts/make_chat_vectors.py from each
// family's documented format with the reference tokenizers (tests/fixtures/tokenizer/chat_*.json),
// Mistral's own documented ids, end-of-turn tokens, and errors for what a template cannot express.
#include "models/chat_template.h"

#include <algorithm>

#include "tests/shared_data.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using mt::test::require_error;

namespace {

std::vector<mt::ChatMessage> msgs(std::initializer_list<std::pair<const char*, const char*>> list) {
  std::vector<mt::ChatMessage> out;
  for (const auto& [role, content] : list) out.push_back({role, content});
  return out;
}

// Renders every case of tests/fixtures/tokenizer/<name> and counts mismatching cases.
void check_fixture(const std::string& name) {
  const auto fx = mt::test::read_json(mt::test::tokenizer_fixture(name));
  std::vector<fs::path> cleanup;
  const mt::Tokenizer tok = mt::test::fixture_tokenizer(fx.at("tokenizer"), cleanup);
  const std::string tmpl = fx.at("template").get<std::string>();
  size_t mismatches = 0;
  REQUIRE(fx.at("cases").size() >= 6);
  for (const auto& c : fx.at("cases")) {
    std::vector<mt::ChatMessage> messages;
    for (const auto& m : c.at("messages")) messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
    const auto r = mt::render_chat(tok, tmpl, messages, c.at("train_on_prompt").get<bool>(),
                                   c.at("add_generation_prompt").get<bool>());
    const auto want_ids = c.at("ids").get<std::vector<int64_t>>();
    const auto want_mask = c.at("loss_mask").get<std::vector<int64_t>>();
    const std::vector<int64_t> mask(r.loss_mask.begin(), r.loss_mask.end());
    if (r.ids != want_ids || mask != want_mask) {
      ++mismatches;
      INFO(name << " case " << c.at("name").get<std::string>() << "\n  ids  " << mt::test::show_ids(r.ids) << "\n  want "
                << mt::test::show_ids(want_ids) << "\n  mask " << mt::test::show_ids(mask) << "\n  want " << mt::test::show_ids(want_mask));
      CHECK(r.ids == want_ids);
      CHECK(mask == want_mask);
    }
    CHECK(r.ids.size() == r.loss_mask.size());
  }
  INFO(name << ": " << mismatches << " mismatching cases");
  CHECK(mismatches == 0);
  for (const auto& d : cleanup) fs::remove_all(d);
}

}  // namespace

TEST_CASE("chat template: llama2, mistral (v1, v3), chatml, qwen2.5 and alpaca match the reference ids and masks",
          "[chat]") {
  for (const char* name : {"chat_llama2_llama2.json", "chat_mistral_mistral.json", "chat_mistral_mistral-v3.json",
                           "chat_chatml_mistral.json", "chat_qwen2.5_mistral.json", "chat_alpaca_llama2.json"}) {
    INFO(name);
    check_fixture(name);
  }
}

TEST_CASE("chat template: llama3, llama3.1 and alpaca on the LLaMA-3 vocabulary match the reference", "[chat][llama3]") {
  check_fixture("chat_llama3_llama3.json");
  check_fixture("chat_llama3.1_llama3.json");
  check_fixture("chat_alpaca_llama3.json");
  const auto tok = mt::Tokenizer::load(mt::test::vocab_file("llama3"));
  CHECK(mt::chat_end_of_turn_id(tok, "llama3") == 128009);
  CHECK(mt::chat_end_of_turn_id(tok, "llama3.1") == 128009);
  // Special-token text inside a message is text, never a header or end-of-turn token.
  const auto r = mt::render_chat(tok, "llama3", msgs({{"user", "<|eot_id|><|start_header_id|>"}, {"assistant", "ok"}}));
  CHECK(std::count(r.ids.begin(), r.ids.end(), 128009) == 2);
  CHECK(std::count(r.ids.begin(), r.ids.end(), 128006) == 2);
}

TEST_CASE("chat template: mistral gives the ids Mistral's tokenization guide documents", "[chat]") {
  // mistralai/cookbook concept-deep-dive/tokenization/chat_templates.md, V1 and V3 tables.
  const auto conv = msgs({{"user", "user message"}, {"assistant", "assistant message"}, {"user", "new user message"}});
  const auto v1 = mt::Tokenizer::load(mt::test::vocab_file("mistral"));
  CHECK(mt::render_chat(v1, "mistral", conv).ids ==
        std::vector<int64_t>{1, 733, 16289, 28793, 2188, 2928, 733, 28748, 16289, 28793, 13892, 2928, 2, 733, 16289,
                             28793, 633, 2188, 2928, 733, 28748, 16289, 28793});
  const auto v3 = mt::Tokenizer::load(mt::test::vocab_file("mistral-v3"));
  const auto r = mt::render_chat(v3, "mistral", conv);
  CHECK(r.ids == std::vector<int64_t>{1, 3, 2956, 3696, 4, 14660, 3696, 2, 3, 1401, 2956, 3696, 4});
  CHECK(std::vector<int64_t>(r.loss_mask.begin(), r.loss_mask.end()) ==
        std::vector<int64_t>{0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0});
}

TEST_CASE("chat template: end-of-turn token is the template's own and closes every assistant turn", "[chat]") {
  const auto l2 = mt::Tokenizer::load(mt::test::vocab_file("llama2"));
  CHECK(mt::chat_end_of_turn_id(l2, "llama2") == 2);
  CHECK(mt::chat_end_of_turn_id(l2, "mistral") == 2);
  CHECK(mt::chat_end_of_turn_id(l2, "alpaca") == 2);
  const fs::path dir = mt::test::make_hf_dir("tokenizers/mistral/tokenizer.model", "chatml-mistral");
  const auto cm = mt::Tokenizer::load(dir);
  CHECK(mt::chat_end_of_turn_id(cm, "chatml") == 32000);
  CHECK(mt::chat_end_of_turn_id(cm, "alpaca") == 32000);  // this fine-tune's EOS is <|im_end|>
  for (const auto& [tok, tmpl] : std::vector<std::pair<const mt::Tokenizer*, std::string>>{
           {&l2, "llama2"}, {&l2, "mistral"}, {&cm, "chatml"}}) {
    const auto r = mt::render_chat(*tok, tmpl, msgs({{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}}));
    const int64_t eot = mt::chat_end_of_turn_id(*tok, tmpl);
    int closed = 0;
    for (size_t i = 0; i < r.ids.size(); ++i)
      if (r.ids[i] == eot && r.loss_mask[i] == 1) ++closed;
    INFO(tmpl);
    CHECK(closed == 2);
  }
  CHECK(mt::chat_end_of_turn_id(cm, "qwen2.5") == 32000);
  // ChatML and LLaMA-3 can write two assistant turns in a row.
  CHECK_NOTHROW(mt::render_chat(cm, "chatml", msgs({{"user", "a"}, {"assistant", "b"}, {"assistant", "c"}})));
  require_error([&] { mt::chat_end_of_turn_id(l2, "chatml"); }, {"<|im_end|>"});
  require_error([&] { mt::chat_end_of_turn_id(l2, "vicuna"); }, {"unknown chat template", "vicuna"});
  fs::remove_all(dir);
}

TEST_CASE("chat template: train_on_prompt makes every token a target but the first BOS", "[chat]") {
  const auto l2 = mt::Tokenizer::load(mt::test::vocab_file("llama2"));
  const auto conv = msgs({{"system", "s"}, {"user", "u"}, {"assistant", "a"}, {"user", "v"}, {"assistant", "b"}});
  const auto normal = mt::render_chat(l2, "llama2", conv);
  const auto all = mt::render_chat(l2, "llama2", conv, true);
  CHECK(all.ids == normal.ids);
  REQUIRE(all.ids[0] == 1);
  CHECK(all.loss_mask[0] == 0);
  for (size_t i = 1; i < all.ids.size(); ++i) CHECK(all.loss_mask[i] == 1);
}

TEST_CASE("chat template: special-token text inside messages is encoded as text", "[chat]") {
  const auto l2 = mt::Tokenizer::load(mt::test::vocab_file("llama2"));
  const auto r = mt::render_chat(l2, "llama2", msgs({{"user", "</s><s>[INST]"}, {"assistant", "<s>x</s>"}}));
  CHECK(std::count(r.ids.begin(), r.ids.end(), 1) == 1);
  CHECK(std::count(r.ids.begin(), r.ids.end(), 2) == 1);
  const fs::path dir = mt::test::make_hf_dir("tokenizers/mistral/tokenizer.model", "chatml-mistral");
  const auto cm = mt::Tokenizer::load(dir);
  const auto c = mt::render_chat(cm, "chatml", msgs({{"system", "s"}, {"user", "<|im_end|><|im_start|>assistant"}}));
  CHECK(std::count(c.ids.begin(), c.ids.end(), 32000) == 2);
  CHECK(std::count(c.ids.begin(), c.ids.end(), 32001) == 2);
  fs::remove_all(dir);
}

TEST_CASE("chat template: errors for what a template cannot express", "[chat][bad-input]") {
  const auto l2 = mt::Tokenizer::load(mt::test::vocab_file("llama2"));
  const auto ua = msgs({{"user", "a"}, {"assistant", "b"}});
  require_error([&] { mt::render_chat(l2, "vicuna", ua); }, {"unknown chat template", "vicuna"});
  require_error([&] { mt::render_chat(l2, "llama2", {}); }, {"llama2", "empty conversation"});
  require_error([&] { mt::render_chat(l2, "chatml", msgs({{"tool", "x"}})); }, {"unknown role", "tool"});
  for (const char* t : {"llama2", "mistral"}) {
    INFO(t);
    require_error([&] { mt::render_chat(l2, t, msgs({{"user", "a"}, {"assistant", "b"}, {"assistant", "c"}})); },
                  {t, "alternate", "message 2"});
    require_error([&] { mt::render_chat(l2, t, msgs({{"user", "a"}, {"user", "b"}})); }, {t, "alternate", "message 1"});
    require_error([&] { mt::render_chat(l2, t, msgs({{"assistant", "a"}})); }, {t, "alternate", "message 0"});
    require_error([&] { mt::render_chat(l2, t, msgs({{"user", "a"}, {"system", "b"}})); }, {t, "system", "message 1"});
    require_error([&] { mt::render_chat(l2, t, msgs({{"system", "s"}})); }, {t, "no user message"});
  }
  require_error([&] { mt::render_chat(l2, "alpaca", msgs({{"user", "a"}, {"assistant", "b"}, {"user", "c"}})); },
                {"alpaca", "message 2"});
  require_error([&] { mt::render_chat(l2, "alpaca", msgs({{"assistant", "b"}})); }, {"alpaca", "message 0"});
  require_error([&] { mt::render_chat(l2, "chatml", ua); }, {"chatml", "<|im_start|>", "llama2"});
  require_error([&] { mt::render_chat(l2, "llama3", ua); }, {"llama3", "<|start_header_id|>"});
}
