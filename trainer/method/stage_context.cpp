// The pipeline's shared context and the turns of a pair (see stage_context.h).
#include "trainer/method/stage_context.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "models/atomic_file.h"
#include "models/error.h"
#include "models/json_read.h"
#include "trainer/method/run_layout.h"

namespace mt::pipeline {

void log(const std::string& line) {
  std::fprintf(stderr, "pipeline: %s\n", line.c_str());
  std::fflush(stderr);
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

Turns forward_turns(const Context& ctx, const Pair& p, const std::string& system) {
  (void)ctx;
  return {system, p.instruction, p.response};
}
Turns reverse_turns(const Context& ctx, const Pair& p) {
  return {"", replace_all(ctx.config.pipeline.reverse_template, "{response}", p.response), p.instruction};
}

std::vector<ChatMessage> messages_of(const Turns& t, bool with_answer) {
  std::vector<ChatMessage> m;
  if (!t.system.empty()) m.push_back({"system", t.system});
  m.push_back({"user", t.user});
  if (with_answer) m.push_back({"assistant", t.assistant});
  return m;
}

std::vector<int64_t> generation_prompt(const Context& ctx, const Turns& t) {
  return render_chat(*ctx.tok, ctx.chat_template, messages_of(t, false), false, true).ids;
}

ScoreRequest score_request(const Context& ctx, const Turns& t) {
  ChatTurnSplit split = split_last_turn(*ctx.tok, ctx.chat_template, messages_of(t, true));
  ScoreRequest req;
  req.prompt_ids = std::move(split.prompt);
  req.target_ids = std::move(split.target);
  return req;
}

void write_conversations(const fs::path& file, const std::vector<Turns>& turns) {
  std::string text;
  for (const auto& t : turns) {
    json messages = json::array();
    for (const auto& m : messages_of(t, true)) messages.push_back({{"role", m.role}, {"content", m.content}});
    text += json{{"messages", messages}}.dump() + "\n";
  }
  write_text_file_atomically(file, text);
}

void write_pairs(const fs::path& file, const std::vector<Pair>& pairs) {
  std::string text;
  for (const auto& p : pairs) text += json{{"instruction", p.instruction}, {"response", p.response}}.dump() + "\n";
  write_text_file_atomically(file, text);
}

std::vector<Pair> load_pairs(const fs::path& file) {
  std::vector<Pair> pairs;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot read", file.string()));
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (trim(line).empty()) continue;
    const json j = parse_json_or_discarded(line);
    if (j.is_discarded() || !j.is_object() || !j.contains("instruction") || !j.contains("response"))
      throw Error(fmt::format("{}:{}: not an {{instruction, response}} record", file.string(), n));
    pairs.push_back({j["instruction"].get<std::string>(), j["response"].get<std::string>()});
  }
  return pairs;
}

LoadedModel load_for_inference(const Context& ctx, const fs::path& dir) {
  return load_model_dir(dir, ctx.device, ctx.dtype);
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(); }

fs::path stage1_dir(const Context& ctx) { return ctx.run_dir / kStage1SeedModels; }
fs::path round_dir(const Context& ctx, int64_t k) { return ctx.run_dir / round_stage(k); }
fs::path synthesis_dir(const Context& ctx) { return ctx.run_dir / kStage3Synthesis; }
fs::path filter_dir(const Context& ctx) { return ctx.run_dir / kStage4Filter; }
fs::path model_of_round(const Context& ctx, int64_t k, bool reverse) {
  const fs::path dir = k == 0 ? stage1_dir(ctx) : round_dir(ctx, k);
  return dir / (reverse ? "reverse" : "forward") / "final";
}
const std::vector<Pair>& heldout_pairs(const Context& ctx) { return ctx.eval.empty() ? ctx.seed : ctx.eval; }

}  // namespace mt::pipeline
