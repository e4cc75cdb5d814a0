// What the end-to-end runs of `maintune train` and `maintune pipeline` in the tests are given: the
// tiny model of configs/ trained from random weights, "reverse the word" instruction pairs, and the
// demo pipeline made small; and how they are read back (the step lines of metrics.jsonl).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace mt::test {

// configs/tiny_model: a HF config.json and tokenizer.json (byte-level BPE, LLaMA-3 specials).
inline std::filesystem::path tiny_model_dir() { return std::filesystem::path(MT_SOURCE_DIR) / "configs" / "tiny_model"; }

// The `model:` section of a run config training the tiny model from random fp32 weights on CPU.
inline std::string tiny_model_section() {
  return "model:\n  path: " + tiny_model_dir().string() + "\n  init: random\n  dtype: float32\n  device: cpu\n";
}

// `n` alpaca records "Reverse the word W number i" -> `answer_prefix` + W reversed + ".", the words
// taken in turn: responses the tiny model can learn within a few steps. Returns `file`.
inline std::filesystem::path write_reverse_pairs(const std::filesystem::path& file, const std::vector<std::string>& words,
                                                 const std::string& answer_prefix, int n) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    const std::string& w = words[static_cast<size_t>(i) % words.size()];
    const std::string rev(w.rbegin(), w.rend());
    text += nlohmann::json({{"instruction", "Reverse the word " + w + " number " + std::to_string(i)},
                            {"input", ""},
                            {"output", answer_prefix + rev + "."}})
                .dump() +
            "\n";
  }
  write_file(file, text);
  return file;
}

// The training-step lines (those with a "loss") of a run's metrics.jsonl.
inline std::vector<nlohmann::json> step_lines(const std::filesystem::path& run) {
  std::vector<nlohmann::json> out;
  for (const auto& j : json_lines(read_file(run / "metrics.jsonl")))
    if (j.contains("loss")) out.push_back(j);
  return out;
}

// configs/demo.yaml: the MAIN pipeline on its generated demo tasks.
inline std::filesystem::path demo_config() { return std::filesystem::path(MT_SOURCE_DIR) / "configs" / "demo.yaml"; }

// --set options making the demo small: a pipeline run of a few tens of seconds on 2 cores.
inline constexpr char kSmallDemoSets[] =
    " --set demo.seed_pairs=60 --set demo.unlabeled=96 --set demo.eval_pairs=24"
    " --set pipeline.seed_steps=24 --set rounds.steps=8 --set final.steps=16 --set training.checkpoint_every=8"
    " --set training.micro_batch_size=8 --set pipeline.chunk_size=16 --set pipeline.batch_size=16"
    " --set rounds.max_new_tokens=16 --set synthesis.max_new_tokens=16 --set pipeline.eval_max_new_tokens=12"
    " --set logging.progress=none";

}  // namespace mt::test
