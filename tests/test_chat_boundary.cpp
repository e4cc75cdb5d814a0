// The boundary between a prompt and its answer: for every template, the generation prompt of a
// conversation is exactly the training rendering's ids up to the answer's first target token, so
// generation continues from the prefix training conditioned on. Checked on every template's
// fixture tokenizers (tests/fixtures/tokenizer/chat_*.json, real vocabularies from ../shared/data)
// with answers starting with digits, capitals, punctuation, spaces, newlines, lowercase, emoji and
// CJK, in single and multi-turn conversations, and through every caller that builds a generation
// prompt or cuts a scored answer (generate's and score's JSON records, the pipeline's turns).
#include <map>

#include "models/chat_template.h"
#include "models/error.h"
#include "tests/shared_data.h"
#include "tests/test_util.h"
#include "trainer/data/text_requests.h"
#include "trainer/method/stage_context.h"

namespace fs = std::filesystem;

namespace {

std::vector<mt::ChatMessage> msgs(std::initializer_list<std::pair<const char*, const char*>> list) {
  std::vector<mt::ChatMessage> out;
  for (const auto& [role, content] : list) out.push_back({role, content});
  return out;
}

}  // namespace

TEST_CASE("chat template: the space before a LLaMA-2 or Mistral answer is the answer's first target", "[chat][boundary]") {
  // SentencePiece cannot merge the space into a digit: "] 42" is "]" "▁" "4" "2". The generation
  // prompt ends at "[/INST]", so the "▁" is the first token the model must emit.
  const auto ask = msgs({{"user", "What is 6*7?"}});
  const auto conv = msgs({{"user", "What is 6*7?"}, {"assistant", "42"}});
  for (const char* vocab : {"llama2", "mistral", "mistral-v3"}) {
    INFO(vocab);
    const auto tok = mt::Tokenizer::load(mt::test::vocab_file(vocab));
    const std::string tmpl = std::string(vocab) == "llama2" ? "llama2" : "mistral";
    const auto r = mt::render_chat(tok, tmpl, conv);
    const auto gen = mt::render_chat(tok, tmpl, ask, false, /*add_generation_prompt=*/true).ids;
    REQUIRE(r.ids.size() > gen.size());
    CHECK(std::equal(gen.begin(), gen.end(), r.ids.begin()));
    CHECK(r.ids[gen.size()] == tok.token_id("\xe2\x96\x81").value());  // "▁"
    CHECK(r.loss_mask[gen.size() - 1] == 0);
    CHECK(r.loss_mask[gen.size()] == 1);
  }
  // LLaMA-2 in ids: ... "]" 29962, then "▁" 29871 "4" 29946 "2" 29906 "▁" 29871 </s> 2, all targets.
  const auto l2 = mt::Tokenizer::load(mt::test::vocab_file("llama2"));
  const auto r = mt::render_chat(l2, "llama2", conv);
  REQUIRE(r.ids.size() >= 6);
  CHECK(std::vector<int64_t>(r.ids.end() - 6, r.ids.end()) == std::vector<int64_t>{29962, 29871, 29946, 29906, 29871, 2});
  CHECK(std::vector<int64_t>(r.loss_mask.end() - 6, r.loss_mask.end()) == std::vector<int64_t>{0, 1, 1, 1, 1, 1});
}

namespace {

// Conversations whose answers start with each kind of first piece: digits, capitals, punctuation,
// spaces, newlines, lowercase, emoji, CJK, nothing; multi-turn ones, one with a system prompt.
std::vector<std::vector<mt::ChatMessage>> boundary_conversations() {
  std::vector<std::vector<mt::ChatMessage>> out;
  for (const char* answer :
       {"42", "7 or 8", "Hello there.", "HELLO", "(7) or 8", "\"Quoted\"", "...so", "- item", " leading space",
        "  two spaces, then 9", "\tTab", "\nNewline first", "\n\ntwo newlines", "lowercase words", "x",
        "\xf0\x9f\xa6\x99" /* llama */, "\xe6\x9d\xb1\xe4\xba\xac" /* Tokyo */, ""})
    out.push_back({{"user", "Answer me."}, {"assistant", answer}});
  out.push_back({{"system", "Be brief."}, {"user", "First?"}, {"assistant", "1"}, {"user", "Second?"},
                 {"assistant", "Two"}, {"user", "Third?"}, {"assistant", " third"}});
  out.push_back({{"user", "a"}, {"assistant", "!"}, {"user", "b"}, {"assistant", "B"}});
  return out;
}

// Calls fn(template, fixture file, tokenizer) for every template and each of its fixtures' tokenizers;
// every template must have a fixture, so a new template is covered by the tests that use this.
template <typename Fn>
void for_each_template_tokenizer(Fn&& fn) {
  std::map<std::string, std::vector<std::string>> fixtures_of;
  for (const auto& e : fs::directory_iterator(mt::test::tokenizer_fixture(""))) {
    const std::string file = e.path().filename().string();
    if (file.rfind("chat_", 0) != 0 || e.path().extension() != ".json") continue;
    fixtures_of[mt::test::read_json(e.path()).at("template").get<std::string>()].push_back(file);
  }
  for (const std::string& tmpl : mt::chat_template_names()) {
    INFO("template " << tmpl);
    REQUIRE(!fixtures_of[tmpl].empty());
    for (const std::string& file : fixtures_of[tmpl]) {
      std::vector<fs::path> cleanup;
      const mt::Tokenizer tok =
          mt::test::fixture_tokenizer(mt::test::read_json(mt::test::tokenizer_fixture(file)).at("tokenizer"), cleanup);
      fn(tmpl, file, tok);
      for (const auto& d : cleanup) fs::remove_all(d);
    }
  }
}

bool renders(const mt::Tokenizer& tok, const std::string& tmpl, const std::vector<mt::ChatMessage>& conv) {
  try {
    mt::render_chat(tok, tmpl, conv);
    return true;
  } catch (const mt::Error&) {
    return false;  // Alpaca takes one exchange only
  }
}

std::vector<int64_t> head(const std::vector<int64_t>& v, size_t n) {
  return std::vector<int64_t>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size())));
}

}  // namespace

TEST_CASE("chat template: every template's generation prompt is the training prefix up to the first target",
          "[chat][template][boundary]") {
  for_each_template_tokenizer([](const std::string& tmpl, const std::string& file, const mt::Tokenizer& tok) {
    // Mistral v3 (mistral-common) puts the system prompt before the last user message, so in a
    // longer conversation the earlier turns are rendered without it: there only `upto` is checked.
    const bool moves_system = tmpl == "mistral" && tok.special().by_text.count("[INST]") > 0;
    size_t checked = 0;
    for (const auto& conv : boundary_conversations()) {
      if (!renders(tok, tmpl, conv)) continue;
      ++checked;
      const auto whole = mt::render_chat(tok, tmpl, conv);
      for (size_t k = 0; k < conv.size(); ++k) {
        if (conv[k].role != "assistant") continue;
        const std::vector<mt::ChatMessage> before(conv.begin(), conv.begin() + static_cast<long>(k));
        const std::vector<mt::ChatMessage> upto(conv.begin(), conv.begin() + static_cast<long>(k) + 1);
        const auto gen = mt::render_chat(tok, tmpl, before, false, /*add_generation_prompt=*/true).ids;
        const auto full = mt::render_chat(tok, tmpl, upto);
        // The answer's first target: the first target after everything `before` renders as.
        size_t first = mt::render_chat(tok, tmpl, before).ids.size();
        while (first < full.ids.size() && !full.loss_mask[first]) ++first;
        INFO(file << ", turn " << k << ", answer \"" << conv[k].content << "\"\n  gen  " << mt::test::show_ids(gen)
                  << "\n  full " << mt::test::show_ids(full.ids));
        REQUIRE(first < full.ids.size());
        CHECK(head(full.ids, first) == gen);
        // The whole conversation trains turn k on exactly these tokens.
        if (!(moves_system && conv[0].role == "system")) {
          CHECK(head(whole.ids, full.ids.size()) == full.ids);
          CHECK(std::vector<uint8_t>(whole.loss_mask.begin(),
                                     whole.loss_mask.begin() + static_cast<long>(full.ids.size())) == full.loss_mask);
        }
      }
    }
    CHECK(checked >= 18);
  });
}

TEST_CASE("chat template: generate, score and the pipeline build prompts and cut answers at the boundary",
          "[chat][boundary]") {
  for_each_template_tokenizer([](const std::string& tmpl, const std::string& file, const mt::Tokenizer& tok) {
    const mt::TextContext text{&tok, "", tmpl};
    mt::pipeline::Context ctx;
    ctx.tok = tok;
    ctx.chat_template = tmpl;
    for (const auto& conv : boundary_conversations()) {
      if (conv.size() != 2) continue;
      const std::string& user = conv[0].content;
      const std::string& answer = conv[1].content;
      INFO(file << ", answer \"" << answer << "\"");
      const auto gen = mt::render_chat(tok, tmpl, {conv[0]}, false, /*add_generation_prompt=*/true).ids;
      const auto full = mt::render_chat(tok, tmpl, conv);
      size_t end = full.ids.size();  // after the last target
      while (end > 0 && !full.loss_mask[end - 1]) --end;
      const std::vector<int64_t> target(full.ids.begin() + static_cast<long>(gen.size()),
                                        full.ids.begin() + static_cast<long>(end));
      REQUIRE(head(full.ids, gen.size()) == gen);
      REQUIRE(full.loss_mask[gen.size()] == 1);

      const auto split = mt::split_last_turn(tok, tmpl, conv);
      CHECK(split.prompt == gen);
      CHECK(split.target == target);
      // maintune generate / score: {"instruction"} and {"instruction", "response"} records.
      CHECK(mt::generation_prompt_from_json({{"instruction", user}}, text, "t:1") == gen);
      const auto scored = mt::score_pair_from_json({{"instruction", user}, {"response", answer}}, text, "t:1");
      CHECK(scored.first == gen);
      CHECK(scored.second == target);
      // The pipeline: generation (rounds, synthesis, final evaluation, self-curation) and scoring.
      CHECK(mt::pipeline::generation_prompt(ctx, {"", user, ""}) == gen);
      const mt::ScoreRequest req = mt::pipeline::score_request(ctx, {"", user, answer});
      CHECK(req.prompt_ids == gen);
      CHECK(req.target_ids == target);
      {  // with a system prompt (the pipeline's final evaluation passes one)
        const mt::pipeline::Turns with_system = mt::pipeline::forward_turns(ctx, {user, answer}, "Be brief.");
        const auto sys_conv = mt::pipeline::messages_of(with_system, true);
        const auto sys_gen = mt::render_chat(tok, tmpl, mt::pipeline::messages_of(with_system, false), false, true).ids;
        const auto sys_full = mt::render_chat(tok, tmpl, sys_conv);
        CHECK(mt::pipeline::generation_prompt(ctx, with_system) == sys_gen);
        CHECK(mt::pipeline::score_request(ctx, with_system).prompt_ids == sys_gen);
        CHECK(head(sys_full.ids, sys_gen.size()) == sys_gen);
      }
    }
  });
}
