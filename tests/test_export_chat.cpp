// Exports that serve as trained: the tokenizer files an export writes make transformers'
// apply_chat_template give exactly render_chat's ids (every template fixture, with and without the
// generation prompt), generation_config.json's eos_token_id lists the template's end of turn, our
// own loader reads the export back to the same template and ids, and `generate` stops at the end
// of turn for instruction prompts.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>

#include "models/chat_template.h"
#include "models/checkpoint_dir.h"
#include "models/hf_config.h"
#include "models/hf_tokenizer_files.h"
#include "models/tokenizer.h"
#include "tests/shared_data.h"
#include "tests/test_util.h"
#include "trainer/loop/export.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kFixtures[] = {"chat_llama3_llama3.json",      "chat_llama3.1_llama3.json",
                                 "chat_alpaca_llama3.json",      "chat_llama2_llama2.json",
                                 "chat_alpaca_llama2.json",      "chat_mistral_mistral.json",
                                 "chat_mistral_mistral-v3.json", "chat_chatml_mistral.json",
                                 "chat_qwen2.5_mistral.json"};

// The tokenizer a chat fixture names, as a path an export reads from (a temp HF dir when the
// fixture has one: appended to `cleanup`).
fs::path fixture_tokenizer_path(const json& spec, std::vector<fs::path>& cleanup) {
  const std::string model = spec.at("model").get<std::string>();
  if (!spec.contains("hf_dir")) return mt::test::shared_data() / model;
  cleanup.push_back(mt::test::make_hf_dir(model, spec.at("hf_dir").get<std::string>()));
  return cleanup.back();
}

// A template fixture's parts: its conversations, template name and tokenizer path (a temp HF dir
// when it has one, removed with the fixture).
struct ChatFixture {
  json cases;
  std::string tmpl;
  fs::path tokenizer;
  std::vector<fs::path> cleanup;
  explicit ChatFixture(const char* name) {
    const json fx = mt::test::read_json(mt::test::tokenizer_fixture(name));
    cases = fx.at("cases");
    tmpl = fx.at("template").get<std::string>();
    tokenizer = fixture_tokenizer_path(fx.at("tokenizer"), cleanup);
  }
  ~ChatFixture() {
    for (const auto& d : cleanup) fs::remove_all(d);
  }
  ChatFixture(const ChatFixture&) = delete;
  ChatFixture& operator=(const ChatFixture&) = delete;
};

std::vector<mt::ChatMessage> messages_of(const json& c) {
  std::vector<mt::ChatMessage> out;
  for (const auto& m : c.at("messages")) out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return out;
}

json messages_json(const std::vector<mt::ChatMessage>& messages) {
  json out = json::array();
  for (const auto& m : messages) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

// The checks for scripts/check_chat_export.py: every fixture conversation as rendered, and for one
// ending in an assistant turn also its generation prompt (the messages before that turn).
json chat_cases(const mt::Tokenizer& tok, const std::string& tmpl, const json& fixture_cases) {
  json cases = json::array();
  for (const auto& c : fixture_cases) {
    const auto messages = messages_of(c);
    const bool gen = c.at("add_generation_prompt").get<bool>();
    cases.push_back({{"name", c.at("name")}, {"messages", messages_json(messages)}, {"add_generation_prompt", gen},
                     {"ids", mt::render_chat(tok, tmpl, messages, false, gen).ids}});
    if (messages.size() >= 2 && messages.back().role == "assistant") {
      const std::vector<mt::ChatMessage> head(messages.begin(), messages.end() - 1);
      cases.push_back({{"name", c.at("name").get<std::string>() + "/prompt"}, {"messages", messages_json(head)},
                       {"add_generation_prompt", true}, {"ids", mt::render_chat(tok, tmpl, head, false, true).ids}});
    }
  }
  return cases;
}

// A model config with these special ids (export_generation reads only them).
mt::ModelConfig config_with_ids(int64_t bos, int64_t eos) {
  json cfg = {{"model_type", "llama"}, {"vocab_size", 128256}, {"hidden_size", 16}, {"intermediate_size", 32},
              {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"num_key_value_heads", 1},
              {"max_position_embeddings", 512}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
              {"bos_token_id", bos}, {"eos_token_id", eos}, {"torch_dtype", "float32"}};
  return mt::parse_hf_config(cfg, "test config");
}

}  // namespace

TEST_CASE("export chat: generation eos lists the end of turn first, then the model's and the tokenizer's eos",
          "[export][chat]") {
  const mt::Tokenizer llama3 = mt::Tokenizer::load(mt::test::vocab_file("llama3"));
  const mt::ModelConfig config = config_with_ids(128000, 128001);
  mt::GenerationDefaults source;
  source.eos_token_ids = {128001};
  source.raw = {{"eos_token_id", 128001}, {"temperature", 0.6}};

  const mt::GenerationDefaults g = mt::export_generation(source, config, llama3, "llama3");
  CHECK(g.eos_token_ids == std::vector<int64_t>{128009, 128001});
  CHECK(g.raw["eos_token_id"] == json::array({128009, 128001}));
  CHECK(g.raw["temperature"] == 0.6);  // the rest of the source's file is kept

  // Without a template the generation config is the source's, byte for byte.
  CHECK(mt::export_generation(source, config, llama3, "").raw == source.raw);

  // A source without generation_config.json gets one: the stop list, bos from config.json.
  const mt::GenerationDefaults none = mt::export_generation({}, config, llama3, "llama3");
  CHECK(none.raw["eos_token_id"] == json::array({128009, 128001}));
  CHECK(none.raw["bos_token_id"] == 128000);

  // Every id once, whatever the source lists; a template whose end of turn is EOS writes one id.
  const auto tok2 = mt::Tokenizer::load(mt::test::vocab_file("llama2"));
  CHECK(mt::chat_stop_ids(tok2, "llama2", {2, 2}) == std::vector<int64_t>{2});
  const mt::GenerationDefaults l2 = mt::export_generation({}, config_with_ids(1, 2), tok2, "llama2");
  CHECK(l2.raw["eos_token_id"] == 2);
  for (const char* t : {"llama3", "alpaca"}) {
    const auto ids = mt::chat_stop_ids(llama3, t, {128001, 128009});
    INFO(t);
    CHECK(ids.front() == mt::chat_end_of_turn_id(llama3, t));
    CHECK(std::set<int64_t>(ids.begin(), ids.end()).size() == ids.size());
  }
}

TEST_CASE("export chat: our loader reads an export back to the template it was trained with and the same ids",
          "[export][chat]") {
  std::set<std::string> covered;  // every template has a fixture here, so the transformers check covers it
  for (const char* name : kFixtures) {
    INFO(name);
    const ChatFixture fx(name);
    const fs::path& src = fx.tokenizer;
    const std::string& tmpl = fx.tmpl;
    covered.insert(tmpl);
    const fs::path out = mt::test::temp_dir("export_tok");
    const mt::Tokenizer before = mt::Tokenizer::load(src);
    mt::write_tokenizer_files(before, src, tmpl, out);
    const mt::Tokenizer after = mt::Tokenizer::load(out);
    CHECK(mt::detect_chat_template(after) == tmpl);  // `generate --model final/` renders as training did
    CHECK(mt::chat_template_from_model(after) == tmpl);  // and so does training on it with from_model
    CHECK(after.chat_template() == mt::test::read_json(out / "tokenizer_config.json")["chat_template"].get<std::string>());
    CHECK(mt::test::read_file(out / "chat_template.jinja") == after.chat_template());
    for (const auto& c : fx.cases) {
      INFO(c.at("name").get<std::string>());
      const auto messages = messages_of(c);
      CHECK(mt::render_chat(after, tmpl, messages).ids == mt::render_chat(before, tmpl, messages).ids);
    }
    CHECK(mt::chat_end_of_turn_id(after, tmpl) == mt::chat_end_of_turn_id(before, tmpl));
    fs::remove_all(out);
  }
  const auto& names = mt::chat_template_names();
  CHECK(covered == std::set<std::string>(names.begin(), names.end()));
}

// Where transformers' tokenizer and ours may split the same text differently, so that
// apply_chat_template's ids can differ from render_chat's (the text never does):
// - a SentencePiece vocabulary and a run of spaces or tabs: sentencepiece (and we) keep a whitespace
//   run apart from the word after it ("▁▁▁" "▁return"), transformers' conversion of tokenizer.model
//   (Metaspace, split=False) merges across it ("▁" "▁" "▁" "▁return" or "▁▁" "C");
// - Alpaca, a whole conversation whose response starts with whitespace: we encode prompt and response
//   apart (the prompt-boundary invariant), transformers encodes the whole text (":\n\n" is one token).
// Generation prompts on a byte-level BPE have neither, and must be equal.
bool known_split_difference(const mt::Tokenizer& tok, const std::string& tmpl, const json& c) {
  const std::string text = tok.decode(c.at("ids").get<std::vector<int64_t>>(), false);
  const bool ws_run = text.find("  ") != std::string::npos || text.find("\t") != std::string::npos;
  if (tok.kind() == "sentencepiece" && ws_run) return true;
  const json& m = c.at("messages");
  return tmpl == "alpaca" && !c.at("add_generation_prompt").get<bool>() && m.back().at("role") == "assistant" &&
         !m.back().at("content").get<std::string>().empty() &&
         std::isspace(static_cast<unsigned char>(m.back().at("content").get<std::string>()[0]));
}

TEST_CASE("export chat: transformers' apply_chat_template on an export gives render_chat's ids for every template",
          "[export][chat][python]") {
  const std::string py = MT_PYTHON;
  REQUIRE_FALSE(py.empty());  // scripts/build.sh always passes -DMT_PYTHON
  for (const char* name : kFixtures) {
    INFO(name);
    const ChatFixture fx(name);
    const fs::path& src = fx.tokenizer;
    const std::string& tmpl = fx.tmpl;
    const mt::Tokenizer tok = mt::Tokenizer::load(src);
    const fs::path out = mt::test::temp_dir("export_hf");
    mt::write_tokenizer_files(tok, src, tmpl, out);
    const mt::GenerationDefaults g =
        mt::export_generation({}, config_with_ids(tok.special().bos, tok.special().eos), tok, tmpl);
    mt::test::write_file(out / "generation_config.json", g.raw.dump(2));
    const json cases = chat_cases(tok, tmpl, fx.cases);
    REQUIRE(cases.size() >= 10);
    mt::test::write_file(out / "cases.json", cases.dump());
    const auto r = mt::test::run_command("HF_HUB_OFFLINE=1 '" + py + "' " +
                                         mt::test::quoted(fs::path(MT_SOURCE_DIR) / "scripts" / "check_chat_export.py") + " " +
                                         mt::test::quoted(out) + " " + mt::test::quoted(out / "cases.json") + " 2>&1");
    INFO(r.output);
    REQUIRE(r.exit_code != 2);  // 2: transformers could not load the export (1: some ids differ)
    const auto lines = mt::test::json_lines(r.output);
    REQUIRE_FALSE(lines.empty());
    const json& res = lines.back();
    CHECK(res["chat_template_from_jinja"] == true);
    size_t exact = 0;
    for (size_t i = 0; i < res["cases"].size() && i < cases.size(); ++i) {
      const json& got = res["cases"][i];
      INFO(got["name"].get<std::string>());
      CHECK(got["text_equal"] == true);
      if (got["equal"] == true) ++exact;
      else CHECK(known_split_difference(tok, tmpl, cases[i]));
    }
    // Every difference is one of the known splits above, and they are the minority (whitespace runs
    // are in 4 of the 12 conversations of each fixture).
    CHECK(2 * exact > cases.size());
    CHECK(res["eos_token_id"].get<std::vector<int64_t>>() == mt::chat_stop_ids(tok, tmpl, {tok.special().eos}));
    CHECK(res["cases"].size() == cases.size());
    fs::remove_all(out);
  }
}

namespace {

// A one-layer model on LLaMA-3's vocabulary (its tiktoken file beside it, so the llama3 template
// is detected) whose greedy next token is always <|eot_id|>: every block's output projections are
// zero, so the last hidden state is the token's embedding, whose coordinate 0 is 1 for every token;
// lm_head reads coordinate 0 into <|eot_id|>'s logit only.
fs::path make_eot_model() {
  const fs::path dir = mt::test::temp_dir("eot_model");
  const mt::ModelConfig config = config_with_ids(128000, 128001);
  mt::Transformer model = mt::init_transformer(config, 3, at::TensorOptions().dtype(at::kFloat));
  c10::NoGradGuard no_grad;
  for (auto& [name, t] : model.params) {
    if (name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos) t.zero_();
    if (name == "model.embed_tokens.weight") t.select(1, 0).fill_(1.0);
    if (name == "model.norm.weight") t.fill_(1.0);
    if (name == "lm_head.weight") {
      t.zero_();
      t[128009][0] = 100.0;
    }
  }
  mt::save_model_dir(model, {}, dir);
  fs::copy_file(mt::test::vocab_file("llama3"), dir / "tokenizer.model");
  return dir;
}

}  // namespace

TEST_CASE("export chat: generate stops at the template's end of turn for instruction prompts", "[export][chat][cli]") {
  const fs::path dir = make_eot_model();
  mt::test::write_file(dir / "chat.jsonl", json{{"instruction", "Hi"}}.dump() + "\n");
  mt::test::write_file(dir / "text.jsonl", json{{"prompt", "Hi"}}.dump() + "\n");
  const std::string base = "generate --model " + mt::test::quoted(dir) + " --device cpu --max-new-tokens 3 --data ";
  const auto run = [&](const std::string& args) {
    auto r = mt::test::run_maintune(base + args);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const auto lines = mt::test::json_lines(r.output);
    REQUIRE(lines.size() == 1);
    return lines[0];
  };
  // An instruction: the model's first token is <|eot_id|>, where a llama3 chat turn ends.
  const json chat = run(mt::test::quoted(dir / "chat.jsonl"));
  CHECK(chat["generated_ids"] == json::array({128009}));
  CHECK(chat["finish_reason"] == "stop");
  // A plain text prompt continues text: only the model's eos (128001) stops it.
  const json text = run(mt::test::quoted(dir / "text.jsonl"));
  CHECK(text["generated_ids"] == json::array({128009, 128009, 128009}));
  CHECK(text["finish_reason"] == "length");
  // --stop-ids overrides the default either way.
  CHECK(run(mt::test::quoted(dir / "chat.jsonl") + " --stop-ids none")["finish_reason"] == "length");
  CHECK(run(mt::test::quoted(dir / "chat.jsonl") + " --stop-ids 128001")["generated_ids"].size() == 3);
  CHECK(run(mt::test::quoted(dir / "text.jsonl") + " --stop-ids 128009")["generated_ids"] == json::array({128009}));
  // --template from_model: the tokenizer's own template, an error while the model has none (exit 1,
  // naming what is missing and our templates), Llama 3.1's once its tokenizer_config.json holds it.
  const auto none = mt::test::run_maintune(base + mt::test::quoted(dir / "chat.jsonl") + " --template from_model");
  INFO(none.output);
  CHECK(none.exit_code == 1);
  CHECK(none.output.find("no chat_template") != std::string::npos);
  CHECK(none.output.find("qwen2.5") != std::string::npos);
  const mt::Tokenizer tok = mt::Tokenizer::load(dir);
  mt::test::write_file(dir / "tokenizer_config.json", json{{"chat_template", mt::chat_template_jinja(tok, "llama3.1")}}.dump());
  CHECK(run(mt::test::quoted(dir / "chat.jsonl") + " --template from_model")["generated_ids"] == json::array({128009}));
  fs::remove_all(dir);
}
