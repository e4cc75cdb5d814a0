// Record shapes (trainer/data): TRL's prompt/completion records, plain and conversational, read as
// training pairs equal to the same pairs in alpaca / messages form (conversations and tokenized
// examples); TRL preference, unpaired-preference and stepwise records, tool turns, calls and
// definitions refused with their place; and the per-source shape report (which records became
// training conversations, which did not), logged by load_tokenized_dataset and again on a cache hit.
#include <fmt/format.h>

#include <algorithm>

#include "trainer/data/data_formats.h"
#include "trainer/data/examples.h"
#include "trainer/data/token_cache.h"
#include "tests/conversation_msgs.h"
#include "tests/shared_data.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A scratch directory removed when the test ends.
struct Scratch {
  fs::path dir = mt::test::temp_dir("data_shapes");
  ~Scratch() { mt::test::remove_tree(dir); }
  // Writes the records as JSONL, one per line.
  fs::path jsonl(const std::string& name, const std::vector<json>& records) const {
    std::string text;
    for (const auto& r : records) text += r.dump() + "\n";
    mt::test::write_file(dir / name, text);
    return dir / name;
  }
};

mt::DataSourceConfig source(const fs::path& path, const std::string& format = "auto") {
  mt::DataSourceConfig c;
  c.path = path;
  c.format = format;
  return c;
}

using mt::test::Msgs;
using mt::test::msgs;

json turn(const std::string& role, const std::string& content) { return {{"role", role}, {"content", content}}; }

// The record's keys as the report spells them.
std::string keys_of(const json& record) {
  std::string out;
  for (auto it = record.begin(); it != record.end(); ++it) out += (out.empty() ? "" : ", ") + it.key();
  return "{" + out + "}";
}

std::string trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(" \n"), e = s.find_last_not_of(" \n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The first message of `role`, "" when none.
std::string first_of(const mt::Conversation& c, const std::string& role) {
  for (const auto& m : c.messages)
    if (m.role == role) return m.content;
  return "";
}

void check_same_examples(const mt::TokenizedDataset& a, const mt::TokenizedDataset& b) {
  CHECK(a.size() == b.size());
  CHECK(a.offsets == b.offsets);
  CHECK(a.tokens == b.tokens);
  CHECK(a.masks == b.masks);
}

// Every shape's records are split exactly into its uses, and no more records are tallied than read.
void check_shape_invariants(const mt::DataStats& stats) {
  int64_t records = 0, malformed = 0;
  for (const auto& s : stats.shapes) {
    INFO(s.report());
    CHECK(s.trained + s.prompts_only + s.empty + s.malformed == s.records);
    CHECK(s.records > 0);
    CHECK(s.all_trained() == (s.report().rfind("warning: ", 0) != 0));
    records += s.records;
    malformed += s.malformed;
  }
  CHECK(records <= stats.read);
  CHECK(malformed <= stats.skipped_malformed);
}

}  // namespace

TEST_CASE("data shapes: TRL plain prompt/completion are training pairs, as the same pairs in alpaca form", "[data]") {
  Scratch s;
  const std::vector<std::array<std::string, 3>> pairs = {
      {"", "Name a colour.", "Blue."}, {"Be terse.", "2+2?", " 4"}, {"", "Say \"hi\" in Greek.", "Γεια σου"}};
  std::vector<json> trl, alpaca;
  for (const auto& [system, prompt, completion] : pairs) {
    json t = {{"prompt", prompt}, {"completion", completion}};
    json a = {{"instruction", prompt}, {"output", completion}};
    if (!system.empty()) t["system"] = a["system"] = system;
    trl.push_back(t);
    alpaca.push_back(a);
  }
  const fs::path trl_path = s.jsonl("trl.jsonl", trl);
  CHECK(mt::detect_format(trl_path) == "prompt_completion");
  mt::DataStats stats;
  const auto convs = mt::read_conversations(source(trl_path), &stats);
  const auto expected = mt::read_conversations(source(s.jsonl("alpaca.jsonl", alpaca), "alpaca"));
  REQUIRE(convs.size() == pairs.size());
  REQUIRE(expected.size() == pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    CHECK(!convs[i].prompts_only);
    CHECK(msgs(convs[i]) == msgs(expected[i]));
    CHECK(first_of(convs[i], "user") == pairs[i][1]);
    CHECK(first_of(convs[i], "assistant") == pairs[i][2]);
  }
  CHECK(stats.prompts_only == 0);
  // Renamed fields work through the config.
  std::vector<json> renamed;
  for (const auto& r : trl) renamed.push_back({{"q", r["prompt"]}, {"a", r["completion"]}});
  auto c = source(s.jsonl("renamed.jsonl", renamed), "prompt_completion");
  c.prompt_field = "q";
  c.completion_field = "a";
  const auto renamed_convs = mt::read_conversations(c);
  REQUIRE(renamed_convs.size() == pairs.size());
  CHECK(msgs(renamed_convs[1]).back() == msgs(expected[1]).back());

  const fs::path tok_path = mt::test::vocab_file("llama3");
  INFO("the LLaMA-3 tokenizer must be at " << tok_path.string());
  REQUIRE(fs::exists(tok_path));
  const mt::Tokenizer tok = mt::Tokenizer::load(tok_path);
  mt::ExampleOptions o;
  o.template_name = "llama3";
  const auto trl_examples = mt::tokenize_conversations(tok, convs, o);
  check_same_examples(trl_examples, mt::tokenize_conversations(tok, expected, o));
  // The completion is the target: every example has targets, and they decode to the completion.
  REQUIRE(trl_examples.size() == static_cast<int64_t>(pairs.size()));
  for (int64_t i = 0; i < trl_examples.size(); ++i) {
    std::vector<int64_t> target;
    const auto k = static_cast<size_t>(i);
    for (uint64_t t = trl_examples.offsets[k]; t < trl_examples.offsets[k + 1]; ++t)
      if (trl_examples.masks[t] != 0) target.push_back(trl_examples.tokens[t]);
    const std::string text = tok.decode(target);
    INFO(text);
    CHECK(text.find(trimmed(pairs[k][2])) == 0);
  }
}

TEST_CASE("data shapes: TRL conversational prompt/completion equals the messages record, errors name the turn",
          "[data]") {
  Scratch s;
  const std::vector<json> trl = {
      {{"prompt", {turn("system", "You are a poet."), turn("user", "A haiku on rain.")}},
       {"completion", {turn("assistant", "Soft rain on the roof")}}},
      {{"prompt", {turn("user", "What is 2+2?")}}, {"completion", {turn("assistant", "4")}}, {"system", "Be brief."}},
  };
  std::vector<json> messages;
  for (const auto& r : trl) {
    json m = r["prompt"];
    for (const auto& a : r["completion"]) m.push_back(a);
    json rec = {{"messages", m}};
    if (r.contains("system")) rec["system"] = r["system"];
    messages.push_back(rec);
  }
  const fs::path trl_path = s.jsonl("trl_conv.jsonl", trl);
  CHECK(mt::detect_format(trl_path) == "prompt_completion");
  const auto convs = mt::read_conversations(source(trl_path));
  const auto expected = mt::read_conversations(source(s.jsonl("messages.jsonl", messages), "messages"));
  REQUIRE(convs.size() == trl.size());
  REQUIRE(expected.size() == trl.size());
  for (size_t i = 0; i < trl.size(); ++i) CHECK(msgs(convs[i]) == msgs(expected[i]));
  CHECK(msgs(convs[1]) == Msgs{{"system", "Be brief."}, {"user", "What is 2+2?"}, {"assistant", "4"}});

  // TRL's conversational prompt-only records: the prompt's turns, prompts-only.
  const fs::path prompts = s.jsonl("prompts.jsonl", {{{"prompt", {turn("user", "Tell a joke.")}}}});
  CHECK(mt::detect_format(prompts) == "prompts");
  const auto p = mt::read_conversations(source(prompts));
  REQUIRE(p.size() == 1);
  CHECK(p[0].prompts_only);
  CHECK(msgs(p[0]) == Msgs{{"user", "Tell a joke."}});

  // Bad records: the file, the line and the turn.
  struct Bad {
    json record;
    std::vector<std::string> parts;
  };
  const std::vector<Bad> bad = {
      {{{"prompt", {turn("user", "Hi"), turn("tool", "42")}}, {"completion", {turn("assistant", "Bye")}}},
       {"2 prompt[1]", "tool"}},
      {{{"prompt", {turn("user", "Hi")}}, {"completion", {turn("user", "Hello")}}},
       {"2 completion[0]", "role 'user' in the completion"}},
      {{{"prompt", "Hi"}, {"completion", {turn("assistant", "Hello")}}},
       {"2: ", "must be both strings or both lists of messages, got a string and a list"}},
      {{{"prompt", {turn("user", "Hi")}}, {"completion", json::array()}}, {"2: ", "empty list"}},
      {{{"prompt", "Hi"}}, {"2: ", "missing field 'completion'"}},
  };
  for (const auto& b : bad) {
    INFO(b.record.dump());
    const fs::path path = s.jsonl("bad.jsonl", {trl[1], b.record});
    auto c = source(path, "prompt_completion");
    mt::test::require_error([&] { mt::read_conversations(c); }, {path.string() + ":" + b.parts[0], b.parts[1]});
    c.on_malformed = "skip";
    mt::DataStats stats;
    CHECK(mt::read_conversations(c, &stats).size() == 1);
    CHECK(stats.skipped_malformed == 1);
    check_shape_invariants(stats);
  }
}

TEST_CASE("data shapes: preference, unpaired preference and stepwise data are refused, naming the file", "[data]") {
  Scratch s;
  const std::vector<std::pair<json, std::string>> kinds = {
      {{{"prompt", "The sky is"}, {"chosen", " blue."}, {"rejected", " green."}}, "preference data"},
      {{{"chosen", {turn("user", "Sky?"), turn("assistant", "Blue.")}},
        {"rejected", {turn("user", "Sky?"), turn("assistant", "Green.")}}},
       "preference data"},  // implicit prompt
      {{{"prompt", "The sky is"}, {"completion", " green."}, {"label", false}}, "unpaired preference data"},
      {{{"prompt", "2+2?"}, {"completions", {"2+2 is", " 5"}}, {"labels", {true, false}}}, "stepwise supervision"},
  };
  for (const auto& [record, kind] : kinds) {
    INFO(record.dump());
    const fs::path path = s.jsonl("pref.jsonl", {record, record});
    // Auto-detection refuses the file; the keys seen are named.
    mt::test::require_error([&] { mt::detect_format(path); },
                            {path.string(), kind, "not supervised fine-tuning data", keys_of(record)});
    mt::test::require_error([&] { mt::read_conversations(source(path)); }, {path.string(), kind});
    // A reader named explicitly refuses each record, with its line; skipping all leaves an error naming why.
    for (const char* format : {"prompt_completion", "prompt_response", "prompts", "messages"}) {
      INFO(format);
      auto c = source(path, format);
      mt::test::require_error([&] { mt::read_conversations(c); }, {path.string() + ":1: ", kind});
      c.on_malformed = "skip";
      mt::test::require_error([&] { mt::read_conversations(c); },
                              {path.string(), "no usable records", "skipped 2 malformed", kind});
    }
  }
  // Naming the chosen side as a field trains on it on purpose.
  const fs::path path = s.jsonl("chosen.jsonl", {kinds[0].first});
  auto c = source(path, "prompt_completion");
  c.completion_field = "chosen";
  const auto convs = mt::read_conversations(c);
  REQUIRE(convs.size() == 1);
  CHECK(msgs(convs[0]) == Msgs{{"user", "The sky is"}, {"assistant", " blue."}});
}

TEST_CASE("data shapes: tool turns, tool calls and tool definitions are errors naming file and line", "[data]") {
  Scratch s;
  const json ok = {{"messages", {turn("user", "Hi"), turn("assistant", "Hello")}}};
  json call = turn("assistant", "");
  call["tool_calls"] = json::array({{{"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}}});
  const json sharegpt_tool =
      json::array({{{"from", "human"}, {"value", "Hi"}}, {{"from", "observation"}, {"value", "{}"}}});
  const std::vector<std::pair<json, std::vector<std::string>>> cases = {
      {{{"messages", {turn("user", "Weather?"), turn("tool", "{\"t\": 20}"), turn("assistant", "20 C")}}},
       {":2 messages[1]", "role 'tool' (a tool turn) is not supported", "no chat template here"}},
      {{{"conversations", sharegpt_tool}},
       {":2 conversations[1]", "role 'observation' (a tool turn)", "no chat template here"}},
      {{{"messages", {turn("user", "Weather?"), call}}}, {":2 messages[1]", "tool_calls are not supported"}},
      {{{"messages", ok["messages"]}, {"tools", {{{"type", "function"}}}}}, {":2: ", "field 'tools'"}},
      {{{"prompt", {turn("user", "Hi")}}, {"completion", {turn("tool", "{}")}}},
       {":2 completion[0]", "role 'tool' (a tool turn)"}},
  };
  for (const auto& [record, parts] : cases) {
    INFO(record.dump());
    const bool pc = record.contains("prompt");
    const fs::path path =
        s.jsonl("tools.jsonl", {pc ? json{{"prompt", "Hi"}, {"completion", "Hello"}} : ok, record});
    auto c = source(path, pc ? "prompt_completion" : "messages");
    mt::test::require_error([&] { mt::read_conversations(c); }, {path.string() + parts[0], parts[1]});
    if (parts.size() > 2) mt::test::require_error([&] { mt::read_conversations(c); }, {parts[2]});
    c.on_malformed = "skip";
    mt::DataStats stats;
    CHECK(mt::read_conversations(c, &stats).size() == 1);
    CHECK(stats.skipped_malformed == 1);
    REQUIRE(stats.skipped_messages.size() == 1);
    CHECK(stats.skipped_messages[0].find(path.string() + parts[0]) == 0);
  }
  // An empty tool list is no tool material.
  json empty_tools = ok;
  empty_tools["tools"] = json::array();
  CHECK(mt::read_conversations(source(s.jsonl("empty_tools.jsonl", {empty_tools}))).size() == 1);
}

TEST_CASE("data shapes: the per-source report counts each shape's records by use", "[data]") {
  Scratch s;
  // A prompts file (detected from its first record) whose later records carry responses: before the
  // report those responses were ignored without a word.
  const int64_t bare = 2, with_response = 3;
  std::vector<json> records;
  for (int64_t i = 0; i < bare; ++i) records.push_back({{"prompt", "Q" + std::to_string(i)}});
  for (int64_t i = 0; i < with_response; ++i)
    records.push_back({{"prompt", "Q" + std::to_string(i)}, {"response", "A" + std::to_string(i)}});
  const fs::path prompts = s.jsonl("mixed.jsonl", records);
  mt::DataStats stats;
  mt::read_conversations(source(prompts), &stats);
  check_shape_invariants(stats);
  REQUIRE(stats.shapes.size() == 2);
  CHECK(stats.shapes[0].keys == "{prompt}");
  CHECK(stats.shapes[0].records == bare);
  CHECK(stats.shapes[1].keys == "{prompt, response}");
  CHECK(stats.shapes[1].prompts_only == with_response);
  const std::string n = std::to_string(bare + with_response);
  CHECK(stats.shapes[1].report() ==
        fmt::format("warning: {}: {} of {} records have keys {{prompt, response}}: read as prompts: {} not used for "
                    "training (prompts-only: no response)",
                    prompts.string(), with_response, n, with_response));
  // The report survives the cache header's JSON.
  const auto back = mt::DataStats::from_json(stats.to_json());
  REQUIRE(back.shapes.size() == stats.shapes.size());
  for (size_t i = 0; i < back.shapes.size(); ++i) CHECK(back.shapes[i].report() == stats.shapes[i].report());

  // Every fixture, under skip: the uses of each shape add up.
  for (const auto& [format, file] : std::vector<std::pair<std::string, std::string>>{
           {"alpaca", "alpaca.json"}, {"alpaca", "bad_wrong_types.json"}, {"alpaca", "bad_truncated.json"},
           {"alpaca", "bad_not_object.jsonl"}, {"messages", "messages.jsonl"}, {"messages", "bad_role.jsonl"},
           {"mt_bench", "mt_bench.jsonl"}, {"alpaca_seed", "seed_tasks.jsonl"}, {"alpaca", "empty_examples.jsonl"}}) {
    INFO(file);
    auto c = source(mt::test::fixture("data") / file, format);
    c.on_malformed = "skip";
    mt::DataStats st;
    mt::read_conversations(c, &st);
    check_shape_invariants(st);
    if (format == "alpaca_seed") continue;  // the others give one conversation per record
    int64_t empty = 0, prompts_only = 0, trained = 0;
    for (const auto& sh : st.shapes) {
      empty += sh.empty;
      prompts_only += sh.prompts_only;
      trained += sh.trained;
    }
    CHECK(empty == st.dropped_empty);
    CHECK(prompts_only == st.prompts_only);
    CHECK(trained == st.conversations - st.prompts_only);
  }

  // Training: the used source reports without a warning, the prompts file warns, on a build and on a hit.
  const fs::path tok = mt::test::vocab_file("llama3");
  INFO("the LLaMA-3 tokenizer must be at " << tok.string());
  REQUIRE(fs::exists(tok));
  mt::DatasetSpec spec;
  spec.sources = {source(mt::test::fixture("data") / "alpaca.jsonl", "alpaca"), source(prompts)};
  spec.tokenizer = tok;
  spec.example.template_name = "llama3";
  spec.example.max_len = 128;
  spec.cache_dir = s.dir / "cache";
  mt::DataStats alpaca_stats;
  mt::read_conversations(spec.sources[0], &alpaca_stats);
  const size_t alpaca_shapes = alpaca_stats.shapes.size();
  REQUIRE(alpaca_shapes >= 1);
  for (int run = 0; run < 2; ++run) {
    std::vector<std::string> log;
    const auto cache = mt::load_tokenized_dataset(spec, [&](const std::string& m) { log.push_back(m); });
    CHECK(cache.built_now == (run == 0));
    size_t warnings = 0, used = 0;
    for (const auto& line : log) {
      if (line.rfind("data: warning: " + prompts.string() + ": ", 0) == 0) ++warnings;
      if (line.rfind("data: " + (mt::test::fixture("data") / "alpaca.jsonl").string() + ": ", 0) == 0 &&
          line.find("used for training") != std::string::npos)
        ++used;
      CHECK(line.find("warning: " + (mt::test::fixture("data") / "alpaca.jsonl").string()) == std::string::npos);
    }
    CHECK(warnings == 2);
    CHECK(used == (run == 0 ? alpaca_shapes : 0u));  // a hit repeats the warnings only
  }
}

TEST_CASE("data shapes: real Alpaca data rewritten as TRL prompt/completion gives the same examples", "[data]") {
  const fs::path alpaca = mt::test::shared_data() / "instructions" / "alpaca_gpt4_en_demo_999.json";
  INFO("the shared data must be at " << alpaca.string());
  REQUIRE(fs::exists(alpaca));
  const auto convs = mt::read_conversations(source(alpaca, "alpaca"));
  Scratch s;
  std::vector<json> plain, conversational;
  for (const auto& conv : convs) {
    json p = {{"prompt", first_of(conv, "user")}, {"completion", first_of(conv, "assistant")}};
    json c = {{"prompt", json::array()}, {"completion", {turn("assistant", first_of(conv, "assistant"))}}};
    for (const auto& m : conv.messages)
      if (m.role != "assistant") c["prompt"].push_back(turn(m.role, m.content));
    if (conv.messages[0].role == "system") p["system"] = conv.messages[0].content;
    plain.push_back(p);
    conversational.push_back(c);
  }
  const fs::path tok_path = mt::test::vocab_file("llama3");
  REQUIRE(fs::exists(tok_path));
  const mt::Tokenizer tok = mt::Tokenizer::load(tok_path);
  mt::ExampleOptions o;
  o.template_name = "llama3";
  const auto expected = mt::tokenize_conversations(tok, convs, o);
  for (const auto& [name, records] : {std::pair{"plain.jsonl", plain}, std::pair{"conv.jsonl", conversational}}) {
    INFO(name);
    mt::DataStats stats;
    const auto got = mt::read_conversations(source(s.jsonl(name, records)), &stats);
    REQUIRE(got.size() == convs.size());
    for (size_t i = 0; i < convs.size(); ++i) CHECK(msgs(got[i]) == msgs(convs[i]));
    REQUIRE(stats.shapes.size() >= 1);
    for (const auto& sh : stats.shapes) CHECK(sh.all_trained());
    check_same_examples(mt::tokenize_conversations(tok, got, o), expected);
  }
}

TEST_CASE("data shapes: a TRL multi-turn prompt is context - only the completion is trained", "[data]") {
  Scratch s;
  const json prompt = {turn("system", "Be brief."), turn("user", "Hi"), turn("assistant", "Hello there."),
                       turn("user", "And the capital of France?")};
  const json completion = {turn("assistant", "Paris.")};
  const fs::path path = s.jsonl("trl_multi.jsonl", {{{"prompt", prompt}, {"completion", completion}}});
  const auto convs = mt::read_conversations(source(path));
  REQUIRE(convs.size() == 1);
  CHECK(convs[0].context_messages == 3);  // up to the prompt's last assistant turn
  json all = prompt;
  all.push_back(completion[0]);
  const auto as_messages = mt::read_conversations(source(s.jsonl("m.jsonl", {{{"messages", all}}}), "messages"));
  REQUIRE(as_messages.size() == 1);
  CHECK(msgs(convs[0]) == msgs(as_messages[0]));
  CHECK(as_messages[0].context_messages == 0);  // the messages format trains every assistant turn

  const mt::Tokenizer llama3 = mt::Tokenizer::load(mt::test::vocab_file("llama3"));
  const mt::Tokenizer llama2 = mt::Tokenizer::load(mt::test::vocab_file("llama2"));
  const mt::Tokenizer chatml = mt::Tokenizer::load(mt::test::make_hf_dir("tokenizers/mistral/tokenizer.model", "chatml-mistral"));
  for (const auto& [tok, tmpl] : std::vector<std::pair<const mt::Tokenizer*, std::string>>{
           {&llama3, "llama3"}, {&llama2, "llama2"}, {&chatml, "chatml"}, {&llama2, "mistral"}}) {
    INFO(tmpl);
    mt::ExampleOptions o;
    o.template_name = tmpl;
    auto trl_convs = convs;
    auto msg_convs = as_messages;
    if (tmpl == "mistral") {  // no system turn in mistral's template: the same without it
      trl_convs[0].messages.erase(trl_convs[0].messages.begin());
      trl_convs[0].context_messages -= 1;
      msg_convs[0].messages.erase(msg_convs[0].messages.begin());
    }
    const auto trl = mt::tokenize_conversations(*tok, trl_convs, o);
    const auto every_turn = mt::tokenize_conversations(*tok, msg_convs, o);
    REQUIRE(trl.size() == 1);
    REQUIRE(every_turn.size() == 1);
    // The same ids; the mask is the messages format's without the context's answer: the targets are
    // exactly those after the rendering of the context messages alone.
    REQUIRE(trl.tokens == every_turn.tokens);
    const auto& m = trl_convs[0].messages;
    const mt::RenderedChat context = mt::render_chat(
        *tok, tmpl, std::vector<mt::ChatMessage>(m.begin(), m.begin() + static_cast<long>(trl_convs[0].context_messages)));
    int64_t context_targets = 0;
    for (size_t t = 0; t < trl.masks.size(); ++t) {
      if (t < context.ids.size()) {
        CHECK(trl.masks[t] == 0);
        context_targets += every_turn.masks[t] != 0;
      } else {
        CHECK(trl.masks[t] == every_turn.masks[t]);
      }
    }
    CHECK(context_targets > 0);  // the context's answer would have been trained on
    std::vector<int64_t> target;
    for (size_t t = 0; t < trl.masks.size(); ++t)
      if (trl.masks[t] != 0) target.push_back(trl.tokens[t]);
    CHECK(tok->decode(target, /*skip_special=*/true).find("Paris.") != std::string::npos);
    CHECK(tok->decode(target, true).find("Hello there.") == std::string::npos);
  }
}
