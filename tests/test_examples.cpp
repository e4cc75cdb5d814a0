// Conversations to training examples (trainer/data/examples.h): loss masks from render_chat (assistant
// turns by default, all but BOS with train_on_prompt), the truncate/drop length policy with exact
// expected ids and masks, and render errors named by place. A hidden case ("[data-stats]") prints the
// token statistics of every shared dataset (the table in docs/data.md).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "trainer/data/examples.h"
#include "trainer/data/token_cache.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;

fs::path tokenizer_path(const std::string& name) { return mt::test::vocab_file(name); }

mt::RenderedChat rendered(std::vector<int64_t> ids, std::vector<uint8_t> mask) {
  mt::RenderedChat r;
  r.ids = std::move(ids);
  r.loss_mask = std::move(mask);
  return r;
}

}  // namespace

TEST_CASE("data: length policy keeps, truncates the response, or drops, with exact ids and masks", "[data]") {
  // BOS, 3 prompt tokens, 4 response tokens (the last one the end-of-turn token).
  const auto r = rendered({1, 10, 11, 12, 20, 21, 22, 2}, {0, 0, 0, 0, 1, 1, 1, 1});
  mt::ExampleOptions o;
  mt::DataStats stats;

  o.max_len = 8;  // fits: kept as is
  auto e = mt::apply_length_policy(r, o, stats);
  REQUIRE(e);
  CHECK(e->ids == std::vector<uint32_t>{1, 10, 11, 12, 20, 21, 22, 2});
  CHECK(e->loss_mask == std::vector<uint8_t>{0, 0, 0, 0, 1, 1, 1, 1});
  CHECK(stats.examples == 1);
  CHECK(stats.target_tokens == 4);

  o.max_len = 6;  // truncate: the prompt whole, the response cut to two tokens
  e = mt::apply_length_policy(r, o, stats);
  REQUIRE(e);
  CHECK(e->ids == std::vector<uint32_t>{1, 10, 11, 12, 20, 21});
  CHECK(e->loss_mask == std::vector<uint8_t>{0, 0, 0, 0, 1, 1});
  CHECK(stats.truncated == 1);

  o.max_len = 4;  // the prompt alone fills max_len: nothing left to learn, dropped
  CHECK(!mt::apply_length_policy(r, o, stats));
  CHECK(stats.dropped_too_long == 1);

  o.max_len = 6;
  o.too_long = "drop";
  CHECK(!mt::apply_length_policy(r, o, stats));
  CHECK(stats.dropped_too_long == 2);
  CHECK(stats.examples == 2);
  CHECK(stats.tokens == 8 + 6);
  CHECK(stats.max_tokens == 8);

  // A mask token at position 0 is never a target, so it does not save a truncated example.
  o.too_long = "truncate";
  o.max_len = 2;
  CHECK(!mt::apply_length_policy(rendered({5, 6, 7}, {1, 0, 1}), o, stats));

  o.too_long = "cut";
  mt::test::require_error([&] { mt::check_example_options(o); }, {"too_long", "\"cut\""});
  o.too_long = "drop";
  o.max_len = 1;
  mt::test::require_error([&] { mt::check_example_options(o); }, {"max_len"});
}

TEST_CASE("data: loss mask covers assistant turns and their end-of-turn token, train_on_prompt all but BOS", "[data]") {
  const fs::path tok_path = tokenizer_path("llama3");
  INFO("the LLaMA-3 tokenizer must be at " << tok_path.string());
  REQUIRE(fs::exists(tok_path));
  const mt::Tokenizer tok = mt::Tokenizer::load(tok_path);
  mt::Conversation conv;
  conv.where = "test:1";
  conv.messages = {{"system", "Be brief."}, {"user", "Hi!"}, {"assistant", "Hello."},
                   {"user", "And 2+2?"},    {"assistant", "4"}};
  mt::ExampleOptions o;
  o.template_name = "llama3";
  mt::DataStats stats;
  auto e = mt::make_example(tok, conv, o, stats);
  REQUIRE(e);
  const mt::RenderedChat r = mt::render_chat(tok, "llama3", conv.messages);
  REQUIRE(e->ids.size() == r.ids.size());
  for (size_t i = 0; i < r.ids.size(); ++i) CHECK(static_cast<int64_t>(e->ids[i]) == r.ids[i]);
  // The masked tokens are exactly the two answers, each with <|eot_id|>.
  std::vector<int64_t> masked;
  std::string runs;
  for (size_t i = 0; i < e->ids.size(); ++i)
    if (e->loss_mask[i]) {
      masked.push_back(e->ids[i]);
      if (i + 1 == e->ids.size() || !e->loss_mask[i + 1]) {
        runs += tok.decode(masked) + "|";
        masked.clear();
      }
    }
  CHECK(runs == "Hello.<|eot_id|>|4<|eot_id|>|");
  const int64_t eot = mt::chat_end_of_turn_id(tok, "llama3");
  CHECK(static_cast<int64_t>(e->ids.back()) == eot);
  CHECK(e->loss_mask.back() == 1);

  o.train_on_prompt = true;
  auto all = mt::make_example(tok, conv, o, stats);
  REQUIRE(all);
  CHECK(all->ids == e->ids);
  CHECK(all->loss_mask[0] == 0);  // BOS
  for (size_t i = 1; i < all->loss_mask.size(); ++i) CHECK(all->loss_mask[i] == 1);

  // Prompts-only conversations are not training examples.
  conv.prompts_only = true;
  CHECK(!mt::make_example(tok, conv, o, stats));
}

TEST_CASE("data: conversations render_chat rejects fail with their place, or are skipped and counted", "[data]") {
  // LLaMA-2's [INST] format needs user/assistant alternation: two user turns in a row are rejected.
  const fs::path tok_path = tokenizer_path("llama2");
  INFO("the LLaMA-2 tokenizer must be at " << tok_path.string());
  REQUIRE(fs::exists(tok_path));
  const mt::Tokenizer tok = mt::Tokenizer::load(tok_path);
  mt::DataSourceConfig c;
  c.format = "messages";
  c.path = mt::test::fixture("data") / "bad_turn_order.jsonl";
  const auto convs = mt::read_conversations(c);
  REQUIRE(convs.size() == 2);
  mt::ExampleOptions o;
  o.template_name = "llama2";
  mt::test::require_error([&] { mt::tokenize_conversations(tok, convs, o); }, {"bad_turn_order.jsonl:1: ", "alternate"});
  o.on_malformed = "skip";
  mt::DataStats stats;
  const auto ds = mt::tokenize_conversations(tok, convs, o, &stats);
  CHECK(ds.size() == 1);
  CHECK(stats.skipped_malformed == 1);
  CHECK(stats.examples == 1);
  CHECK(ds.offsets.back() == ds.tokens.size());
  CHECK(ds.masks.size() == ds.tokens.size());
  mt::ExampleOptions bad;
  bad.template_name = "no_such_template";
  mt::test::require_error([&] { mt::tokenize_conversations(tok, {convs[1]}, bad); }, {"bad_turn_order.jsonl:2: "});
}

// Hidden ("[.]": a report, not a check): prints the docs/data.md table.
//   build/tests/maintune_tests "[data-stats]"
TEST_CASE("data: token statistics of the shared datasets (prints the docs table)", "[.][data-stats]") {
  using clock = std::chrono::steady_clock;
  const fs::path ins = mt::test::shared_data() / "instructions";
  struct Src {
    std::string format, file, answers;
  };
  const std::vector<Src> sources = {
      {"alpaca", "alpaca_gpt4_en_demo_999.json", ""},
      {"alpaca", "alpaca_eval/alpaca_eval_text_davinci_003.json", ""},
      {"alpaca", "alpaca_eval/alpaca_eval_gpt4_1106_preview.json", ""},
      {"alpaca_seed", "alpaca_seed_tasks.jsonl", ""},
      {"prompts", "ifeval_input_data.jsonl", ""},
      {"mt_bench", "mt_bench/question.jsonl", ""},
      {"mt_bench", "mt_bench/question.jsonl", "mt_bench/reference_answer_gpt-4.jsonl"},
      {"mt_bench", "vicuna_bench_question.jsonl", ""},
      {"text", "../unlabeled/tinyshakespeare.txt", ""},
      {"text", "../unlabeled/wiki_demo.txt", ""},
  };
  struct Tok {
    std::string name, templ;
  };
  const std::vector<Tok> toks = {{"llama3", "llama3"}, {"llama2", "llama2"}};
  std::vector<mt::Tokenizer> loaded;
  for (const auto& t : toks) loaded.push_back(mt::Tokenizer::load(tokenizer_path(t.name)));
  std::cout << "| file | format | records | conversations / segments | prompts-only | read ms |";
  for (const auto& t : toks) std::cout << " " << t.name << " mean / max tokens | " << t.name << " ms |";
  std::cout << "\n";
  for (const auto& s : sources) {
    mt::DataSourceConfig c;
    c.format = s.format;
    c.path = ins / s.file;
    if (!s.answers.empty()) c.answers_path = ins / s.answers;
    mt::DataStats stats;
    const auto t0 = clock::now();
    std::vector<mt::Conversation> convs;
    std::vector<mt::TextSegment> segs;
    if (mt::is_unlabeled_format(s.format))
      segs = mt::read_text_segments(c, &stats);
    else
      convs = mt::read_conversations(c, &stats);
    const double read_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    std::cout << "| " << s.file << (s.answers.empty() ? "" : " + answers") << " | " << s.format << " | "
              << stats.read << " | " << stats.conversations << " | " << stats.prompts_only << " | "
              << static_cast<int64_t>(read_ms) << " |";
    for (size_t k = 0; k < toks.size(); ++k) {
      // Every conversation rendered (prompts-only ones with the generation prompt); segments encoded.
      const auto t1 = clock::now();
      int64_t total = 0, longest = 0, n = 0;
      for (const auto& conv : convs) {
        int64_t len = 0;
        if (conv.prompts_only) {
          // Multi-turn prompts-only conversations (MT-Bench): the first turn, as generation starts.
          std::vector<mt::ChatMessage> first;
          for (const auto& m : conv.messages) {
            first.push_back(m);
            if (m.role == "user") break;
          }
          len = static_cast<int64_t>(mt::render_chat(loaded[k], toks[k].templ, first, false, true).ids.size());
        } else {
          len = static_cast<int64_t>(mt::render_chat(loaded[k], toks[k].templ, conv.messages).ids.size());
        }
        total += len;
        longest = std::max(longest, len);
        ++n;
      }
      for (const auto& seg : segs) {
        const auto len = static_cast<int64_t>(loaded[k].encode(seg.text).size());
        total += len;
        longest = std::max(longest, len);
        ++n;
      }
      const double ms = std::chrono::duration<double, std::milli>(clock::now() - t1).count();
      std::cout << " " << (n ? total / n : 0) << " / " << longest << " | " << static_cast<int64_t>(ms) << " |";
    }
    std::cout << std::endl;
  }
  // The whole pipeline with the cache: first run (read + tokenize + write) and second run (mmap).
  const fs::path cache = mt::test::temp_dir("data_stats_cache");
  mt::DatasetSpec spec;
  for (const char* f : {"alpaca_gpt4_en_demo_999.json", "alpaca_eval/alpaca_eval_gpt4_1106_preview.json",
                        "alpaca_seed_tasks.jsonl"}) {
    mt::DataSourceConfig c;
    c.path = ins / f;
    spec.sources.push_back(c);
  }
  spec.tokenizer = tokenizer_path("llama3");
  spec.example.template_name = "llama3";
  spec.example.max_len = 2048;
  spec.cache_dir = cache;
  for (int run = 0; run < 2; ++run) {
    const auto t0 = clock::now();
    const auto c = mt::load_tokenized_dataset(spec, [](const std::string&) {});
    const double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    std::cout << (run ? "cache hit" : "cache build") << ": " << c.view().num_examples << " examples, "
              << c.view().num_tokens() << " tokens, " << c.stats.summary() << ", " << static_cast<int64_t>(ms)
              << " ms\n";
  }
  fs::remove_all(cache);
}
