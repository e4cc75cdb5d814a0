// `maintune generate` / `score --model` on a training checkpoint: a step_N folder, the
// checkpoints/latest pointer and a run directory are told apart from a HF model dir
// (resolve_model_path), and a checkpoint gives exactly what its `maintune export` gives (greedy ids,
// texts, NLLs and alignment scores), with the run's tokenizer and chat template; folders that are
// none of these are clear errors; output.export_every writes what export --checkpoint writes.
#include <string>
#include <vector>

#include "trainer/loop/checkpoint_model.h"
#include "tests/run_fixtures.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

// A run config for the tiny model with the alignment scorer trained (its heads are in every
// checkpoint) and weights exported in bf16 (a checkpoint's fp32 weights are rounded on export).
fs::path write_ckpt_model_config(const fs::path& dir) {
  const fs::path data = mt::test::write_reverse_pairs(dir / "pairs.jsonl", {"apple", "river", "stone", "cloud"},
                                                      "The reversed word is ", 48);
  const fs::path cfg = dir / "run.yaml";
  mt::test::write_file(cfg, mt::test::tiny_model_section() + "data:\n  sources:\n    - path: " + data.string() +
                                "\n      format: alpaca\n  template: llama3\n  max_len: 96\n"
                                "optimizer:\n  lr: 0.003\n"
                                "training:\n  max_steps: 4\n  micro_batch_size: 2\n  grad_accum_steps: 1\n"
                                "  checkpoint_every: 2\n  seed: 3\n"
                                "output:\n  keep_last: 0\n  export_dtype: bfloat16\n"
                                "logging:\n  progress: none\n  tensorboard: false\n"
                                "alignment:\n  lambda_align: 0.5\n  dim: 16\n");
  return cfg;
}

// Inputs of both kinds, ids and text through the chat template.
void write_ckpt_model_inputs(const fs::path& dir) {
  mt::test::write_file(dir / "prompts.jsonl",
                       "{\"prompt_ids\": [1, 2, 3, 4]}\n"
                       "{\"instruction\": \"Reverse the word apple number 0\", \"id\": \"a\"}\n"
                       "{\"prompt\": \"Reverse the word\"}\n");
  mt::test::write_file(dir / "pairs.score.jsonl",
                       "{\"prompt_ids\": [5, 6, 7], \"target_ids\": [8, 9]}\n"
                       "{\"instruction\": \"Reverse the word stone number 2\", \"response\": \"The reversed word is enots.\"}\n");
}

struct ModelOutputs {
  std::vector<nlohmann::json> generated, scored;
  std::string log;
};

ModelOutputs run_on(const fs::path& model, const fs::path& dir) {
  ModelOutputs o;
  const std::string m = " --model " + mt::test::quoted(model) + " --device cpu";
  auto g = mt::test::run_maintune("generate" + m + " --max-new-tokens 6 --data " + mt::test::quoted(dir / "prompts.jsonl"));
  INFO(g.output);
  REQUIRE(g.exit_code == 0);
  auto s = mt::test::run_maintune("score" + m + " --alignment --data " + mt::test::quoted(dir / "pairs.score.jsonl"));
  INFO(s.output);
  REQUIRE(s.exit_code == 0);
  o.generated = mt::test::json_lines(g.output);
  o.scored = mt::test::json_lines(s.output);
  o.log = g.output + s.output;
  REQUIRE(o.generated.size() == 3);
  REQUIRE(o.scored.size() == 2);
  return o;
}

// Equal line for line: ids, finish reasons, texts, NLLs (exactly) and alignment scores.
void check_same_outputs(const ModelOutputs& a, const ModelOutputs& b) {
  for (size_t i = 0; i < a.generated.size(); ++i) {
    INFO("generate line " << i);
    CHECK(a.generated[i] == b.generated[i]);
  }
  for (size_t i = 0; i < a.scored.size(); ++i) {
    INFO("score line " << i);
    CHECK(a.scored[i]["nll_sum"].get<double>() == b.scored[i]["nll_sum"].get<double>());
    CHECK(a.scored[i]["n_tokens"] == b.scored[i]["n_tokens"]);
    CHECK(a.scored[i]["alignment_score"].get<double>() == b.scored[i]["alignment_score"].get<double>());
  }
}

}  // namespace

TEST_CASE("checkpoint model: generate and score on a checkpoint give exactly its export's outputs",
          "[checkpoint-model][train][export][cli]") {
  const mt::test::TempDir dir("ckpt_model");
  const fs::path cfg = write_ckpt_model_config(dir.path);
  write_ckpt_model_inputs(dir.path);
  const fs::path run = dir / "run";
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path step2 = run / "checkpoints" / "step_0000002", step4 = run / "checkpoints" / "step_0000004";
  auto e = mt::test::run_maintune("export --checkpoint " + mt::test::quoted(step2) + " --out " + mt::test::quoted(dir / "out2"));
  INFO(e.output);
  REQUIRE(e.exit_code == 0);

  // An earlier step: the checkpoint as its export, the tokenizer and llama3 template of the run.
  const ModelOutputs from_ckpt = run_on(step2, dir.path), from_export = run_on(dir / "out2", dir.path);
  check_same_outputs(from_ckpt, from_export);
  CHECK(from_ckpt.generated[1].contains("text"));
  CHECK(from_ckpt.generated[1]["id"] == "a");
  CHECK(from_ckpt.log.find("training checkpoint") != std::string::npos);

  // The latest pointer, and the run itself: final/ (the last step's export) while there is one,
  // else its latest checkpoint; each says on stderr what it stood for.
  const ModelOutputs last = run_on(step4, dir.path);
  // Another step, other weights: the comparisons are not vacuous.
  CHECK(last.scored[1]["nll_sum"].get<double>() != from_ckpt.scored[1]["nll_sum"].get<double>());
  const ModelOutputs latest = run_on(run / "checkpoints" / "latest", dir.path);
  check_same_outputs(latest, last);
  CHECK(latest.log.find(step4.string()) != std::string::npos);
  const ModelOutputs final_dir = run_on(run, dir.path);
  check_same_outputs(final_dir, last);
  CHECK(final_dir.log.find("final/") != std::string::npos);
  fs::rename(run / "final", dir / "final_moved");
  const ModelOutputs no_final = run_on(run, dir.path);
  check_same_outputs(no_final, last);
  CHECK(no_final.log.find("latest checkpoint") != std::string::npos);
}

TEST_CASE("checkpoint model: score --alignment on a checkpoint without heads, and folders that are no model, are clear errors",
          "[checkpoint-model][train][cli][bad-input]") {
  const mt::test::TempDir dir("ckpt_model_bad");
  const fs::path cfg = write_ckpt_model_config(dir.path);
  write_ckpt_model_inputs(dir.path);
  const fs::path run = dir / "run";
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run) +
                                  " training.max_steps=2 alignment.lambda_align=0 output.export=false");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path step2 = run / "checkpoints" / "step_0000002";
  const std::string data = " --device cpu --data " + mt::test::quoted(dir / "pairs.score.jsonl");
  auto no_heads = mt::test::run_maintune("score --model " + mt::test::quoted(step2) + data + " --alignment");
  INFO(no_heads.output);
  CHECK(no_heads.exit_code == 1);
  CHECK(no_heads.output.find(step2.string()) != std::string::npos);
  CHECK(no_heads.output.find("does not hold") != std::string::npos);
  CHECK(mt::test::run_maintune("score --model " + mt::test::quoted(step2) + data).exit_code == 0);

  // A folder with none of the expected files, a path that is not there, a damaged pointer.
  fs::create_directories(dir / "plain");
  mt::test::write_file(dir / "plain" / "notes.txt", "x");
  for (const fs::path& bad : {dir / "plain", dir / "missing", dir / "plain" / "notes.txt"}) {
    auto b = mt::test::run_maintune("score --model " + mt::test::quoted(bad) + data);
    INFO(b.output);
    CHECK(b.exit_code == 1);
    CHECK(b.output.find(bad.string()) != std::string::npos);
    CHECK(b.output.find("expected a Hugging Face model directory") != std::string::npos);
  }
  mt::test::write_file(run / "checkpoints" / "latest", "../../elsewhere\n");
  auto pointer = mt::test::run_maintune("generate --model " + mt::test::quoted(run) + data);
  INFO(pointer.output);
  CHECK(pointer.exit_code == 1);
  CHECK(pointer.output.find((run / "checkpoints" / "latest").string()) != std::string::npos);
  CHECK(pointer.output.find("step_NNNNNNN") != std::string::npos);
}

TEST_CASE("checkpoint model: resolve_model_path tells model dirs, checkpoints, pointers and runs apart",
          "[checkpoint-model]") {
  const mt::test::TempDir dir("model_path");
  const fs::path run = dir / "run", ckpts = run / "checkpoints";
  fs::create_directories(ckpts / "step_0000003");
  fs::create_directories(ckpts / "step_0000010");
  mt::test::write_file(ckpts / "step_0000003" / "trainer_state.json", "{}");
  mt::test::write_file(ckpts / "step_0000010" / "trainer_state.json", "{}");
  fs::create_directories(dir / "hf");
  mt::test::write_file(dir / "hf" / "config.json", "{}");

  auto p = mt::resolve_model_path(dir / "hf");
  CHECK_FALSE(p.is_checkpoint);
  CHECK(p.dir == dir / "hf");
  CHECK(p.resolved.empty());
  p = mt::resolve_model_path(ckpts / "step_0000003");
  CHECK(p.is_checkpoint);
  CHECK(p.dir == ckpts / "step_0000003");
  // No pointer: the run's newest step; with one, the step it names (not the newest).
  p = mt::resolve_model_path(run);
  CHECK(p.is_checkpoint);
  CHECK(p.dir == ckpts / "step_0000010");
  mt::test::write_file(ckpts / "latest", "step_0000003\n");
  for (const fs::path& via : {run, ckpts, ckpts / "latest"}) {
    INFO(via.string());
    p = mt::resolve_model_path(via);
    CHECK(p.is_checkpoint);
    CHECK(p.dir == ckpts / "step_0000003");
    CHECK_FALSE(p.resolved.empty());
  }
  // final/ wins over the checkpoints once the run has one.
  fs::create_directories(run / "final");
  mt::test::write_file(run / "final" / "config.json", "{}");
  p = mt::resolve_model_path(run);
  CHECK_FALSE(p.is_checkpoint);
  CHECK(p.dir == run / "final");

  // A pointer naming a step that is gone, a pointer holding a path, an empty run, no model at all.
  mt::test::write_file(ckpts / "latest", "step_0000004\n");
  mt::test::require_error([&] { mt::resolve_model_path(ckpts / "latest"); }, {(ckpts / "latest").string(), "does not exist"});
  mt::test::write_file(ckpts / "latest", "/etc\n");
  mt::test::require_error([&] { mt::resolve_model_path(ckpts); }, {(ckpts / "latest").string(), "step_NNNNNNN"});
  fs::create_directories(dir / "empty_run" / "checkpoints");
  mt::test::require_error([&] { mt::resolve_model_path(dir / "empty_run"); },
                          {(dir / "empty_run").string(), "neither a final/ model nor a checkpoint"});
  fs::create_directories(dir / "nothing");
  mt::test::require_error([&] { mt::resolve_model_path(dir / "nothing"); },
                          {(dir / "nothing").string(), "expected a Hugging Face model directory"});
}

TEST_CASE("checkpoint model: output.export_every writes exports/step_N, file for file what export --checkpoint gives",
          "[checkpoint-model][train][export]") {
  const mt::test::TempDir dir("export_every");
  const fs::path cfg = write_ckpt_model_config(dir.path);
  const fs::path run = dir / "run";
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run) +
                                  " output.export_every=2");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // Step 2 is exported; step 4, the last, is final/ and not exported twice.
  CHECK(fs::is_directory(run / "exports" / "step_0000002"));
  CHECK_FALSE(fs::exists(run / "exports" / "step_0000004"));
  CHECK(fs::is_regular_file(run / "final" / "config.json"));
  auto e = mt::test::run_maintune("export --checkpoint " + mt::test::quoted(run / "checkpoints" / "step_0000002") +
                                  " --out " + mt::test::quoted(dir / "out2"));
  INFO(e.output);
  REQUIRE(e.exit_code == 0);
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir / "out2")) {
    INFO(entry.path().filename().string());
    CHECK(mt::test::read_file(entry.path()) == mt::test::read_file(run / "exports" / "step_0000002" / entry.path().filename()));
    ++files;
  }
  CHECK(files == static_cast<size_t>(std::distance(fs::directory_iterator(run / "exports" / "step_0000002"),
                                                   fs::directory_iterator())));
  CHECK(fs::is_regular_file(dir / "out2" / "alignment_scorer.safetensors"));

  // Without final/, the last step is exported too.
  const fs::path run2 = dir / "run2";
  auto r2 = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run2) +
                                   " output.export_every=4 output.export=false");
  INFO(r2.output);
  REQUIRE(r2.exit_code == 0);
  CHECK(fs::is_regular_file(run2 / "exports" / "step_0000004" / "config.json"));
  CHECK_FALSE(fs::exists(run2 / "final"));
  CHECK_FALSE(fs::exists(run2 / "exports" / "step_0000002"));
}
