// The MAIN pipeline end to end on CPU (trainer/method/pipeline.h, `maintune pipeline`): the demo config
// made small runs every stage and writes the report, summary.json and every candidate's score
// components; a kill in each stage (MAINTUNE_FAULT_KILL_AT) followed by --resume ends with the
// same candidates, scores, kept sets and accuracies as an uninterrupted run; bad inputs and
// inconsistent configs give clear errors.
#include <filesystem>
#include <set>

#include "tests/run_fixtures.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using mt::test::demo_config;

// The demo, small (kSmallDemoSets), in `run_dir`.
std::string small_demo(const fs::path& run_dir, const std::string& extra = "") {
  return "pipeline --config " + mt::test::quoted(demo_config()) + " --run-dir " + mt::test::quoted(run_dir) +
         mt::test::kSmallDemoSets + " " + extra;
}

std::vector<json> jsonl(const fs::path& file) {
  std::vector<json> out;
  for (const auto& j : mt::test::json_lines(mt::test::read_file(file))) out.push_back(j);
  return out;
}

void require_complete(const fs::path& run) {
  for (const char* stage : {"stage0_demo", "stage1_seed_models", "stage2_round_1", "stage3_synthesis", "stage4_filter",
                            "stage5_final"}) {
    INFO(stage);
    REQUIRE(mt::test::read_json(run / stage / "stage.json")["complete"] == true);
  }
  REQUIRE(fs::exists(run / "report" / "report.md"));
}

}  // namespace

TEST_CASE("pipeline: the demo runs every stage - report, summary.json and scored candidates", "[pipeline]") {
  const fs::path run = mt::test::temp_dir("pipeline") / "run";
  const auto r = mt::test::run_maintune(small_demo(run));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  require_complete(run);
  const json summary = mt::test::read_json(run / "report" / "summary.json");
  // Every compared rule keeps the same number of pairs, and precision is a measured fraction.
  const int64_t budget = summary["budget"];
  REQUIRE(budget > 0);
  for (const std::string rule : {"none", "forward", "reverse", "mutual"}) {
    INFO(rule);
    REQUIRE(summary["filter"][rule]["kept"] == budget);
    const double p = summary["filter"][rule]["precision"];
    REQUIRE((p >= 0 && p <= 1));
  }
  for (const std::string rule : {"none", "mutual"}) {
    const double a = summary["final"][rule]["accuracy"];
    REQUIRE((a >= 0 && a <= 1));
  }
  // scored.jsonl: every candidate, kept or not, with every score component; kept counts match.
  const auto scored = jsonl(run / "stage4_filter" / "scored.jsonl");
  REQUIRE(scored.size() == 96);
  std::map<std::string, int64_t> kept;
  int64_t eligible = 0, correct_kept_mutual = 0;
  for (const auto& c : scored) {
    for (const char* k : {"instruction", "response", "forward_nll", "reverse_nll", "forward_z", "reverse_z", "scores",
                          "kept", "eligible", "drop_reason", "correct"})
      REQUIRE(c.contains(k));
    if (c["eligible"] == true) {
      ++eligible;
      REQUIRE(c["forward_nll"].is_number());
      REQUIRE(c["reverse_nll"].is_number());
      REQUIRE(c["scores"]["mutual"].is_number());
    } else {
      REQUIRE(c["drop_reason"].is_string());
    }
    for (const auto& [rule, k] : c["kept"].items()) kept[rule] += k.get<bool>();
    if (c["kept"]["mutual"] == true) correct_kept_mutual += c["correct"].get<bool>();
  }
  REQUIRE(eligible == summary["eligible"]);
  for (const auto& [rule, k] : kept) REQUIRE(k == budget);
  // The reported precision is the checker's verdict over the kept pairs.
  REQUIRE(summary["filter"]["mutual"]["precision"].get<double>() ==
          Approx(static_cast<double>(correct_kept_mutual) / static_cast<double>(budget)));
  // The report states every rule's precision and links plots a browser shows.
  const std::string md = mt::test::read_file(run / "report" / "report.md");
  for (const char* s : {"| none |", "| mutual |", "| forward |", "| reverse |", "Does mutual filtering win?",
                        "losses_per_round.svg", "forward_nll.svg", "Worst-scored dropped pairs"})
    REQUIRE(md.find(s) != std::string::npos);
  for (const char* svg : {"losses_per_round.svg", "forward_nll.svg", "reverse_nll.svg", "rule_score.svg", "truth_mutual.svg"}) {
    INFO(svg);
    const std::string text = mt::test::read_file(run / "report" / svg);
    REQUIRE(text.find("<svg") != std::string::npos);
    REQUIRE(text.find("</svg>") != std::string::npos);
  }
  // A second start in the same run dir without --resume is refused; with --resume it is a no-op.
  const auto again = mt::test::run_maintune(small_demo(run));
  REQUIRE(again.exit_code == 1);
  REQUIRE(again.output.find("--resume") != std::string::npos);
  const auto resumed = mt::test::run_maintune(small_demo(run, "--resume"));
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  REQUIRE(resumed.output.find("training") == std::string::npos);  // nothing was trained again
}

TEST_CASE("pipeline: a stop signal in a stage training exits 75, and the printed command finishes the run",
          "[pipeline][resume]") {
  const fs::path run = mt::test::temp_dir("pipeline_stop") / "run";
  // As if SIGTERM came after the first step of the first training (the forward seed model).
  const auto r = mt::test::run_maintune(small_demo(run), "MAINTUNE_FAULT_FLAGS=train.stop_signal");
  INFO(r.output);
  REQUIRE(r.exit_code == 75);
  const std::string marker = "continue with: maintune ";
  const size_t at = r.output.find(marker);
  REQUIRE(at != std::string::npos);
  const std::string pasted = r.output.substr(at + marker.size(), r.output.find('\n', at) - at - marker.size());
  CHECK(pasted.find((run / "pipeline.yaml").string()) != std::string::npos);
  // Pasted from another directory: the saved config holds the demo's --set overrides and the run dir.
  const auto resumed = mt::test::run_command("cd / && '" + std::string(MT_MAINTUNE_EXE) + "' " + pasted + " 2>&1");
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  require_complete(run);
  fs::remove_all(run.parent_path());
}

TEST_CASE("pipeline: a kill in every stage, each followed by --resume, gives the uninterrupted run's results",
          "[pipeline][resume]") {
  const fs::path root = mt::test::temp_dir("pipeline_kill");
  const fs::path straight = root / "straight", killed = root / "killed";
  const auto s = mt::test::run_maintune(small_demo(straight));
  INFO(s.output);
  REQUIRE(s.exit_code == 0);
  // One kill per stage: after the demo data, inside a training run (after its first checkpoint),
  // inside generation and scoring chunks, between the final models, and after the report.
  const std::vector<std::string> kills = {
      "stage0.done",                   "train.checkpoint:1",           "stage1.reverse.trained",
      "stage2.round1.instructions.chunk:2", "stage2.round1.forward.trained", "stage3.synthesis.chunk:3",
      "stage4.forward.chunk:2",        "stage4.reverse.chunk:4",       "stage5.none.trained",
      "stage5.mutual.eval.chunk:1",    "report.done"};
  for (size_t i = 0; i < kills.size(); ++i) {
    INFO(kills[i]);
    const auto r = mt::test::run_maintune(small_demo(killed, i == 0 ? "" : "--resume"),
                                         "MAINTUNE_FAULT_KILL_AT='" + kills[i] + "'");
    INFO(r.output);
    REQUIRE(r.exit_code == 137);
    REQUIRE(r.output.find("fault injection: killed at") != std::string::npos);
  }
  const auto r = mt::test::run_maintune(small_demo(killed, "--resume"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  require_complete(killed);
  // Identical candidates, score components and kept sets, and the same final accuracies.
  REQUIRE(mt::test::read_file(killed / "stage3_synthesis" / "candidates.jsonl") ==
          mt::test::read_file(straight / "stage3_synthesis" / "candidates.jsonl"));
  REQUIRE(mt::test::read_file(killed / "stage4_filter" / "scored.jsonl") ==
          mt::test::read_file(straight / "stage4_filter" / "scored.jsonl"));
  const json a = mt::test::read_json(straight / "report" / "summary.json");
  const json b = mt::test::read_json(killed / "report" / "summary.json");
  REQUIRE(a["filter"] == b["filter"]);
  REQUIRE(a["final"] == b["final"]);
  REQUIRE(mt::test::read_file(killed / "stage5_final" / "mutual" / "eval_generation" / "predictions.jsonl") ==
          mt::test::read_file(straight / "stage5_final" / "mutual" / "eval_generation" / "predictions.jsonl"));
}

TEST_CASE("pipeline: K = 0 skips the mutual rounds - self_curation is a comparable rule", "[pipeline]") {
  const fs::path run = mt::test::temp_dir("pipeline_k0") / "run";
  const auto r = mt::test::run_maintune(
      small_demo(run, "--set rounds.count=0 --set 'filter.compare=[none, forward, reverse, mutual, self_curation]' "
                      "--set 'final.models=[mutual]' --set filter.keep=top_k --set filter.top_k=20"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE(!fs::exists(run / "stage2_round_1"));
  const json summary = mt::test::read_json(run / "report" / "summary.json");
  REQUIRE(summary["budget"] == 20);
  REQUIRE(summary["filter"]["self_curation"]["kept"] == 20);
  REQUIRE(summary["final"].size() == 1);
  const auto scored = jsonl(run / "stage4_filter" / "scored.jsonl");
  for (const auto& c : scored)
    if (c["eligible"] == true) {
      const double rating = c["self_rating"];
      REQUIRE((rating >= 1 && rating <= 5));
    }
}

TEST_CASE("pipeline: bad inputs and inconsistent configs are clear errors", "[pipeline]") {
  const fs::path dir = mt::test::temp_dir("pipeline_bad");
  auto run = [&](const std::string& args) { return mt::test::run_maintune("pipeline " + args); };
  const std::string base = "--config " + mt::test::quoted(demo_config()) + " --set logging.progress=none ";
  SECTION("empty seed set") {
    mt::test::write_file(dir / "seed.jsonl", "{\"instruction\": \"  \", \"output\": \"x\"}\n");
    mt::test::write_file(dir / "unlabeled.jsonl", "{\"text\": \"hello there\"}\n");
    const auto r = run(base + "--run-dir " + mt::test::quoted(dir / "r") + " --set demo.enabled=false --set pipeline.checker=none"
                       " --set model.tokenizer=" + mt::test::quoted(mt::test::tiny_model_dir()) +
                       " --set data.template=llama3 --set model.path=" + mt::test::quoted(mt::test::tiny_model_dir()) +
                       " --set 'data.sources=[{path: " + (dir / "seed.jsonl").string() + ", format: alpaca}]'"
                       " --set 'pipeline.unlabeled=[{path: " + (dir / "unlabeled.jsonl").string() + ", format: text_jsonl, min_chars: 1}]'");
    INFO(r.output);
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find("seed.jsonl: no usable records") != std::string::npos);
  }
  SECTION("unlabeled file with no usable segment") {
    mt::test::write_file(dir / "seed.jsonl", "{\"instruction\": \"Say hi\", \"output\": \"hi\"}\n");
    mt::test::write_file(dir / "unlabeled.jsonl", "{\"text\": \"ab\"}\n{\"text\": \"  \"}\n");
    const auto r = run(base + "--run-dir " + mt::test::quoted(dir / "r") + " --set demo.enabled=false --set pipeline.checker=none"
                       " --set model.tokenizer=" + mt::test::quoted(mt::test::tiny_model_dir()) +
                       " --set data.template=llama3 --set model.path=" + mt::test::quoted(mt::test::tiny_model_dir()) +
                       " --set 'data.sources=[{path: " + (dir / "seed.jsonl").string() + ", format: alpaca}]'"
                       " --set 'pipeline.unlabeled=[{path: " + (dir / "unlabeled.jsonl").string() + ", format: text_jsonl, min_chars: 5}]'");
    INFO(r.output);
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find("unlabeled.jsonl") != std::string::npos);
    REQUIRE(r.output.find("usable") != std::string::npos);
  }
  SECTION("a tokenizer that does not fit the model (forward and reverse share the base's)") {
    mt::test::write_file(dir / "seed.jsonl", "{\"instruction\": \"Say the word zebra backwards\", \"output\": \"arbez\"}\n");
    mt::test::write_file(dir / "unlabeled.jsonl", "{\"text\": \"hello there\"}\n");
    // The demo model's vocabulary is 512; the tiny BPE tokenizer's ids go to 1003.
    const auto r = run(base + "--run-dir " + mt::test::quoted(dir / "r") + " --set demo.enabled=false --set pipeline.checker=none"
                       " --set model.tokenizer=" + mt::test::quoted(mt::test::tiny_model_dir()) +
                       " --set data.template=llama3"
                       " --set 'data.sources=[{path: " + (dir / "seed.jsonl").string() + ", format: alpaca}]'"
                       " --set 'pipeline.unlabeled=[{path: " + (dir / "unlabeled.jsonl").string() + ", format: text_jsonl, min_chars: 1}]'");
    INFO(r.output);
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find("vocabulary of 512") != std::string::npos);
  }
  SECTION("stages that disagree") {
    auto r = run(base + "--run-dir " + mt::test::quoted(dir / "r") + " --set 'final.models=[forward]' --set 'filter.compare=[none]'");
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find("final.models lists 'forward'") != std::string::npos);
    r = run(base + "--run-dir " + mt::test::quoted(dir / "r") + " --set 'pipeline.reverse_template=Write it'");
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find("{response}") != std::string::npos);
    r = run(base + "--run-dir " + mt::test::quoted(dir / "r") + " --set final.alpha=2");
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find("final.alpha") != std::string::npos);
    r = run(base + "--run-dir " + mt::test::quoted(dir / "r") + " --set 'filter.compare=[mutual, mutual]'");
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find("listed twice") != std::string::npos);
    r = run(base + "--run-dir " + mt::test::quoted(dir / "r") + " --set filter.compare=mutual");
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find("expected a list") != std::string::npos);
  }
  REQUIRE(!fs::exists(dir / "r" / "stage1_seed_models" / "stage.json"));
}

TEST_CASE("pipeline: empty generated instructions are dropped and counted - none at all is a clear error",
          "[pipeline]") {
  const fs::path run = mt::test::temp_dir("pipeline_empty") / "run";
  const auto r = mt::test::run_maintune(small_demo(run, "--set rounds.count=1"), "MAINTUNE_FAULT_EMPTY_GENERATIONS=1");
  INFO(r.output);
  REQUIRE(r.exit_code == 1);
  REQUIRE(r.output.find("warning: 60 synthetic instructions and 60 synthetic responses were empty") != std::string::npos);
  REQUIRE(r.output.find("wrote no usable instruction for the 96 unlabeled responses (96 empty") != std::string::npos);
  REQUIRE(mt::test::read_json(run / "stage2_round_1" / "stage.json")["empty"]["instructions"] == 60);
  REQUIRE(!fs::exists(run / "stage3_synthesis" / "stage.json"));
}

TEST_CASE("pipeline: resume refuses a changed config, naming the keys", "[pipeline][resume]") {
  const fs::path run = mt::test::temp_dir("pipeline_changed") / "run";
  auto r = mt::test::run_maintune(small_demo(run), "MAINTUNE_FAULT_KILL_AT=stage0.done");
  REQUIRE(r.exit_code == 137);
  r = mt::test::run_maintune(small_demo(run, "--resume --set filter.quantile=0.3"));
  INFO(r.output);
  REQUIRE(r.exit_code == 1);
  REQUIRE(r.output.find("filter.quantile: 0.5 -> 0.3") != std::string::npos);
}

TEST_CASE("pipeline: the same config shape on a HF model dir with its own tokenizer and real instruction data",
          "[pipeline]") {
  // configs/tiny_model: a HF config.json + tokenizer.json (byte-level BPE, LLaMA-3 specials and
  // template); seed pairs and unlabeled responses (their outputs) from the 175 self-instruct seed
  // tasks (alpaca_seed format); no ground truth.
  const fs::path run = mt::test::temp_dir("pipeline_hf") / "run";
  const fs::path data = mt::test::shared_data() / "instructions";
  const std::string args =
      "pipeline --config " + mt::test::quoted(demo_config()) + " --run-dir " + mt::test::quoted(run) +
      " --set demo.enabled=false --set pipeline.checker=none --set model.path=" +
      mt::test::quoted(mt::test::tiny_model_dir()) +
      " --set model.tokenizer= --set data.template=auto --set data.max_len=256"
      " --set 'data.sources=[{path: " + (data / "alpaca_seed_tasks.jsonl").string() + ", format: alpaca_seed}]'"
      " --set 'pipeline.unlabeled=[{path: " + (data / "alpaca_seed_tasks.jsonl").string() + ", format: alpaca_seed}]'"
      " --set pipeline.seed_steps=6 --set rounds.steps=3 --set final.steps=4 --set training.micro_batch_size=8"
      " --set rounds.max_new_tokens=8 --set synthesis.max_new_tokens=8 --set pipeline.chunk_size=64"
      " --set pipeline.batch_size=32 --set filter.keep=top_k --set filter.top_k=50 --set 'final.models=[mutual]'"
      " --set logging.progress=none";
  const auto r = mt::test::run_maintune(args);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.output.find("template llama3") != std::string::npos);
  const json summary = mt::test::read_json(run / "report" / "summary.json");
  REQUIRE(summary["checker"] == "none");
  REQUIRE(summary["filter"]["mutual"]["kept"] == 50);
  REQUIRE(summary["filter"]["mutual"]["precision"].is_null());  // no ground truth: not measured, not made up
  REQUIRE(summary["final"]["mutual"]["accuracy"].is_null());    // no held-out pairs
  REQUIRE(mt::test::read_file(run / "report" / "report.md").find("Precision: not measured") != std::string::npos);
  // final/ of each stage is a HF model dir with the tokenizer beside the weights.
  REQUIRE(fs::exists(run / "stage5_final" / "mutual" / "final" / "tokenizer.json"));
}
