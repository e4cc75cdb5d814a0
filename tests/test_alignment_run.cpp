// The alignment terms in `maintune train` and `maintune score`: metrics, the scorer's tensors in
// checkpoints and final/, an exact resume after a kill (heads and their optimizer state included),
// all-zero weights giving the plain run's weights bit for bit, and clear errors for a missing or
// damaged scorer.
#include <ATen/ATen.h>

#include <cmath>

#include "models/safetensors.h"
#include "trainer/engine/alignment.h"
#include "tests/run_fixtures.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

using mt::test::step_lines;

// Pairs whose response is a function of the instruction, for the tiny model of configs/.
fs::path write_pairs(const fs::path& dir, int n) {
  const fs::path file = dir / "pairs.jsonl";
  std::string text;
  const char* words[] = {"apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "piano"};
  for (int i = 0; i < n; ++i) {
    const std::string w = words[i % 8] + std::to_string(i % 5);
    text += nlohmann::json({{"instruction", "Reverse " + w}, {"output", std::string(w.rbegin(), w.rend())}}).dump() + "\n";
  }
  mt::test::write_file(file, text);
  return file;
}

fs::path write_config(const fs::path& dir, const std::string& alignment) {
  const fs::path data = write_pairs(dir, 64);
  const fs::path cfg = dir / "run.yaml";
  mt::test::write_file(cfg, mt::test::tiny_model_section() +
                                "data:\n  sources:\n    - path: " + data.string() +
                                "\n      format: alpaca\n  template: llama3\n  max_len: 96\n  eval_fraction: 0.2\n"
                                "optimizer:\n  lr: 0.003\n"
                                "training:\n  max_steps: 8\n  micro_batch_size: 2\n  grad_accum_steps: 2\n"
                                "  checkpoint_every: 2\n  seed: 5\n"
                                "logging:\n  progress: lines\n  log_every: 100\n  tensorboard: false\n" + alignment);
  return cfg;
}

mt::test::CommandResult train(const fs::path& cfg, const fs::path& run, const std::string& extra = "") {
  return mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run) + extra);
}

}  // namespace

TEST_CASE("train with alignment terms: metrics, scorer in checkpoints and final/, exact resume after a kill",
          "[alignment][train][resume]") {
  const fs::path dir = mt::test::temp_dir("align_train");
  const fs::path cfg = write_config(dir, "alignment:\n  lambda_align: 0.5\n  lambda_cons: 0.5\n  dim: 16\n");
  const fs::path straight = dir / "straight", killed = dir / "killed";
  auto r = train(cfg, straight);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("alignment scorer (new)") != std::string::npos);
  const auto lines = step_lines(straight);
  REQUIRE(lines.size() == 8);
  for (const auto& j : lines) {
    INFO(j.dump());
    REQUIRE(j["loss_align"].is_number());
    CHECK(j["loss_align"].get<double>() > 0);
    CHECK(j["loss_cons"].is_number());
    CHECK(j["align_acc"].get<double>() >= 0);
    CHECK(j["align_acc"].get<double>() <= 1);
    // loss_total is what was backpropagated: L_sft + 0.5 L_infonce + 0.5 L_cons.
    CHECK(j["loss_total"].get<double>() ==
          Approx(j["loss"].get<double>() + 0.5 * j["loss_align"].get<double>() + 0.5 * j["loss_cons"].get<double>()));
  }
  bool eval_seen = false;
  for (const auto& j : mt::test::json_lines(mt::test::read_file(straight / "metrics.jsonl")))
    if (j.contains("eval_loss")) {
      eval_seen = true;
      CHECK(j["eval_align_acc"].is_number());
    }
  CHECK(eval_seen);
  mt::SafetensorsFile ckpt(straight / "checkpoints" / "step_0000008" / "model.safetensors");
  CHECK(ckpt.contains(mt::kAlignmentInstructionProj));
  CHECK(ckpt.contains(mt::kAlignmentLogitScale));
  REQUIRE(fs::exists(straight / "final" / mt::kAlignmentScorerFile));
  // The temperature was learned: it moved from its initial 0.07.
  CHECK(std::abs(std::exp(-mt::SafetensorsFile(straight / "final" / mt::kAlignmentScorerFile)
                              .load(mt::kAlignmentLogitScale).item<double>()) - 0.07) > 1e-6);

  // Killed right after the checkpoint of step 4, then resumed: the same losses and weights.
  auto k = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(killed),
                                  "MAINTUNE_FAULT_KILL_AT=train.checkpoint:2");
  INFO(k.output);
  REQUIRE(k.exit_code == 137);
  REQUIRE(step_lines(killed).size() == 4);
  auto again = train(cfg, killed, " --resume auto");
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  CHECK(again.output.find("alignment scorer (from the checkpoint)") != std::string::npos);
  const auto got = step_lines(killed);
  REQUIRE(got.size() == lines.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(got[i]["loss"].get<double>() == lines[i]["loss"].get<double>());
    CHECK(got[i]["loss_align"].get<double>() == lines[i]["loss_align"].get<double>());
    CHECK(got[i]["loss_cons"].get<double>() == lines[i]["loss_cons"].get<double>());
  }
  for (const char* file : {"model.safetensors", mt::kAlignmentScorerFile}) {
    mt::SafetensorsFile a(straight / "final" / file), b(killed / "final" / file);
    for (const auto& info : a.header().tensors) {
      INFO(file << " " << info.name);
      CHECK(at::equal(a.load(info.name), b.load(info.name)));
    }
  }

  // maintune score --alignment prints the scorer's score; a pair the model was trained on scores
  // above the same instruction with another pair's response, on average.
  std::string lines_in;
  const char* words[] = {"apple0", "river1", "stone2", "cloud3"};
  for (const char* w : words) {
    const std::string s = w;
    lines_in += nlohmann::json({{"prompt", "Reverse " + s}, {"target", std::string(s.rbegin(), s.rend())}}).dump() + "\n";
  }
  mt::test::write_file(dir / "score.jsonl", lines_in);
  auto sc = mt::test::run_maintune("score --model " + mt::test::quoted(straight / "final") + " --data " +
                                   mt::test::quoted(dir / "score.jsonl") + " --alignment");
  INFO(sc.output);
  REQUIRE(sc.exit_code == 0);
  const auto out = mt::test::json_lines(sc.output);
  REQUIRE(out.size() == 4);
  for (const auto& j : out) CHECK(std::isfinite(j["alignment_score"].get<double>()));

  // A damaged scorer file is an error that names it; a model without one says what is missing.
  const std::string bytes = mt::test::read_file(straight / "final" / mt::kAlignmentScorerFile);
  mt::test::write_file(killed / "final" / mt::kAlignmentScorerFile, bytes.substr(0, bytes.size() / 2));
  auto bad = mt::test::run_maintune("score --model " + mt::test::quoted(killed / "final") + " --data " +
                                    mt::test::quoted(dir / "score.jsonl") + " --alignment");
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find(mt::kAlignmentScorerFile) != std::string::npos);
  fs::remove(killed / "final" / mt::kAlignmentScorerFile);
  auto missing = mt::test::run_maintune("score --model " + mt::test::quoted(killed / "final") + " --data " +
                                        mt::test::quoted(dir / "score.jsonl") + " --alignment");
  CHECK(missing.exit_code == 1);
  CHECK(missing.output.find("--alignment needs") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("train: alignment weights of 0 give the plain run's weights bit for bit - bad settings are clear errors",
          "[alignment][train]") {
  const fs::path dir = mt::test::temp_dir("align_zero");
  const fs::path plain_cfg = write_config(dir, "");
  auto plain = train(plain_cfg, dir / "plain");
  INFO(plain.output);
  REQUIRE(plain.exit_code == 0);
  const fs::path zero_cfg = write_config(dir, "alignment:\n  lambda_align: 0\n  lambda_cons: 0\n  dim: 16\n");
  auto zero = train(zero_cfg, dir / "zero");
  INFO(zero.output);
  REQUIRE(zero.exit_code == 0);
  CHECK_FALSE(fs::exists(dir / "zero" / "final" / mt::kAlignmentScorerFile));
  mt::SafetensorsFile a(dir / "plain" / "final" / "model.safetensors"), b(dir / "zero" / "final" / "model.safetensors");
  for (const auto& info : a.header().tensors) CHECK(at::equal(a.load(info.name), b.load(info.name)));
  const auto la = step_lines(dir / "plain"), lb = step_lines(dir / "zero");
  REQUIRE(la.size() == lb.size());
  for (size_t i = 0; i < la.size(); ++i) CHECK(la[i]["loss"].get<double>() == lb[i]["loss"].get<double>());

  // One pair per micro-batch has no negatives; train_on_prompt leaves no instruction apart.
  auto single = train(zero_cfg, dir / "single",
                      " --set alignment.lambda_align=1 --set data.packing=none --set training.micro_batch_size=1");
  CHECK(single.exit_code == 1);
  CHECK(single.output.find("at least 2 pairs per micro-batch") != std::string::npos);
  auto prompt = train(zero_cfg, dir / "prompt", " --set alignment.lambda_cons=1 --set data.train_on_prompt=true");
  CHECK(prompt.exit_code == 1);
  CHECK(prompt.output.find("train_on_prompt") != std::string::npos);
  auto neg = train(zero_cfg, dir / "neg", " --set alignment.lambda_align=-1");
  CHECK(neg.exit_code == 1);
  CHECK(neg.output.find("alignment.lambda_align") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("pipeline: the alignment scorer feeds the mutual filter as a rule and as a component", "[alignment][pipeline]") {
  const fs::path dir = mt::test::temp_dir("align_pipeline");
  const std::string base =
      "pipeline --config " + mt::test::quoted(mt::test::demo_config()) + mt::test::kSmallDemoSets +
      " --set 'filter.compare=[none, mutual, alignment]'"
      " --set filter.alignment_weight=0.5 --set 'final.models=[alignment]' --set alignment.lambda_align=0.5"
      " --set alignment.lambda_cons=0.5";
  // The scorer must be trained where the filter reads it (the last round's forward model).
  auto refused = mt::test::run_maintune(base + " --run-dir " + mt::test::quoted(dir / "refused"));
  CHECK(refused.exit_code == 1);
  CHECK(refused.output.find("alignment.stages includes rounds") != std::string::npos);

  const fs::path run = dir / "run";
  auto r = mt::test::run_maintune(base + " --set 'alignment.stages=[rounds, final]' --run-dir " + mt::test::quoted(run));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_FALSE(fs::exists(run / "stage1_seed_models" / "forward" / "final" / mt::kAlignmentScorerFile));
  CHECK(fs::exists(run / "stage2_round_1" / "forward" / "final" / mt::kAlignmentScorerFile));
  CHECK(fs::exists(run / "stage5_final" / "alignment" / "final" / mt::kAlignmentScorerFile));
  int64_t scored = 0, kept_align = 0;
  std::vector<double> align, mutual, fz, rz;
  for (const auto& j : mt::test::json_lines(mt::test::read_file(run / "stage4_filter" / "scored.jsonl"))) {
    if (!j["eligible"].get<bool>()) continue;
    ++scored;
    REQUIRE(j["alignment_score"].is_number());
    CHECK(j["scores"]["alignment"] == j["alignment_score"]);
    kept_align += j["kept"]["alignment"].get<bool>();
    align.push_back(j["alignment_score"].get<double>());
    mutual.push_back(j["scores"]["mutual"].get<double>());
    fz.push_back(j["forward_z"].get<double>());
    rz.push_back(j["reverse_z"].get<double>());
  }
  REQUIRE(scored > 10);
  CHECK(kept_align == mt::test::read_json(run / "stage4_filter" / "stage.json")["budget"].get<int64_t>());
  // mutual = (-(z_f + z_r) + 0.5 z_a) / 2.5, with z_a the z-score of the alignment scores.
  double mean = 0, sq = 0;
  for (double a : align) mean += a / static_cast<double>(align.size());
  for (double a : align) sq += (a - mean) * (a - mean) / static_cast<double>(align.size());
  for (size_t i = 0; i < align.size(); ++i) {
    const double za = (align[i] - mean) / std::sqrt(sq);
    CHECK(mutual[i] == Approx((-(fz[i] + rz[i]) + 0.5 * za) / 2.5).margin(1e-9));
  }
  const auto summary = mt::test::read_json(run / "report" / "summary.json");
  CHECK(summary["filter"]["alignment"]["kept"] == kept_align);
  CHECK(summary["final"]["alignment"]["accuracy"].is_number());
  fs::remove_all(dir);
}
