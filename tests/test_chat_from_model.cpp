// `template: from_model`: a model whose tokenizer_config.json (or chat_template.jinja) holds one of
// the official templates (tests/fixtures/tokenizer/official_chat_templates.json, written by
// scripts/make_chat_vectors.py from the texts it renders the fixtures with) renders as ours, also
// when re-indented, saved with CRLF or without its last newline; any change Jinja would render is
// an error naming the file and our templates. Exports carry those texts byte for byte, and `auto`
// takes the exact answer before its guesses.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "models/chat_template.h"
#include "models/error.h"
#include "models/tokenizer.h"
#include "tests/test_util.h"
#include "trainer/config/config.h"
#include "trainer/loop/training_data.h"

namespace fs = std::filesystem;
using mt::test::require_error;
using nlohmann::json;

namespace {

const json& official_templates() {
  static const json fx = mt::test::read_json(mt::test::tokenizer_fixture("official_chat_templates.json"));
  return fx;
}

// A model directory with LLaMA-3's tokenizer and `chat_template` in `file` (tokenizer_config.json
// or chat_template.jinja); removed with the object.
struct ModelDir {
  fs::path dir = mt::test::temp_dir("from_model");
  explicit ModelDir(const std::string& chat_template, const std::string& file = "tokenizer_config.json") {
    fs::copy_file(mt::test::vocab_file("llama3"), dir / "tokenizer.model");
    if (file == "tokenizer_config.json") mt::test::write_file(dir / file, json{{"chat_template", chat_template}}.dump(1));
    else mt::test::write_file(dir / file, chat_template);
  }
  ~ModelDir() { mt::test::remove_tree(dir); }
  ModelDir(const ModelDir&) = delete;
  ModelDir& operator=(const ModelDir&) = delete;
  mt::Tokenizer tokenizer() const { return mt::Tokenizer::load(dir); }
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

}  // namespace

TEST_CASE("chat from_model: exports carry the official templates byte for byte", "[chat][from_model]") {
  const mt::Tokenizer tok = mt::Tokenizer::load(mt::test::vocab_file("llama3"));
  const json& official = official_templates().at("official");
  REQUIRE(official.size() == 5);
  for (const auto& [name, text] : official.items()) {
    INFO(name);
    const auto& names = mt::chat_template_names();
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
    CHECK(mt::chat_template_jinja(tok, name) == text.get<std::string>());
  }
  // Llama 3.1's date line is the template's own default, the constant render_chat writes.
  CHECK(official.at("llama3.1").get<std::string>().find(std::string("{%- set date_string = \"") + mt::kLlama31Date +
                                                        "\" %}") != std::string::npos);
}

TEST_CASE("chat from_model: a model holding an official template renders as that template", "[chat][from_model]") {
  for (const auto& [name, text] : official_templates().at("official").items()) {
    INFO(name);
    const std::string t = text.get<std::string>();
    for (const char* file : {"tokenizer_config.json", "chat_template.jinja"}) {
      INFO(file);
      const ModelDir m(t, file);
      const mt::Tokenizer tok = m.tokenizer();
      CHECK(tok.chat_template_file() == m.dir / file);
      CHECK(mt::chat_template_from_model(tok) == name);
      CHECK(mt::detect_chat_template(tok) == name);  // auto agrees
      CHECK(mt::resolve_chat_template(tok, "from_model") == name);
    }
    // Whitespace Jinja does not render: CRLF line ends, the last newline added or dropped, other
    // indentation before "{%-" and after "-%}", lines broken after "%}" (trim_blocks) or indented
    // before "{%" (lstrip_blocks).
    std::string no_last_newline = t;
    if (!no_last_newline.empty() && no_last_newline.back() == '\n') no_last_newline.pop_back();
    for (const std::string& variant :
         {replace_all(t, "\n", "\r\n"), no_last_newline, no_last_newline + "\n", replace_all(t, "\n    {%-", "\n\t{%-"),
          replace_all(t, "{%-", " \n {%-"), replace_all(t, "-%}", "-%}\n  "), replace_all(t, "%}", "%}\n"),
          replace_all(t, "%}{% ", "%}\n  {% ")}) {
      if (variant == t) continue;
      const ModelDir m(variant);
      INFO("variant:\n" << variant);
      CHECK(mt::chat_template_from_model(m.tokenizer()) == name);
    }
  }
}

TEST_CASE("chat from_model: what an export writes for mistral and alpaca is recognised too", "[chat][from_model]") {
  for (const char* vocab : {"mistral", "mistral-v3", "llama2"}) {
    const mt::Tokenizer tok = mt::Tokenizer::load(mt::test::vocab_file(vocab));
    for (const char* name : {"mistral", "alpaca"}) {
      INFO(vocab << " " << name);
      const fs::path dir = mt::test::temp_dir("from_model_export");
      fs::copy_file(mt::test::vocab_file(vocab), dir / "tokenizer.model");
      mt::test::write_file(dir / "chat_template.jinja", mt::chat_template_jinja(tok, name));
      CHECK(mt::chat_template_from_model(mt::Tokenizer::load(dir)) == name);
      mt::test::remove_tree(dir);
    }
  }
}

TEST_CASE("chat from_model: any other template is an error naming the file and our templates",
          "[chat][from_model][bad-input]") {
  const json& official = official_templates().at("official");
  const std::string llama31 = official.at("llama3.1").get<std::string>();
  const std::string qwen25 = official.at("qwen2.5").get<std::string>();
  const std::string llama3 = official.at("llama3").get<std::string>();
  struct Case {
    std::string text, guess;
  };
  const std::vector<Case> cases = {
      // Mistral-7B-Instruct's own template: it differs from mistral-common's rendering (ours).
      {official_templates().at("unsupported").at("mistral-7b-instruct-v0.1").get<std::string>(), "mistral"},
      // Rendered whitespace changed: a space in the date line and in the default system prompt, a
      // space between a block and an expression.
      {replace_all(llama31, "Today Date: ", "Today Date:  "), "llama3.1"},
      {replace_all(qwen25, "Alibaba Cloud. You", "Alibaba Cloud.  You"), "qwen2.5"},
      {replace_all(llama3, "%}{{ content }}", "%} {{ content }}"), "llama3"},
      // Llama 3.2's template writes today's date (strftime_now): not 3.1's fixed one.
      {replace_all(llama31, "{%- set date_string = \"26 Jul 2024\" %}",
                   "{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}{%- else %}"
                   "{%- set date_string = \"26 Jul 2024\" %}{%- endif %}"),
       "llama3.1"},
      {"{% for m in messages %}{{ m['content'] }}{% endfor %}", ""},
  };
  for (const auto& c : cases) {
    REQUIRE(c.text != llama31);
    for (const char* file : {"tokenizer_config.json", "chat_template.jinja"}) {
      const ModelDir m(c.text, file);
      const mt::Tokenizer tok = m.tokenizer();
      INFO(file << "\n" << c.text);
      std::vector<std::string> parts = {(m.dir / file).string(), "from_model", "not one that maintune implements"};
      for (const auto& n : mt::chat_template_names()) parts.push_back(n);
      if (!c.guess.empty()) parts.push_back("`auto` would render it as '" + c.guess + "'");
      std::string message;
      try {
        mt::chat_template_from_model(tok);
      } catch (const mt::Error& e) {
        message = e.what();
      }
      for (const auto& p : parts) {
        INFO("message: " << message << "\nexpected to contain: " << p);
        CHECK(message.find(p) != std::string::npos);
      }
      CHECK(mt::detect_chat_template(tok) == c.guess);  // auto still guesses
    }
  }
  // No chat_template at all.
  const fs::path dir = mt::test::temp_dir("from_model_none");
  fs::copy_file(mt::test::vocab_file("llama3"), dir / "tokenizer.model");
  const mt::Tokenizer none = mt::Tokenizer::load(dir);
  CHECK(none.chat_template_file().empty());
  require_error([&] { mt::chat_template_from_model(none); },
                {(dir / "tokenizer.model").string(), "no chat_template", "from_model", "llama3.1", "qwen2.5"});
  CHECK(mt::resolve_chat_template(none, "auto") == "llama3");  // by its special tokens
  CHECK(mt::resolve_chat_template(none, "chatml") == "chatml");
  mt::test::remove_tree(dir);
}

TEST_CASE("chat from_model: data.template from_model is a run's template, resolved from its tokenizer",
          "[chat][from_model][config]") {
  const ModelDir m(official_templates().at("official").at("qwen2.5").get<std::string>());
  const fs::path yaml = m.dir / "run.yaml";
  mt::test::write_file(yaml, "data:\n  template: from_model\n");
  mt::TrainConfig c = mt::load_train_config(yaml);
  CHECK(c.data.template_name == "from_model");
  CHECK(mt::run_chat_template(c, m.dir) == "qwen2.5");
  c.data.template_name = "auto";
  CHECK(mt::run_chat_template(c, m.dir) == "qwen2.5");
  c.data.template_name = "chatml";  // a named template is used as named
  CHECK(mt::run_chat_template(c, m.dir) == "chatml");

  const ModelDir other("{{ messages }}");
  c.data.template_name = "from_model";
  require_error([&] { mt::run_chat_template(c, other.dir); }, {(other.dir / "tokenizer_config.json").string(), "llama3.1"});
}
