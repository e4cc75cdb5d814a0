// What every stage of the MAIN pipeline shares: the run's context (config, tokenizer, template,
// device, the seed / held-out / unlabeled data), the forward and reverse turns of a pair as the chat
// template renders them for training, generation and scoring, the stage folders, and small helpers
// (progress lines, throughput, pair and conversation files). Internal to trainer/method/.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "models/chat_template.h"
#include "models/checkpoint_dir.h"
#include "models/score.h"
#include "models/tokenizer.h"
#include "trainer/base/clock.h"
#include "trainer/config/config.h"

namespace mt::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

struct Pair {
  std::string instruction, response;
};

// One progress line on stderr, "pipeline: ...".
void log(const std::string& line);
std::string trim(const std::string& s);
std::string replace_all(std::string text, const std::string& from, const std::string& to);
json number_or_null(double v);

struct Throughput {
  double tokens = 0, seconds = 0;
  double per_second() const { return seconds > 0 ? tokens / seconds : 0.0; }
  json to_json() const {
    return json{{"tokens", tokens}, {"seconds", seconds}, {"tokens_per_s", seconds > 0 ? json(per_second()) : json()}};
  }
};

struct Context {
  PipelineConfig config;  // with the demo's paths filled in
  fs::path run_dir;
  fs::path tokenizer_path;
  std::string chat_template;
  std::optional<Tokenizer> tok;
  int64_t end_of_turn = -1;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  int64_t max_len = 2048;
  std::vector<Pair> seed, eval;
  std::vector<std::string> unlabeled;
  bool demo_checker = false;
};

struct Turns {
  std::string system, user, assistant;
};

// The forward model's turns (instruction -> response) and the reverse model's (the response in
// pipeline.reverse_template -> instruction).
Turns forward_turns(const Context& ctx, const Pair& p, const std::string& system = "");
Turns reverse_turns(const Context& ctx, const Pair& p);
std::vector<ChatMessage> messages_of(const Turns& t, bool with_answer);
std::vector<int64_t> generation_prompt(const Context& ctx, const Turns& t);
// The prompt and the target as training sees them: the target is the loss-masked assistant turn
// with its end-of-turn token.
ScoreRequest score_request(const Context& ctx, const Turns& t);

void write_conversations(const fs::path& file, const std::vector<Turns>& turns);
void write_pairs(const fs::path& file, const std::vector<Pair>& pairs);
std::vector<Pair> load_pairs(const fs::path& file);
LoadedModel load_for_inference(const Context& ctx, const fs::path& dir);

fs::path stage1_dir(const Context& ctx);
fs::path round_dir(const Context& ctx, int64_t k);
fs::path synthesis_dir(const Context& ctx);
fs::path filter_dir(const Context& ctx);
// The final/ model of round k (0 = the seed models of stage 1) in one direction.
fs::path model_of_round(const Context& ctx, int64_t k, bool reverse);
// The held-out pairs the losses are measured on: data.eval_sources, else the seed pairs (then
// they are training pairs, and the report says so).
const std::vector<Pair>& heldout_pairs(const Context& ctx);

}  // namespace mt::pipeline
