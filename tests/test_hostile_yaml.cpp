// Hostile YAML in run configs and sweep files (issue 19): deep nesting, huge numbers, alias bombs,
// repeated keys, tabs, truncation and huge grids end in a FILE:LINE error, fast, never a crash.
#include <string>

#include "tests/test_util.h"
#include "trainer/config/config.h"
#include "trainer/sweep/sweep.h"

using namespace mt::test;

namespace {

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

// `maintune ARGS` under a 30 s timeout: it must fail with exit 1 (not hang: 124, not crash: 139).
CommandResult run_fails(const std::string& args) {
  CommandResult r = run_command("timeout 30 '" + std::string(MT_MAINTUNE_EXE) + "' " + args);
  INFO(r.output);
  REQUIRE(r.exit_code == 1);
  return r;
}

}  // namespace

TEST_CASE("hostile yaml: deep nesting in a config is an error, not a crash", "[bad-input][config]") {
  TempDir dir("hostile_yaml_deep");
  const size_t depth = 100000;
  const std::pair<std::string, std::string> shapes[] = {
      {"flow_seq.yaml", "training: " + repeat("[", depth) + repeat("]", depth) + "\n"},
      {"flow_map.yaml", "training: " + repeat("{a: ", depth) + "1" + repeat("}", depth) + "\n"},
      {"unclosed.yaml", "training: " + repeat("[", depth) + "\n"},
  };
  for (const auto& [name, text] : shapes) {
    write_file(dir / name, text);
    const CommandResult c = run_fails("config --config " + quoted(dir / name));
    CHECK(c.output.find(name + ":") != std::string::npos);
    CHECK(c.output.find("nested too deeply") != std::string::npos);
    const CommandResult t = run_fails("train --config " + quoted(dir / name) + " --run-dir " + quoted(dir / "run"));
    CHECK(t.output.find("nested too deeply") != std::string::npos);
  }
  std::string block;  // block maps, one more space of indent per level
  for (size_t i = 0; i < 3000; ++i) block += std::string(i, ' ') + "a:\n";
  write_file(dir / "block.yaml", "training:\n" + block);
  CHECK(run_fails("config --config " + quoted(dir / "block.yaml")).output.find("block.yaml:") != std::string::npos);
}

TEST_CASE("hostile yaml: out-of-range numbers name the file and key", "[bad-input][config]") {
  TempDir dir("hostile_yaml_numbers");
  const std::pair<std::string, std::string> cases[] = {
      {"optimizer:\n  lr: 1e400\n", "optimizer.lr"},
      {"optimizer:\n  lr: 1e999999\n", "optimizer.lr"},
      {"optimizer:\n  lr: -1e400\n", "optimizer.lr"},
      {"data:\n  max_len: 1180591620717411303424\n", "data.max_len"},  // 2^70
      {"training:\n  max_steps: 1e400\n", "training.max_steps"},
  };
  for (const auto& [text, key] : cases) {
    write_file(dir / "c.yaml", text);
    require_error([&] { (void)mt::load_pipeline_config(dir / "c.yaml"); }, {"c.yaml:2:", key});
  }
}

TEST_CASE("hostile yaml: an alias bomb, repeated keys, tabs and truncation", "[bad-input][config]") {
  TempDir dir("hostile_yaml_misc");
  // Billion laughs: 9^10 leaves if expanded. yaml-cpp shares aliased nodes, and no config key takes
  // nested lists, so this must be refused at once.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 9; ++j) bomb += (j ? ", *a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  write_file(dir / "bomb.yaml", "data:\n  sources: *a9\n" + bomb);
  run_fails("config --config " + quoted(dir / "bomb.yaml"));
  write_file(dir / "bomb2.yaml", "training:\n  seed: 1\n" + bomb);
  require_error([&] { (void)mt::load_pipeline_config(dir / "bomb2.yaml"); }, {"bomb2.yaml:3:", "unknown section 'a0'"});

  write_file(dir / "dup.yaml", "training:\n  seed: 1\n  seed: 2\n");
  require_error([&] { (void)mt::load_pipeline_config(dir / "dup.yaml"); },
                {"dup.yaml:3:", "duplicate key 'training.seed'", "first at line 2"});
  write_file(dir / "tab.yaml", "training:\n\tseed: 1\n");
  require_error([&] { (void)mt::load_pipeline_config(dir / "tab.yaml"); }, {"tab.yaml:", "invalid YAML"});
  // yaml-cpp 0.7 reads a stray flow indicator as endless empty documents (the fuzzer's find: memory
  // ran out): it must be one error, at once.
  for (const std::string text : {", ", "training: {seed: 1}\n, \n"}) {
    write_file(dir / "stray.yaml", text);
    CHECK(run_fails("config --config " + quoted(dir / "stray.yaml")).output.find("stray.yaml:") != std::string::npos);
  }
  write_file(dir / "cut.yaml", "training:\n  seed: [1, 2\n");
  require_error([&] { (void)mt::load_pipeline_config(dir / "cut.yaml"); }, {"cut.yaml:", "invalid YAML"});
}

TEST_CASE("hostile yaml: sweep files: deep nesting, size and a grid too large", "[bad-input][sweep]") {
  TempDir dir("hostile_yaml_sweep");
  write_file(dir / "base.yaml", "");
  const size_t depth = 100000;
  write_file(dir / "deep.yaml", "base: base.yaml\ngrid:\n  optimizer.lr: " + repeat("[", depth) + repeat("]", depth) + "\n");
  const CommandResult deep = run_fails("sweep --config " + quoted(dir / "deep.yaml") + " --run-dir " + quoted(dir / "sw") + " --dry-run");
  CHECK(deep.output.find("deep.yaml:") != std::string::npos);
  CHECK(deep.output.find("nested too deeply") != std::string::npos);

  // 10^10 settings: refused before expanding (which would need far more memory than there is).
  std::string values;
  for (int i = 0; i < 10; ++i) values += (i ? ", " : "") + std::to_string(i + 1);
  const std::string keys[] = {"optimizer.lr", "optimizer.eps", "optimizer.beta1", "optimizer.weight_decay",
                              "training.seed", "training.epochs", "training.max_steps", "training.eval_every",
                              "training.micro_batch_size", "data.max_len"};
  std::string grid = "base: base.yaml\ngrid:\n";
  for (const auto& k : keys) grid += "  " + k + ": [" + values + "]\n";
  write_file(dir / "huge.yaml", grid);
  require_error([&] { (void)mt::load_sweep_spec(dir / "huge.yaml"); },
                {"huge.yaml", "10000000000 settings", "more than the 10000"});
  // Just over the bound with a list: the product counts list entries too.
  std::string list = "base: base.yaml\nlist:\n  - {training.seed: 1}\n  - {training.seed: 2}\ngrid:\n";
  list += "  optimizer.lr: [" + values + "]\n  optimizer.eps: [" + values + "]\n  training.epochs: [" + values + "]\n";
  list += "  data.max_len: [" + values + ", 11, 12, 13, 14, 15]\n";  // 2 x 10 x 10 x 10 x 15 = 30000
  write_file(dir / "over.yaml", list);
  require_error([&] { (void)mt::load_sweep_spec(dir / "over.yaml"); }, {"over.yaml", "30000 settings", "2 list entries"});
  // At the bound: accepted and expanded.
  std::string at = "base: base.yaml\ngrid:\n";
  for (int i = 0; i < 4; ++i) at += "  " + keys[i] + ": [" + values + "]\n";
  write_file(dir / "at.yaml", at);
  CHECK(mt::load_sweep_spec(dir / "at.yaml").settings.size() == 10000);

  write_file(dir / "big.yaml", "base: base.yaml\n#" + std::string(size_t{17} << 20, 'x') + "\n");
  require_error([&] { (void)mt::load_sweep_spec(dir / "big.yaml"); }, {"big.yaml", "16 MiB"});
}
