// Readers of instruction data (trainer/data/data_formats.h) on the hand-written fixtures in
// tests/fixtures/data: every format, field-name options, the unlabeled-text segmentation rule, and
// every malformed-input path (place named under "fail", counted under "skip"); then the real
// datasets in ../shared/data.
#include <algorithm>
#include <cstdlib>

#include "trainer/data/data_formats.h"
#include "tests/conversation_msgs.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;

fs::path data_fixture(const std::string& name) { return mt::test::fixture("data") / name; }

mt::DataSourceConfig source(const std::string& format, const std::string& file) {
  mt::DataSourceConfig c;
  c.format = format;
  c.path = data_fixture(file);
  return c;
}

using mt::test::Msgs;
using mt::test::msgs;

}  // namespace

TEST_CASE("data: Alpaca JSON array and JSONL read alike, input joined after a blank line", "[data]") {
  for (const char* file : {"alpaca.json", "alpaca.jsonl"}) {
    INFO(file);
    mt::DataStats stats;
    auto convs = mt::read_conversations(source("alpaca", file), &stats);
    REQUIRE(convs.size() == 3);
    CHECK(stats.read == 3);
    CHECK(stats.conversations == 3);
    CHECK(msgs(convs[0]) == Msgs{{"user", "Give three tips for staying healthy."},
                                 {"assistant", "Eat well, sleep enough, and move every day."}});
    CHECK(msgs(convs[1]) == Msgs{{"user", "Translate to French.\n\nGood morning"}, {"assistant", "Bonjour"}});
    CHECK(!convs[0].prompts_only);
  }
  // The array reader names the line where each element starts; the system field becomes a turn.
  auto convs = mt::read_conversations(source("alpaca", "alpaca.json"));
  CHECK(convs[0].where == data_fixture("alpaca.json").string() + ":2 [element 0]");
  CHECK(convs[2].where == data_fixture("alpaca.json").string() + ":12 [element 2]");
  CHECK(msgs(convs[2]) == Msgs{{"system", "You are terse."}, {"user", "Name a prime number, please."},
                               {"assistant", "Seven."}});
  // JSONL places count blank lines.
  auto lines = mt::read_conversations(source("alpaca", "alpaca.jsonl"));
  CHECK(lines[2].where == data_fixture("alpaca.jsonl").string() + ":4");
  // A default system prompt fills conversations that have none.
  auto c = source("alpaca", "alpaca.jsonl");
  c.system_prompt = "Be helpful.";
  CHECK(mt::read_conversations(c)[0].messages[0].role == "system");
}

TEST_CASE("data: messages JSONL reads OpenAI and ShareGPT roles, multi-turn and system", "[data]") {
  mt::DataStats stats;
  auto convs = mt::read_conversations(source("messages", "messages.jsonl"), &stats);
  REQUIRE(convs.size() == 4);
  CHECK(msgs(convs[0]) == Msgs{{"system", "Be brief."}, {"user", "Hi!"}, {"assistant", "Hello."},
                               {"user", "What is 2+2?"}, {"assistant", "4"}});
  CHECK(msgs(convs[1]) == Msgs{{"system", "You are a poet."}, {"user", "A haiku on rain, please."},
                               {"assistant", "Soft rain on the roof"}});
  CHECK(msgs(convs[2]) == Msgs{{"user", "Say yes."}, {"assistant", "Yes."}});  // OpenAI content parts
  CHECK(convs[3].prompts_only);
  CHECK(stats.prompts_only == 1);
}

TEST_CASE("data: prompt/response pairs with configurable field names", "[data]") {
  auto convs = mt::read_conversations(source("prompt_response", "prompt_response.jsonl"));
  REQUIRE(convs.size() == 2);
  CHECK(msgs(convs[1]) == Msgs{{"user", "Spell cat backwards."}, {"assistant", "tac"}});
  auto c = source("prompt_response", "instruction_response.jsonl");
  c.prompt_field = "instruction";
  convs = mt::read_conversations(c);
  CHECK(msgs(convs[0]) == Msgs{{"user", "Write one word for happy."}, {"assistant", "Joyful."}});
  // With the default field names the same file is missing 'prompt'.
  mt::test::require_error([&] { mt::read_conversations(source("prompt_response", "instruction_response.jsonl")); },
                          {"instruction_response.jsonl:1", "missing field 'prompt'"});
}

TEST_CASE("data: MT-Bench questions are prompts-only unless an answers file is joined", "[data]") {
  mt::DataStats stats;
  auto convs = mt::read_conversations(source("mt_bench", "mt_bench.jsonl"), &stats);
  REQUIRE(convs.size() == 2);
  CHECK(convs[0].prompts_only);
  CHECK(msgs(convs[0]) == Msgs{{"user", "Write a two-line poem."}, {"user", "Now make it rhyme."}});
  CHECK(stats.prompts_only == 2);
  auto c = source("mt_bench", "mt_bench.jsonl");
  c.answers_path = data_fixture("mt_bench_answers.jsonl");
  convs = mt::read_conversations(c);
  CHECK(convs[0].prompts_only);
  CHECK(!convs[1].prompts_only);
  CHECK(msgs(convs[1]) == Msgs{{"user", "You overtake the second runner. What place are you in?"},
                               {"assistant", "Second place."},
                               {"user", "And if you overtake the last?"},
                               {"assistant", "That is impossible: you cannot overtake the last runner."}});
}

TEST_CASE("data: Alpaca seed tasks give one conversation per instance, IFEval prompts are prompts-only", "[data]") {
  mt::DataStats stats;
  auto convs = mt::read_conversations(source("alpaca_seed", "seed_tasks.jsonl"), &stats);
  REQUIRE(convs.size() == 3);
  CHECK(stats.read == 2);
  CHECK(msgs(convs[1]) == Msgs{{"user", "Give the antonym.\n\nfast"}, {"assistant", "slow"}});
  CHECK(convs[1].where == data_fixture("seed_tasks.jsonl").string() + ":1 instance 1");
  CHECK(msgs(convs[2])[0].second == "Tell a short joke.");

  convs = mt::read_conversations(source("prompts", "prompts.jsonl"));
  REQUIRE(convs.size() == 2);
  CHECK(convs[0].prompts_only);
  CHECK(msgs(convs[1]) == Msgs{{"user", "List three fruits in JSON."}});
}

TEST_CASE("data: the format is detected from the first record", "[data]") {
  CHECK(mt::detect_format(data_fixture("alpaca.json")) == "alpaca");
  CHECK(mt::detect_format(data_fixture("alpaca.jsonl")) == "alpaca");
  CHECK(mt::detect_format(data_fixture("messages.jsonl")) == "messages");
  CHECK(mt::detect_format(data_fixture("prompt_response.jsonl")) == "prompt_response");
  CHECK(mt::detect_format(data_fixture("instruction_response.jsonl")) == "prompt_response");
  CHECK(mt::detect_format(data_fixture("mt_bench.jsonl")) == "mt_bench");
  CHECK(mt::detect_format(data_fixture("seed_tasks.jsonl")) == "alpaca_seed");
  CHECK(mt::detect_format(data_fixture("prompts.jsonl")) == "prompts");
  CHECK(mt::detect_format(data_fixture("text.jsonl")) == "text_jsonl");
  CHECK(mt::detect_format(data_fixture("plain.txt")) == "text");
  auto c = source("auto", "seed_tasks.jsonl");
  CHECK(mt::read_conversations(c).size() == 3);
  c.format = "alpacca";
  mt::test::require_error([&] { mt::read_conversations(c); }, {"seed_tasks.jsonl", "unknown data format \"alpacca\""});
  c.format = "text";
  mt::test::require_error([&] { mt::read_conversations(c); }, {"unlabeled text"});
}

TEST_CASE("data: unlabeled text from a JSONL text field and from a plain text file", "[data]") {
  auto c = source("text_jsonl", "text.jsonl");
  c.min_chars = 20;
  mt::DataStats stats;
  auto segs = mt::read_text_segments(c, &stats);
  REQUIRE(segs.size() == 1);
  CHECK(stats.read == 2);
  CHECK(stats.dropped_short == 1);  // "Too short."
  CHECK(segs[0].where == data_fixture("text.jsonl").string() + ":1");

  c = source("text", "plain.txt");
  c.min_chars = 1;
  c.max_chars = 60;
  stats = {};
  segs = mt::read_text_segments(c, &stats);
  CHECK(stats.read == 3);  // paragraphs
  REQUIRE(segs.size() == 3);
  CHECK(segs[0].text == "First paragraph, line one.\nFirst paragraph, line two.");
  CHECK(segs[1].text == "Second paragraph is a single line of text.");
  CHECK(segs[2].where == data_fixture("plain.txt").string() + ":7");
  c.max_chars = 200;  // everything fits one segment: paragraphs merge with a blank line
  segs = mt::read_text_segments(c);
  REQUIRE(segs.size() == 1);
  CHECK(segs[0].text ==
        "First paragraph, line one.\nFirst paragraph, line two.\n\nSecond paragraph is a single line of text.\n\n"
        "Third paragraph after two blank lines.");
}

TEST_CASE("data: text segmentation by paragraphs, then lines, then a hard cut, min drops, chars not bytes", "[data]") {
  // Paragraphs merge greedily while they fit.
  CHECK(mt::split_text_segments("aaaa\n\nbbbb\n\ncccc", 0, 10) == std::vector<std::string>{"aaaa\n\nbbbb", "cccc"});
  // A paragraph over max_chars splits into lines, merged while they fit.
  CHECK(mt::split_text_segments("aaaa\nbbbb\ncccc\n\ndd", 0, 9) ==
        std::vector<std::string>{"aaaa\nbbbb", "cccc", "dd"});
  // A line over max_chars is cut at the last space in the window's second half...
  CHECK(mt::split_text_segments("one two three four five", 0, 10) ==
        std::vector<std::string>{"one two", "three four", "five"});
  // ...or at max_chars when there is none.
  CHECK(mt::split_text_segments("abcdefghijklmnopqrstuvwxy", 0, 10) ==
        std::vector<std::string>{"abcdefghij", "klmnopqrst", "uvwxy"});
  // Segments under min_chars are dropped and counted.
  int64_t dropped = 0;
  CHECK(mt::split_text_segments("long enough paragraph\n\nshort", 10, 22, &dropped) ==
        std::vector<std::string>{"long enough paragraph"});
  CHECK(dropped == 1);
  // Characters are code points: 6 two-byte letters fit max_chars = 6 and are never cut mid-character.
  CHECK(mt::split_text_segments("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 0, 6).size() == 1);
  auto cut = mt::split_text_segments("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 0, 4);
  REQUIRE(cut.size() == 2);
  CHECK(cut[0] == "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
  // CRLF is read as LF; blank lines with spaces separate paragraphs.
  CHECK(mt::split_text_segments("a\r\nb\r\n  \r\nc", 0, 3) == std::vector<std::string>{"a\nb", "c"});
  mt::test::require_error([] { mt::split_text_segments("x", 5, 2); }, {"min_chars <= max_chars"});
}

TEST_CASE("data: malformed records name file and place under fail, and are counted under skip", "[data]") {
  struct Case {
    const char* format;
    const char* file;
    std::vector<std::string> fail_parts;  // in the first error
    int64_t skipped, kept;
  };
  const std::vector<Case> cases = {
      {"alpaca", "bad_truncated.json", {"bad_truncated.json:3 [element 1]", "ends inside this element"}, 1, 1},
      {"alpaca", "bad_truncated.jsonl", {"bad_truncated.jsonl:3", "invalid JSON"}, 1, 2},
      {"alpaca", "bad_wrong_types.jsonl", {"bad_wrong_types.jsonl:2", "field 'output' must be a string, got a number"},
       2, 2},
      {"alpaca", "bad_wrong_types.json", {"bad_wrong_types.json:3 [element 1]", "field 'output' must be a string"}, 2,
       2},
      {"alpaca", "bad_missing_field.jsonl", {"bad_missing_field.jsonl:2", "missing field 'output'"}, 1, 2},
      {"alpaca", "bad_invalid_utf8.jsonl", {"bad_invalid_utf8.jsonl:2", "invalid JSON", "UTF-8"}, 1, 2},
      {"alpaca", "bad_huge_line.jsonl", {"bad_huge_line.jsonl:2", "longer than max_line_bytes (4096 bytes)"}, 1, 2},
      {"messages", "bad_role.jsonl", {"bad_role.jsonl:1 messages[1]", "role 'tool' (a tool turn) is not supported"},
       1, 1},
      {"alpaca", "bad_not_object.jsonl", {"bad_not_object.jsonl:2", "expected a JSON object, got a list"}, 2, 1},
  };
  for (const auto& k : cases) {
    INFO(k.file);
    auto c = source(k.format, k.file);
    c.max_line_bytes = 4096;
    mt::test::require_error([&] { mt::read_conversations(c); },
                            std::initializer_list<std::string>{k.fail_parts[0], k.fail_parts[1]});
    if (k.fail_parts.size() > 2)
      mt::test::require_error([&] { mt::read_conversations(c); }, {k.fail_parts[2]});
    c.on_malformed = "skip";
    mt::DataStats stats;
    auto convs = mt::read_conversations(c, &stats);
    CHECK(stats.skipped_malformed == k.skipped);
    CHECK(static_cast<int64_t>(convs.size()) == k.kept);
    REQUIRE(!stats.skipped_messages.empty());
    CHECK(stats.skipped_messages[0].find(k.fail_parts[0]) != std::string::npos);
  }
  // The element after a bad one in a JSON array is still found at its own line.
  auto c = source("alpaca", "bad_wrong_types.json");
  c.on_malformed = "skip";
  mt::DataStats stats;
  auto convs = mt::read_conversations(c, &stats);
  REQUIRE(convs.size() == 2);
  CHECK(convs[1].where == data_fixture("bad_wrong_types.json").string() + ":8 [element 3]");
  CHECK(stats.skipped_messages[1].find("bad_wrong_types.json:7 [element 2]: expected a JSON object") !=
        std::string::npos);
  c.on_malformed = "ignore";
  mt::test::require_error([&] { mt::read_conversations(c); }, {"on_malformed must be \"fail\" or \"skip\""});
}

TEST_CASE("data: empty, missing and directory inputs are errors under either policy", "[data]") {
  for (const char* policy : {"fail", "skip"}) {
    INFO(policy);
    auto c = source("alpaca", "bad_empty.jsonl");
    c.on_malformed = policy;
    mt::test::require_error([&] { mt::read_conversations(c); }, {"bad_empty.jsonl", "empty file (0 bytes)"});
    c.path = data_fixture("no_such_file.jsonl");
    mt::test::require_error([&] { mt::read_conversations(c); }, {"no_such_file.jsonl", "no such file"});
    c.path = mt::test::fixture("data");
    mt::test::require_error([&] { mt::read_conversations(c); }, {"is a directory"});
    c.format = "text";
    mt::test::require_error([&] { mt::read_text_segments(c); }, {"is a directory"});
  }
  // A file whose every record is bad leaves nothing: an error naming the counts.
  const fs::path dir = mt::test::temp_dir("data_formats");
  mt::test::write_file(dir / "all_bad.jsonl", "{\"instruction\": 1}\n\n   \n{\"output\": \"x\"}\n");
  mt::DataSourceConfig c;
  c.format = "alpaca";
  c.path = dir / "all_bad.jsonl";
  c.on_malformed = "skip";
  mt::test::require_error([&] { mt::read_conversations(c); }, {"all_bad.jsonl", "no usable records", "skipped 2"});
  mt::test::write_file(dir / "blank.jsonl", "\n  \n\n");
  c.path = dir / "blank.jsonl";
  mt::test::require_error([&] { mt::read_conversations(c); }, {"blank.jsonl", "no records"});
  mt::test::write_file(dir / "empty_array.json", " [ ] ");
  c.path = dir / "empty_array.json";
  mt::test::require_error([&] { mt::read_conversations(c); }, {"empty_array.json", "no usable records"});
  // A UTF-8 byte-order mark is skipped, before JSONL or an array.
  c.on_malformed = "fail";
  mt::test::write_file(dir / "bom.jsonl", "\xEF\xBB\xBF{\"instruction\": \"a\", \"output\": \"b\"}\n");
  c.path = dir / "bom.jsonl";
  CHECK(mt::read_conversations(c).size() == 1);
  mt::test::write_file(dir / "bom.json", "\xEF\xBB\xBF [{\"instruction\": \"a\", \"output\": \"b\"}]");
  c.path = dir / "bom.json";
  CHECK(mt::read_conversations(c).size() == 1);
  c.on_malformed = "skip";
  mt::test::write_file(dir / "trailing.json", "[{\"instruction\": \"a\", \"output\": \"b\"}] x");
  c.path = dir / "trailing.json";
  mt::test::require_error([&] { mt::read_conversations(c); }, {"trailing.json", "after the closing ']'"});
  mt::test::write_file(dir / "unclosed.json", "[{\"instruction\": \"a\", \"output\": \"b\"},\n");
  c.path = dir / "unclosed.json";
  c.on_malformed = "fail";
  mt::test::require_error([&] { mt::read_conversations(c); }, {"unclosed.json", "closing ']'"});
  c.max_file_bytes = 10;
  mt::test::require_error([&] { mt::read_conversations(c); }, {"unclosed.json", "over max_file_bytes"});
  fs::remove_all(dir);
}

TEST_CASE("data: plain text with invalid UTF-8 or an over-long line", "[data]") {
  auto c = source("text", "bad_invalid_utf8.txt");
  c.min_chars = 1;
  mt::test::require_error([&] { mt::read_text_segments(c); }, {"bad_invalid_utf8.txt:3", "invalid UTF-8 at byte 17"});
  c.on_malformed = "skip";
  mt::DataStats stats;
  auto segs = mt::read_text_segments(c, &stats);
  CHECK(stats.skipped_malformed == 1);
  REQUIRE(segs.size() == 1);
  CHECK(segs[0].text == "Good line one of the text.\nGood line two of the text.\nGood line four of the text.");
  c.on_malformed = "fail";
  c.max_line_bytes = 20;
  mt::test::require_error([&] { mt::read_text_segments(c); }, {"bad_invalid_utf8.txt:1", "longer than max_line_bytes"});

  CHECK(mt::find_invalid_utf8("plain ascii") == -1);
  CHECK(mt::find_invalid_utf8("\xe2\x82\xac ok \xf0\x9f\x98\x80") == -1);
  CHECK(mt::find_invalid_utf8("ab\xc0\xaf") == 2);      // overlong
  CHECK(mt::find_invalid_utf8("\xed\xa0\x80") == 0);    // surrogate
  CHECK(mt::find_invalid_utf8("x\xf4\x90\x80\x80") == 1);  // above U+10FFFF
  CHECK(mt::find_invalid_utf8("\xe2\x82") == 0);        // truncated
}

TEST_CASE("data: empty conversations are dropped and counted", "[data]") {
  mt::DataStats stats;
  auto convs = mt::read_conversations(source("alpaca", "empty_examples.jsonl"), &stats);
  CHECK(convs.size() == 1);
  CHECK(stats.read == 3);
  CHECK(stats.dropped_empty == 2);
  CHECK(stats.summary().find("dropped 2 empty") != std::string::npos);
  auto j = stats.to_json();
  CHECK(mt::DataStats::from_json(j).to_json() == j);
}

TEST_CASE("data: every shared instruction and unlabeled dataset reads with its known counts", "[data]") {
  const fs::path ins = mt::test::shared_data() / "instructions";
  INFO("the shared datasets must be at " << ins.string() << " (../shared beside the clone, or MT_SHARED_DIR)");
  REQUIRE(fs::exists(ins));
  struct Case {
    std::string format, file;
    int64_t read, conversations, prompts_only, dropped_empty;
  };
  const std::vector<Case> cases = {
      {"alpaca", "alpaca_gpt4_en_demo_999.json", 999, 999, 0, 0},
      // Two text_davinci_003 outputs are empty strings (elements 247 and 504).
      {"alpaca", "alpaca_eval/alpaca_eval_text_davinci_003.json", 805, 803, 0, 2},
      {"alpaca", "alpaca_eval/alpaca_eval_gpt4_1106_preview.json", 805, 805, 0, 0},
      {"alpaca_seed", "alpaca_seed_tasks.jsonl", 175, 175, 0, 0},  // one instance per task in this file
      {"prompts", "ifeval_input_data.jsonl", 541, 541, 541, 0},
      {"mt_bench", "mt_bench/question.jsonl", 80, 80, 80, 0},
      {"mt_bench", "vicuna_bench_question.jsonl", 80, 80, 80, 0},
  };
  for (const auto& k : cases) {
    INFO(k.file);
    mt::DataSourceConfig c;
    c.format = k.format;
    c.path = ins / k.file;
    CHECK(mt::detect_format(c.path) == k.format);
    mt::DataStats stats;
    auto convs = mt::read_conversations(c, &stats);
    CHECK(stats.skipped_malformed == 0);
    CHECK(stats.read == k.read);
    CHECK(static_cast<int64_t>(convs.size()) == k.conversations);
    CHECK(stats.prompts_only == k.prompts_only);
    CHECK(stats.dropped_empty == k.dropped_empty);
  }
  // MT-Bench with the GPT-4 reference answers joined: 30 full two-turn conversations.
  mt::DataSourceConfig c;
  c.format = "mt_bench";
  c.path = ins / "mt_bench" / "question.jsonl";
  c.answers_path = ins / "mt_bench" / "reference_answer_gpt-4.jsonl";
  mt::DataStats stats;
  auto convs = mt::read_conversations(c, &stats);
  CHECK(convs.size() == 80);
  CHECK(stats.prompts_only == 50);
  for (const char* file : {"tinyshakespeare.txt", "wiki_demo.txt"}) {
    INFO(file);
    mt::DataSourceConfig t;
    t.format = "text";
    t.path = mt::test::shared_data() / "unlabeled" / file;
    mt::DataStats ts;
    auto segs = mt::read_text_segments(t, &ts);
    CHECK(segs.size() > 100);
    bool in_range = true;
    for (const auto& s : segs) {
      const int64_t chars = std::count_if(s.text.begin(), s.text.end(), [](char ch) {
        return (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
      });
      in_range = in_range && chars >= t.min_chars && chars <= t.max_chars;
    }
    CHECK(in_range);
  }
}
