// The maintune binary end to end: `generate` and `score` on a fixture model give transformers'
// results, and bad command lines and bad inputs exit non-zero with a message naming the place;
// --version, `help CMD`, the shared --device, bare key=value overrides.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <regex>
#include <sstream>

#include "models/safetensors.h"
#include "tests/test_util.h"
#include "trainer/cli/args.h"

namespace fs = std::filesystem;


TEST_CASE("cli: generate prints transformers' greedy continuations, one line per prompt", "[cli]") {
  const auto model = mt::test::fixture("mistral");
  const auto g = nlohmann::json::parse(mt::test::read_file(model / "expected_generate.json"));
  auto dir = mt::test::temp_dir("cli_gen");
  std::string data;
  for (const auto& p : g["prompts"]) data += nlohmann::json{{"prompt_ids", p}}.dump() + "\n\n";  // blank lines ok
  mt::test::write_file(dir / "prompts.jsonl", data);
  auto r = mt::test::run_maintune("generate --model " + mt::test::quoted(model) + " --data " + mt::test::quoted(dir / "prompts.jsonl") +
                                  " --max-new-tokens 10 --stop-ids none --batch-size 2 --device cpu");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  auto lines = mt::test::json_lines(r.output);
  REQUIRE(lines.size() == g["prompts"].size());
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(lines[i]["generated_ids"] == g["greedy"][i]);
    CHECK(lines[i]["finish_reason"] == "length");
  }
  fs::remove_all(dir);
}

TEST_CASE("cli: generate and score read JSON arrays and stdin as JSONL, and keep each item's id", "[cli]") {
  const auto model = mt::test::fixture("mistral");
  const auto g = nlohmann::json::parse(mt::test::read_file(model / "expected_generate.json"));
  auto dir = mt::test::temp_dir("cli_inputs");
  // The same prompts as JSONL (with ids of each kind) and as one JSON array of objects.
  nlohmann::json array = nlohmann::json::array();
  std::string jsonl;
  const char* id_keys[] = {"id", "key", "question_id"};
  for (size_t i = 0; i < g["prompts"].size(); ++i) {
    nlohmann::json rec = {{"prompt_ids", g["prompts"][i]}};
    rec[id_keys[i % 3]] = i % 2 ? nlohmann::json(static_cast<int64_t>(100 + i)) : nlohmann::json("q" + std::to_string(i));
    array.push_back(rec);
    jsonl += rec.dump() + "\n";
  }
  mt::test::write_file(dir / "prompts.jsonl", jsonl);
  mt::test::write_file(dir / "prompts.json", "  \n" + array.dump(2));
  const std::string opts = " --max-new-tokens 4 --stop-ids none --device cpu";
  const std::string gen = "'" + std::string(MT_MAINTUNE_EXE) + "' generate --model " + mt::test::quoted(model) + opts;
  const auto from_file = mt::test::run_command(gen + " --data " + mt::test::quoted(dir / "prompts.json"));
  const auto from_stdin = mt::test::run_command(gen + " --data - < " + mt::test::quoted(dir / "prompts.jsonl"));
  INFO(from_file.output << from_stdin.output);
  REQUIRE(from_file.exit_code == 0);
  REQUIRE(from_stdin.exit_code == 0);
  const auto a = mt::test::json_lines(from_file.output), b = mt::test::json_lines(from_stdin.output);
  REQUIRE(a.size() == array.size());
  REQUIRE(b.size() == array.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("prompt " << i);
    CHECK(a[i] == b[i]);
    CHECK(a[i]["generated_ids"] == nlohmann::json(std::vector<int64_t>(g["greedy"][i].begin(), g["greedy"][i].begin() + 4)));
    const char* key = id_keys[i % 3];
    CHECK(a[i][key] == array[i][key]);
  }
  // score keeps the id too.
  mt::test::write_file(dir / "pairs.json", nlohmann::json::array({{{"question_id", 7}, {"prompt_ids", {1, 2}}, {"target_ids", {3}}}}).dump());
  const auto sc = mt::test::run_maintune("score --model " + mt::test::quoted(model) + " --device cpu --data " +
                                         mt::test::quoted(dir / "pairs.json"));
  INFO(sc.output);
  REQUIRE(sc.exit_code == 0);
  CHECK(mt::test::json_lines(sc.output).at(0)["question_id"] == 7);
  // Bad input names the place: an array item that is no object, an array that is not JSON, no stdin.
  mt::test::write_file(dir / "bad.json", "[{\"prompt_ids\": [1]}, 3]");
  auto bad = mt::test::run_command(gen + " --data " + mt::test::quoted(dir / "bad.json") + " 2>&1");
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find((dir / "bad.json").string() + "[1]: expected a JSON object") != std::string::npos);
  mt::test::write_file(dir / "cut.json", "[{\"prompt_ids\": [1]}, ");
  bad = mt::test::run_command(gen + " --data " + mt::test::quoted(dir / "cut.json") + " 2>&1");
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find((dir / "cut.json").string() + ": invalid JSON") != std::string::npos);
  bad = mt::test::run_command(gen + " --data - < /dev/null 2>&1");
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find("stdin: no input") != std::string::npos);
  bad = mt::test::run_command("printf '{\"prompt_ids\": [1]}\\nnot json\\n' | " + gen + " --data - 2>&1");
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find("stdin:2: invalid JSON") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("cli: score prints the NLL of the targets", "[cli]") {
  const auto model = mt::test::fixture("qwen2");
  mt::SafetensorsFile expected(model / "expected.safetensors");
  at::Tensor ids = expected.load("input_ids");
  at::Tensor nll = expected.load("token_nll").to(at::kDouble);
  auto dir = mt::test::temp_dir("cli_score");
  std::string data;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    std::vector<int64_t> row(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + ids.size(1));
    data += nlohmann::json{{"prompt_ids", std::vector<int64_t>(row.begin(), row.begin() + 4)},
                           {"target_ids", std::vector<int64_t>(row.begin() + 4, row.end())}}.dump() + "\n";
  }
  mt::test::write_file(dir / "pairs.jsonl", data);
  auto r = mt::test::run_maintune("score --model " + mt::test::quoted(model) + " --device cpu --data " +
                                  mt::test::quoted(dir / "pairs.jsonl"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  auto lines = mt::test::json_lines(r.output);
  REQUIRE(lines.size() == 2);
  for (int64_t b = 0; b < 2; ++b) {
    const double want = nll[b].narrow(0, 3, ids.size(1) - 4).sum().item<double>();
    CHECK(lines[static_cast<size_t>(b)]["n_tokens"] == ids.size(1) - 4);
    CHECK(std::abs(lines[static_cast<size_t>(b)]["nll_sum"].get<double>() - want) < 1e-3);
    CHECK(std::abs(lines[static_cast<size_t>(b)]["nll_mean"].get<double>() - want / (ids.size(1) - 4)) < 1e-4);
  }
  fs::remove_all(dir);
}

TEST_CASE("cli: help and usage errors", "[cli][bad-input]") {
  auto r = mt::test::run_maintune("--help");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("generate") != std::string::npos);
  CHECK(r.output.find("score") != std::string::npos);
  r = mt::test::run_maintune("generate --help");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("--max-new-tokens") != std::string::npos);
  r = mt::test::run_maintune("");
  CHECK(r.exit_code == 2);
  r = mt::test::run_maintune("frobnicate");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("unknown command 'frobnicate'") != std::string::npos);
  r = mt::test::run_maintune("score --data x.jsonl");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--model") != std::string::npos);
  r = mt::test::run_maintune("generate --model m --data d --max-new-token 3");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("unknown option --max-new-token") != std::string::npos);
  r = mt::test::run_maintune("generate --model " + mt::test::quoted(mt::test::fixture("qwen2")) + " --data x --batch-size two");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--batch-size") != std::string::npos);
}

TEST_CASE("cli: bad input files name the file and line and exit 1", "[cli][bad-input]") {
  const auto model = mt::test::fixture("qwen2");
  auto dir = mt::test::temp_dir("cli_bad");
  struct Case {
    std::string name, content, expect;
  };
  const std::vector<Case> cases = {
      {"bad_json.jsonl", "{\"prompt_ids\": [1, 2]}\n\n{\"prompt_ids\": [1, 2\n", "bad_json.jsonl:3: invalid JSON"},
      {"not_object.jsonl", "[1, 2, 3]\n", "not_object.jsonl:1: expected a JSON object"},
      {"missing.jsonl", "{\"text\": [1]}\n", "missing.jsonl:1: give exactly one of 'prompt_ids', 'prompt', 'instruction' or 'turns'"},
      {"not_text.jsonl", "{\"prompt\": [1]}\n", "not_text.jsonl:1: field 'prompt' must be a string"},
      {"not_int.jsonl", "{\"prompt_ids\": [1, \"a\"]}\n", "not_int.jsonl:1: field 'prompt_ids'[1]"},
      {"range.jsonl", "{\"prompt_ids\": [1]}\n{\"prompt_ids\": [99999]}\n", "token id 99999"},
      {"empty.jsonl", "{\"prompt_ids\": []}\n", "empty"},
      {"zero_bytes.jsonl", "", "zero_bytes.jsonl: empty file"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    mt::test::write_file(dir / c.name, c.content);
    auto r = mt::test::run_maintune("generate --model " + mt::test::quoted(model) + " --data " + mt::test::quoted(dir / c.name) + " --max-new-tokens 2");
    INFO(r.output);
    CHECK(r.exit_code == 1);
    CHECK(r.output.find(c.expect) != std::string::npos);
    CHECK(r.output.find("maintune: error:") != std::string::npos);
  }
  // score: token out of range names the line; a missing data file names the file.
  mt::test::write_file(dir / "score.jsonl",
                       "{\"prompt_ids\": [1], \"target_ids\": [2]}\n{\"prompt_ids\": [1], \"target_ids\": [256]}\n");
  auto r = mt::test::run_maintune("score --model " + mt::test::quoted(model) + " --data " + mt::test::quoted(dir / "score.jsonl"));
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("score.jsonl:2: 'target_ids' token id 256") != std::string::npos);
  r = mt::test::run_maintune("score --model " + mt::test::quoted(model) + " --data " + mt::test::quoted(dir / "nope.jsonl"));
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("nope.jsonl: no such file") != std::string::npos);

  // A model directory with a truncated weights file.
  auto broken = dir / "broken_model";
  fs::create_directories(broken);
  fs::copy_file(model / "config.json", broken / "config.json");
  std::string weights = mt::test::read_file(model / "model.safetensors");
  mt::test::write_file(broken / "model.safetensors", weights.substr(0, weights.size() / 2));
  mt::test::write_file(dir / "ok.jsonl", "{\"prompt_ids\": [1]}\n");
  r = mt::test::run_maintune("generate --model " + mt::test::quoted(broken) + " --data " + mt::test::quoted(dir / "ok.jsonl"));
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("model.safetensors") != std::string::npos);

  // --device cuda where there is none (this binary is also run on the GPU machine: skip there).
  if (!at::hasCUDA()) {
    r = mt::test::run_maintune("generate --model " + mt::test::quoted(model) + " --data " + mt::test::quoted(dir / "ok.jsonl") + " --device cuda");
    CHECK(r.exit_code == 1);
    CHECK(r.output.find("no CUDA device") != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("cli: --version prints the project version, the git commit and torch's version", "[cli]") {
  const auto r = mt::test::run_maintune("--version");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::smatch m;
  const std::string cmake = mt::test::read_file(fs::path(MT_SOURCE_DIR) / "CMakeLists.txt");
  REQUIRE(std::regex_search(cmake, m, std::regex(R"(project\(maintune VERSION ([0-9.]+))")));
  CHECK(r.output.rfind("maintune " + m[1].str() + " (commit ", 0) == 0);
  CHECK(r.output.find("\ntorch " TORCH_VERSION "\n") != std::string::npos);
  // `git describe` of the tree at build time: a commit of this repository (HEAD may have moved on
  // since the build), or "unknown" where git does not work.
  const std::string git = "git -C " + mt::test::quoted(MT_SOURCE_DIR) + " ";
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(\(commit ([^)]*)\)\n)")));
  const std::string describe = m[1].str();
  if (describe == "unknown") {
    CHECK(mt::test::run_command(git + "rev-parse HEAD").exit_code != 0);
  } else {
    REQUIRE(std::regex_match(describe, m, std::regex(R"((?:.*-g)?([0-9a-f]{12})(-dirty)?)")));
    CHECK(mt::test::run_command(git + "cat-file -e " + m[1].str() + "^{commit}").exit_code == 0);
  }
}

TEST_CASE("cli: 'help CMD' is 'CMD --help' for every command 'help' lists", "[cli]") {
  const auto list = mt::test::run_maintune("help");
  REQUIRE(list.exit_code == 0);
  CHECK(list.output == mt::test::run_maintune("--help").output);
  std::vector<std::string> commands;
  std::istringstream in(list.output.substr(list.output.find("Commands:\n")));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line) && line.rfind("  ", 0) == 0) commands.push_back(line.substr(2, line.find(' ', 2) - 2));
  INFO(list.output);
  REQUIRE(commands.size() >= 8);
  for (const std::string& c : commands) {
    INFO(c);
    const auto a = mt::test::run_maintune("help " + c), b = mt::test::run_maintune(c + " --help");
    CHECK(a.exit_code == 0);
    CHECK(b.exit_code == 0);
    CHECK(a.output == b.output);
    CHECK(a.output.rfind("usage: maintune " + c + " ", 0) == 0);
    // Every command that takes --device has the same default.
    if (a.output.find("--device") != std::string::npos)
      CHECK(a.output.find("auto (cuda when available, else cpu), cpu, cuda or cuda:N (default: auto)") != std::string::npos);
  }
  auto r = mt::test::run_maintune("help frobnicate");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("unknown command 'frobnicate'") != std::string::npos);
  r = mt::test::run_maintune("help train score");
  CHECK(r.exit_code == 2);
}

TEST_CASE("cli: --device auto is cpu here without CUDA, and an unknown device is misuse", "[cli][bad-input]") {
  const auto model = mt::test::fixture("qwen2");
  mt::test::TempDir dir("cli_device");
  mt::test::write_file(dir / "p.jsonl", "{\"prompt_ids\": [1, 2, 3]}\n");
  const std::string base = "generate --model " + mt::test::quoted(model) + " --max-new-tokens 4 --data " +
                           mt::test::quoted(dir / "p.jsonl");
  if (!at::hasCUDA()) {
    const auto cpu = mt::test::run_maintune(base + " --device cpu");
    REQUIRE(cpu.exit_code == 0);
    CHECK(mt::test::run_maintune(base + " --device auto").output == cpu.output);
    CHECK(mt::test::run_maintune(base).output == cpu.output);
    auto r = mt::test::run_maintune(base + " --device cuda:1");
    CHECK(r.exit_code == 1);
    CHECK(r.output.find("no CUDA device") != std::string::npos);
  }
  for (const char* bad : {"tpu", "meta"}) {
    auto r = mt::test::run_maintune(base + " --device " + bad);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(std::string("'") + bad + "'") != std::string::npos);
  }
}

TEST_CASE("cli: score --dtype bf16 scores close to fp32", "[cli]") {
  const auto model = mt::test::fixture("qwen2");
  mt::test::TempDir dir("cli_dtype");
  mt::test::write_file(dir / "pairs.jsonl", "{\"prompt_ids\": [1, 2, 3], \"target_ids\": [4, 5, 6, 7]}\n");
  const std::string base = "score --model " + mt::test::quoted(model) + " --device cpu --data " + mt::test::quoted(dir / "pairs.jsonl");
  const auto fp32 = mt::test::run_maintune(base), bf16 = mt::test::run_maintune(base + " --dtype bf16");
  INFO(fp32.output << bf16.output);
  REQUIRE(fp32.exit_code == 0);
  REQUIRE(bf16.exit_code == 0);
  const double a = mt::test::json_lines(fp32.output).at(0)["nll_sum"], b = mt::test::json_lines(bf16.output).at(0)["nll_sum"];
  CHECK(a != b);  // the weights really were cast
  CHECK(std::abs(a - b) < 0.05 * std::abs(a) + 0.05);
}

TEST_CASE("cli: bare key=value arguments are --set overrides, in command-line order", "[cli]") {
  const std::string config = "config --config " + mt::test::quoted(fs::path(MT_SOURCE_DIR) / "configs" / "tiny.yaml");
  const auto plain = mt::test::run_maintune(config);
  const auto set = mt::test::run_maintune(config + " --set training.max_steps=7 --set optimizer.lr=0.5");
  const auto bare = mt::test::run_maintune(config + " training.max_steps=7 optimizer.lr=0.5");
  const auto mixed = mt::test::run_maintune(config + " --set training.max_steps=3 training.max_steps=7 optimizer.lr=0.5");
  INFO(bare.output);
  REQUIRE(plain.exit_code == 0);
  REQUIRE(bare.exit_code == 0);
  CHECK(bare.output == set.output);
  CHECK(mixed.output == set.output);  // the later value wins
  CHECK(bare.output != plain.output);
  CHECK(bare.output.find("max_steps: 7\n") != std::string::npos);
  CHECK(plain.output.find("max_steps: 7\n") == std::string::npos);
  const auto last_set = mt::test::run_maintune(config + " training.max_steps=7 --set training.max_steps=3");
  CHECK(last_set.output.find("max_steps: 3\n") != std::string::npos);

  // train and pipeline take them too: a bad value is the config's error, before any work.
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(fs::path(MT_SOURCE_DIR) / "configs" / "tiny.yaml") +
                                  " training.max_steps=lots");
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("training.max_steps") != std::string::npos);
  r = mt::test::run_maintune("pipeline --config " + mt::test::quoted(fs::path(MT_SOURCE_DIR) / "configs" / "demo.yaml") +
                             " rounds.count=lots");
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("rounds.count") != std::string::npos);
  // Without '=' a bare argument stays misuse; so is key=value where a command has no --set.
  r = mt::test::run_maintune(config + " training.max_steps");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("unexpected argument 'training.max_steps'") != std::string::npos);
  r = mt::test::run_maintune("tokenize --tokenizer x --data y a=b");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("unexpected argument 'a=b'") != std::string::npos);
}

TEST_CASE("cli: parse_args takes bare key=value only for the option that asks for it", "[cli]") {
  const std::vector<mt::cli::OptionSpec> spec = {
      {"config", true, "", ""}, {"set", true, "", "", /*bare_key_value=*/true}, {"dry", false, "", ""}};
  std::vector<std::string> words = {"a.b=1", "--set", "c=2", "--config", "x=y.yaml", "d.e=f=g", "--dry"};
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  const mt::cli::Args args = mt::cli::parse_args(static_cast<int>(argv.size()), argv.data(), spec);
  CHECK(args.get_all("set") == std::vector<std::string>{"a.b=1", "c=2", "d.e=f=g"});
  CHECK(args.get("config") == "x=y.yaml");  // an option's value is never taken as bare
  CHECK(args.has("dry"));
  for (std::string bad : {"-x=1", "word"}) {
    std::vector<char*> one = {bad.data()};
    CHECK_THROWS_AS(mt::cli::parse_args(1, one.data(), spec), mt::cli::UsageError);
  }
  std::string kv = "a=1";
  std::vector<char*> one = {kv.data()};
  CHECK_THROWS_AS(mt::cli::parse_args(1, one.data(), {spec[0], spec[2]}), mt::cli::UsageError);
}
