// No failure exits 0 (issue 19): every command's output is checked (a write to /dev/full or a closed
// stdout exits 1 with the reason), a closed pipe ends quietly by SIGPIPE unless SIGPIPE is ignored,
// bad decoding settings are refused where they come from (a flag: exit 2; generation_config.json:
// exit 1 naming the key), an over-long prompt names its line, and an empty score target is an error.
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tests/test_util.h"
#include "trainer/cli/output.h"

namespace fs = std::filesystem;
using mt::test::quoted;

namespace {

// `maintune ARGS` with stdout sent to `redirect` (e.g. ">/dev/full", ">&-"); stderr is captured.
mt::test::CommandResult run_redirected(const std::string& args, const std::string& redirect) {
  return mt::test::run_command("{ '" + std::string(MT_MAINTUNE_EXE) + "' " + args + " " + redirect + "; }");
}

std::string strerror_text(int err) { return std::strerror(err); }

}  // namespace

TEST_CASE("cli output: every command's failed write exits 1 with the reason, a good one exits 0", "[cli][output]") {
  const mt::test::TempDir dir("cli_out");
  const fs::path model = mt::test::fixture("qwen2");
  mt::test::write_file(dir / "prompts.jsonl", "{\"prompt_ids\": [1, 2, 3]}\n{\"prompt_ids\": [4]}\n");
  mt::test::write_file(dir / "pairs.jsonl", "{\"prompt_ids\": [1, 2], \"target_ids\": [3, 4]}\n");
  mt::test::write_file(dir / "texts.jsonl", "{\"text\": \"hello world\"}\n");
  const std::string m = " --model " + quoted(model) + " --device cpu";
  const std::vector<std::string> commands = {
      "generate" + m + " --data " + quoted(dir / "prompts.jsonl") + " --max-new-tokens 3",
      "score" + m + " --data " + quoted(dir / "pairs.jsonl"),
      "tokenize --tokenizer " + quoted(mt::test::tokenizer_fixture("tiny_bpe") / "tokenizer.json") + " --data " +
          quoted(dir / "texts.jsonl"),
      "config --schema",
      "--help",
      "--version",
      "help",
      "help score",
      "generate --help",
  };
  for (const auto& cmd : commands) {
    INFO(cmd);
    const auto ok = run_redirected(cmd, ">/dev/null");
    INFO(ok.output);
    CHECK(ok.exit_code == 0);
    const auto full = run_redirected(cmd, ">/dev/full");
    INFO(full.output);
    CHECK(full.exit_code == 1);
    CHECK(full.output.find("maintune: error: cannot write output: " + strerror_text(ENOSPC)) != std::string::npos);
    const auto closed = run_redirected(cmd, ">&-");
    INFO(closed.output);
    CHECK(closed.exit_code == 1);
    CHECK(closed.output.find("maintune: error: cannot write output: " + strerror_text(EBADF)) != std::string::npos);
  }
}

TEST_CASE("cli output: a JSONL line is checked when written, buffered text at the end", "[cli][output]") {
  // The line-by-line check is what stops a long generate at its first unwritable line.
  std::FILE* full = std::fopen("/dev/full", "w");
  REQUIRE(full != nullptr);
  mt::cli::CheckedOutput line_out(full);
  mt::test::require_error([&] { line_out.write_line("{\"a\": 1}"); }, {"cannot write output: " + strerror_text(ENOSPC)});
  std::fclose(full);

  full = std::fopen("/dev/full", "w");
  REQUIRE(full != nullptr);
  mt::cli::CheckedOutput text_out(full);
  text_out.write("usage: ...\n");  // fits the buffer: nothing written yet
  mt::test::require_error([&] { text_out.finish(); }, {"cannot write output: " + strerror_text(ENOSPC)});
  std::fclose(full);

  const mt::test::TempDir dir("cli_out_ok");
  std::FILE* file = std::fopen((dir / "out.jsonl").c_str(), "w");
  REQUIRE(file != nullptr);
  mt::cli::CheckedOutput good(file);
  good.write_line("{\"a\": 1}");
  good.write("x");
  good.finish();
  std::fclose(file);
  CHECK(mt::test::read_file(dir / "out.jsonl") == "{\"a\": 1}\nx");
}

TEST_CASE("cli output: a closed pipe ends quietly by SIGPIPE, or exits 1 where SIGPIPE is ignored", "[cli][output]") {
  const mt::test::TempDir dir("cli_pipe");
  // Far more output than a pipe holds, so the command is still writing when `head` is gone.
  std::string data;
  for (int i = 0; i < 20000; ++i) data += "{\"text\": \"line number " + std::to_string(i) + " of many\"}\n";
  mt::test::write_file(dir / "texts.jsonl", data);
  const std::string tokenize = "'" + std::string(MT_MAINTUNE_EXE) + "' tokenize --tokenizer " +
                               quoted(mt::test::tokenizer_fixture("tiny_bpe") / "tokenizer.json") + " --data " +
                               quoted(dir / "texts.jsonl");
  auto r = mt::test::run_command("{ ( " + tokenize + "; echo \"rc=$?\" >&2 ) | head -n 1; }");
  INFO(r.output);
  CHECK(r.output.rfind("{\"ids\": [", 0) == 0);  // head's one line came first
  CHECK(r.output.find("rc=141") != std::string::npos);  // 128 + SIGPIPE: not 0, and no message
  CHECK(r.output.find("maintune: error") == std::string::npos);
  r = mt::test::run_command("{ ( trap '' PIPE; " + tokenize + "; echo \"rc=$?\" >&2 ) | head -n 1; }");
  INFO(r.output);
  CHECK(r.output.find("rc=1\n") != std::string::npos);
  CHECK(r.output.find("maintune: error: cannot write output: " + strerror_text(EPIPE)) != std::string::npos);
}

TEST_CASE("cli sampling: a bad decoding flag is misuse (exit 2) naming the flag, good edge values run",
          "[cli][sampling][bad-input]") {
  const mt::test::TempDir dir("cli_sampling");
  mt::test::write_file(dir / "prompts.jsonl", "{\"prompt_ids\": [1, 2, 3]}\n");
  const std::string base = "generate --model " + quoted(mt::test::fixture("qwen2")) + " --device cpu --data " +
                           quoted(dir / "prompts.jsonl") + " --max-new-tokens 2";
  struct Case {
    std::string flags, flag;
  };
  const std::vector<Case> bad = {
      {"--temperature -1", "--temperature"}, {"--temperature nan", "--temperature"},
      {"--temperature 1e-300", "--temperature"}, {"--temperature inf", "--temperature"},
      {"--top-p 0", "--top-p"}, {"--top-p 1.5", "--top-p"}, {"--top-p nan", "--top-p"},
      {"--top-k -1", "--top-k"}, {"--max-new-tokens -5", "--max-new-tokens"},
      {"--max-new-tokens 9223372036854775807", "--max-new-tokens"},
  };
  for (const auto& c : bad) {
    for (const std::string sample : {" --sample", ""}) {  // a bad flag is bad whether or not it is used
      INFO(c.flags << sample);
      const auto r = mt::test::run_maintune(base + " " + c.flags + sample);
      INFO(r.output);
      CHECK(r.exit_code == 2);
      CHECK(r.output.find("maintune generate: " + c.flag + " must be") != std::string::npos);
    }
  }
  // The edges of each range are accepted: top-p 1, the smallest temperature, top-k 0, the longest
  // generation that fits (256 positions - 3 prompt tokens).
  for (const std::string flags : {"--sample --top-p 1 --temperature 1e-5 --top-k 0", "--sample --top-p 0.01 --top-k 1",
                                  "--max-new-tokens 253 --stop-ids none"}) {
    INFO(flags);
    const auto r = mt::test::run_maintune(base + " " + flags);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(mt::test::json_lines(r.output).size() == 1);
  }
}

TEST_CASE("cli sampling: bad generation_config.json values name the file and key and exit 1", "[cli][sampling][bad-input]") {
  const mt::test::TempDir dir("cli_gencfg");
  const fs::path model = dir / "model";
  mt::test::copy_files(mt::test::fixture("qwen2"), model);
  mt::test::write_file(dir / "prompts.jsonl", "{\"prompt_ids\": [1, 2, 3]}\n");
  const std::string base = "generate --model " + quoted(model) + " --device cpu --data " + quoted(dir / "prompts.jsonl");
  const std::string file = (model / "generation_config.json").string();
  struct Case {
    nlohmann::json config;
    std::string flags, expect, flag;
  };
  const std::vector<Case> cases = {
      {{{"top_p", 7}}, "--sample", file + ": 'top_p' must be in (0, 1]", "--top-p"},
      {{{"temperature", -1}}, "--sample", file + ": 'temperature' must be a finite number >=", "--temperature"},
      {{{"top_k", -3}}, "--sample", file + ": 'top_k' must be >= 0", "--top-k"},
      {{{"max_new_tokens", -5}}, "", file + ": 'max_new_tokens' must be >= 0", "--max-new-tokens"},
      {{{"max_new_tokens", 1e6}}, "", file + ": 'max_new_tokens' must be below the model's max_position_embeddings 256",
       "--max-new-tokens"},
      {{{"top_k", 2.5}}, "", file + ": field 'top_k' must be an integer, got 2.5", "--top-k"},
  };
  for (const auto& c : cases) {
    INFO(c.config.dump() << " " << c.flags);
    mt::test::write_file(model / "generation_config.json", c.config.dump());
    const auto r = mt::test::run_maintune(base + " " + c.flags);
    INFO(r.output);
    CHECK(r.exit_code == 1);
    CHECK(r.output.find("maintune: error: " + c.expect) != std::string::npos);
    CHECK(r.output.find(c.flag) == std::string::npos);  // the flag was not given: it is not blamed
  }
  // A flag overrides the file's bad value, and greedy decoding ignores the sampling keys (as
  // transformers does); max_new_tokens from the file is used and bounded per line.
  mt::test::write_file(model / "generation_config.json", nlohmann::json{{"top_p", 7}, {"temperature", -1}}.dump());
  auto r = mt::test::run_maintune(base + " --sample --top-p 0.9 --temperature 0.7 --max-new-tokens 2");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  r = mt::test::run_maintune(base + " --max-new-tokens 2");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  mt::test::write_file(model / "generation_config.json", nlohmann::json{{"max_new_tokens", 254}}.dump());
  r = mt::test::run_maintune(base);
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("prompts.jsonl:1: the prompt's 3 tokens + max_new_tokens 254 (" + file +
                      ": 'max_new_tokens') exceed max_position_embeddings 256: at most 253 new tokens fit") !=
        std::string::npos);
}

TEST_CASE("cli: an over-long generate prompt names its line, and an empty score target is an error", "[cli][bad-input]") {
  const mt::test::TempDir dir("cli_long");
  const fs::path model = mt::test::fixture("qwen2");  // max_position_embeddings 256
  const std::vector<int64_t> long_prompt(250, 5);
  mt::test::write_file(dir / "prompts.jsonl", "{\"prompt_ids\": [1]}\n\n" +
                                                  nlohmann::json{{"prompt_ids", long_prompt}}.dump() + "\n");
  mt::test::write_file(dir / "prompts.json", nlohmann::json::array({{{"prompt_ids", {1}}}, {{"prompt_ids", long_prompt}}}).dump());
  const std::string gen = "generate --model " + quoted(model) + " --device cpu --stop-ids none --data ";
  auto r = mt::test::run_maintune(gen + quoted(dir / "prompts.jsonl") + " --max-new-tokens 10");
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("prompts.jsonl:3: the prompt's 250 tokens + max_new_tokens 10 (--max-new-tokens) exceed "
                      "max_position_embeddings 256: at most 6 new tokens fit") != std::string::npos);
  r = mt::test::run_maintune(gen + quoted(dir / "prompts.json") + " --max-new-tokens 10");
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("prompts.json[1]: the prompt's 250 tokens") != std::string::npos);
  // Exactly filling the positions is fine: the bound is not off by one.
  r = mt::test::run_maintune(gen + quoted(dir / "prompts.jsonl") + " --max-new-tokens 6");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto lines = mt::test::json_lines(r.output);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["generated_ids"].size() == 6);

  mt::test::write_file(dir / "pairs.jsonl",
                       "{\"prompt_ids\": [1], \"target_ids\": [2]}\n{\"prompt_ids\": [1, 2], \"target_ids\": []}\n");
  r = mt::test::run_maintune("score --model " + quoted(model) + " --device cpu --data " + quoted(dir / "pairs.jsonl"));
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("pairs.jsonl:2: the target is empty (no tokens): nothing to score") != std::string::npos);
  CHECK(r.output.find("nll_sum") == std::string::npos);  // nothing printed for the good line either
}
