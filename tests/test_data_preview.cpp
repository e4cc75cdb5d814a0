// `maintune data preview` (trainer/loop/data_preview.h): the marked text loses and adds nothing
// (markers removed, it is the example's decode, and each marked run is exactly a run of targets),
// the generation prompt ends where the first marker opens (LLaMA-2's space after [/INST] is a
// target), the statistics agree with the examples shown, nothing is written, and bad input is a
// clear error.
#include <fmt/format.h>

#include <regex>
#include <string>
#include <vector>

#include "models/tokenizer.h"
#include "trainer/data/examples.h"
#include "trainer/loop/data_preview.h"
#include "tests/run_fixtures.h"
#include "tests/shared_data.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

// Alpaca takes one instruction and one response, so it gets the first conversation only.
std::vector<mt::Conversation> preview_conversations(bool multi_turn) {
  std::vector<mt::Conversation> convs;
  convs.push_back({{{"user", "Hello there!"}, {"assistant", " Hi,  how can I help?"}}, "a:1"});
  convs.push_back({{{"system", "Be brief."},
                    {"user", "Name a colour."},
                    {"assistant", "Blue."},
                    {"user", "Another, in  Français?"},
                    {"assistant", "Rouge  ✓\n\tend"}},
                   "a:2"});
  if (!multi_turn) convs.pop_back();
  return convs;
}

std::string without_markers(std::string s) {
  for (const std::string m : {"[[~", "[[", "]]"})
    for (size_t p; (p = s.find(m)) != std::string::npos;) s.erase(p, m.size());
  return s;
}

int64_t count_occurrences(const std::string& s, const std::string& what) {
  int64_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

int64_t target_runs(const mt::DatasetView& v, int64_t i) {
  const uint8_t* m = v.masks + v.offsets[i];
  int64_t runs = 0;
  for (int64_t t = 0; t < v.length(i); ++t) runs += m[t] != 0 && (t == 0 || m[t - 1] != m[t]);
  return runs;
}

// A model dir for the preview: the tiny model's config with `vocab` entries (no weight is read).
fs::path preview_model_dir(const fs::path& dir, int64_t vocab) {
  nlohmann::json cfg = mt::test::read_json(mt::test::tiny_model_dir() / "config.json");
  cfg["vocab_size"] = vocab;
  fs::create_directories(dir);
  mt::test::write_file(dir / "config.json", cfg.dump());
  return dir;
}

}  // namespace

TEST_CASE("data preview: marked text is the decode with every target run marked, for every template and vocab",
          "[data-preview][data]") {
  const std::vector<std::pair<std::string, std::string>> setups = {
      {"llama3", "llama3"}, {"llama2", "llama2"}, {"mistral", "mistral"}, {"chatml", "mistral"}, {"alpaca", "llama2"}};
  for (const auto& [template_name, vocab] : setups) {
    INFO(template_name << " on " << vocab);
    // chatml needs <|im_start|> / <|im_end|>: the mistral vocabulary with them added, as in the template tests.
    const mt::Tokenizer tok = mt::Tokenizer::load(template_name == "chatml"
                                                      ? mt::test::make_hf_dir("tokenizers/mistral/tokenizer.model", "chatml-mistral")
                                                      : mt::test::vocab_file(vocab));
    mt::ExampleOptions o;
    o.template_name = template_name;
    o.max_len = 512;
    mt::TokenizedDataset data = mt::tokenize_conversations(tok, preview_conversations(template_name != "alpaca"), o);
    REQUIRE(data.size() == (template_name == "alpaca" ? 1 : 2));
    const mt::DatasetView v = data.view();
    for (int64_t i = 0; i < v.num_examples; ++i) {
      const std::string text = mt::masked_example_text(tok, v, i, false);
      const uint32_t* ids = v.tokens + v.offsets[i];
      CHECK(without_markers(text) == tok.decode(std::vector<int64_t>(ids, ids + v.length(i))));
      CHECK(count_occurrences(text, "[[") == target_runs(v, i));
      // Each marked run decodes to its tokens' text: the first run's tokens start right after the prompt.
      const size_t open = text.find("[[");
      REQUIRE(open != std::string::npos);
      int64_t first_target = 0;
      while (v.masks[v.offsets[i] + first_target] == 0) ++first_target;
      CHECK(text.substr(0, open) == tok.decode(std::vector<int64_t>(ids, ids + first_target)));
      if (template_name == "llama2") CHECK(text.substr(open - 7, 10) == "[/INST][[ ");  // the space is trained on
      // Colour marks the same runs.
      const std::string coloured = mt::masked_example_text(tok, v, i, true);
      CHECK(count_occurrences(coloured, "\033[32m") == target_runs(v, i));
    }
    const std::string table = mt::example_token_table(tok, v, 0);
    CHECK(count_occurrences(table, "\n") == v.length(0) + 1);
    mark_synthetic_targets(data);
    CHECK(mt::masked_example_text(tok, data.view(), 0, false).find("[[~") != std::string::npos);
  }
}

TEST_CASE("data preview: the CLI shows examples and statistics that agree with them, and writes nothing",
          "[data-preview][cli]") {
  const mt::test::TempDir dir("data_preview");
  const fs::path model = preview_model_dir(dir / "model", 32000);
  const fs::path data = mt::test::write_reverse_pairs(dir / "pairs.jsonl", {"apple", "river", "stone", "cloud"},
                                                      "The reversed word is ", 10);
  const fs::path run = dir / "run";
  const fs::path cfg = dir / "run.yaml";
  mt::test::write_file(cfg, "model:\n  path: " + model.string() + "\n  tokenizer: " + mt::test::vocab_file("llama2").string() +
                                "\n  init: random\n  device: cpu\n"
                                "data:\n  sources:\n    - path: " + data.string() +
                                "\n      format: alpaca\n  template: llama2\n  max_len: 40\n  packing: first_fit\n"
                                "training:\n  max_steps: 6\n  micro_batch_size: 2\n  grad_accum_steps: 2\n"
                                "output:\n  run_dir: " + run.string() + "\n");
  const std::string base = "data preview --config " + mt::test::quoted(cfg) + " --color never";
  auto r = mt::test::run_maintune(base + " --n 10 2>/dev/null");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_FALSE(fs::exists(run));  // no run directory, no cache
  CHECK(r.output.find("template llama2") != std::string::npos);
  CHECK(r.output.find("[/INST][[ The reversed word is elppa. </s>]]") != std::string::npos);
  // The per-example counts add up to the totals, and the step arithmetic is stated.
  const std::regex example(R"(== example \d+ of 10: (\d+) tokens, (\d+) trained on ==)");
  int64_t tokens = 0, targets = 0, shown = 0;
  for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), example); it != std::sregex_iterator(); ++it) {
    tokens += std::stoll((*it)[1]);
    targets += std::stoll((*it)[2]);
    ++shown;
  }
  CHECK(shown == 10);
  CHECK(r.output.find(fmt::format("training examples: 10; tokens {}, of which trained on {}", tokens, targets)) !=
        std::string::npos);
  CHECK(r.output.find("truncated to max_len: 0") != std::string::npos);
  CHECK(r.output.find("steps: 6 optimizer steps x grad_accum_steps 2") != std::string::npos);

  // A shorter max_len truncates: counted, and every example shown fits.
  auto t = mt::test::run_maintune(base + " data.max_len=20 --n 10 --tokens 2>/dev/null");
  INFO(t.output);
  REQUIRE(t.exit_code == 0);
  CHECK(t.output.find("truncated to max_len: 0") == std::string::npos);
  CHECK(t.output.find("of 10 at max_len 20") != std::string::npos);
  CHECK(t.output.find("  pos       id  target  piece") != std::string::npos);
  CHECK(t.output.find("yes  \" The\"") != std::string::npos);  // a piece with the space it decodes with

  // Bad input: an example past the end, a bad option value, a missing subcommand, a missing source.
  auto past = mt::test::run_maintune(base + " --first 10");
  CHECK(past.exit_code == 1);
  CHECK(past.output.find("--first 10 is past the 10 training examples") != std::string::npos);
  CHECK(mt::test::run_maintune(base + " --color sometimes").exit_code == 2);
  CHECK(mt::test::run_maintune("data").exit_code == 2);
  CHECK(mt::test::run_maintune("data view").exit_code == 2);
  auto help = mt::test::run_maintune("help data");
  CHECK(help.exit_code == 0);
  CHECK(help.output.find("preview") != std::string::npos);
  std::string bad_cfg = mt::test::read_file(cfg);
  bad_cfg.replace(bad_cfg.find(data.string()), data.string().size(), (dir / "nope.jsonl").string());
  mt::test::write_file(dir / "bad.yaml", bad_cfg);
  auto missing = mt::test::run_maintune("data preview --config " + mt::test::quoted(dir / "bad.yaml"));
  CHECK(missing.exit_code == 1);
  CHECK(missing.output.find((dir / "nope.jsonl").string()) != std::string::npos);
  CHECK_FALSE(fs::exists(run));
}
