// The MAIN pipeline (see pipeline.h): one function per stage, run in order, each skipped when its
// stage.json says it is complete. Stage trainings are ordinary run_training runs in sub-folders
// (resumable from their checkpoints); generation and scoring go through chunk_progress.
#include "trainer/method/pipeline.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "models/atomic_file.h"
#include "models/chat_template.h"
#include "models/checkpoint_dir.h"
#include "models/error.h"
#include "models/generate.h"
#include "models/hf_config.h"
#include "models/score.h"
#include "models/tokenizer.h"
#include "trainer/engine/alignment.h"
#include "trainer/method/alpha_schedule.h"
#include "trainer/method/chunk_progress.h"
#include "trainer/data/data_formats.h"
#include "trainer/data/data_loader.h"
#include "trainer/method/demo_tasks.h"
#include "trainer/dist/distributed.h"
#include "trainer/base/fault_injection.h"
#include "trainer/method/mutual_filter.h"
#include "trainer/method/pipeline_report.h"
#include "trainer/data/token_cache.h"
#include "trainer/method/tokenizer_training.h"
#include "trainer/loop/train.h"

namespace mt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Pair {
  std::string instruction, response;
};

void log(const std::string& line) {
  std::fprintf(stderr, "pipeline: %s\n", line.c_str());
  std::fflush(stderr);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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

json read_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot read", file.string()));
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(fmt::format("{}: not valid JSON", file.string()));
  return j;
}

// A stage is complete when its stage.json says so (written last, atomically).
bool stage_done(const fs::path& dir) {
  const fs::path file = dir / "stage.json";
  if (!fs::exists(file)) return false;
  const json j = read_json(file);
  return j.value("complete", false);
}

void mark_stage_done(const fs::path& dir, json record) {
  record["complete"] = true;
  write_text_file_atomically(dir / "stage.json", record.dump(2) + "\n");
}

uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0) {
  uint64_t state = seed ^ (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full);
  return splitmix64(state);
}

// ---------------------------------------------------------------------------------------------
// Reading the pipeline's inputs
// ---------------------------------------------------------------------------------------------

std::string source_format(const DataSourceConfig& source) {
  return source.format == "auto" ? detect_format(source.path) : source.format;
}

// The first user turn and the first assistant turn after it of each conversation.
std::vector<Pair> read_pairs(const std::vector<DataSourceConfig>& sources, const std::string& what, int64_t* skipped) {
  std::vector<Pair> pairs;
  for (const auto& source : sources) {
    if (is_unlabeled_format(source_format(source)))
      throw Error(fmt::format("{}: {} must be instruction-response pairs, not unlabeled text (format {})",
                              source.path.string(), what, source_format(source)));
    for (const auto& conv : read_conversations(source)) {
      std::string instruction, response;
      bool have_user = false;
      for (const auto& m : conv.messages) {
        if (m.role == "user" && !have_user) {
          instruction = m.content;
          have_user = true;
        } else if (m.role == "assistant" && have_user) {
          response = m.content;
          break;
        }
      }
      if (trim(instruction).empty() || trim(response).empty()) {
        if (skipped) ++*skipped;
        continue;
      }
      pairs.push_back({trim(instruction), trim(response)});
    }
  }
  return pairs;
}

// Unlabeled responses: text segments, or the responses of pair-format sources.
std::vector<std::string> read_unlabeled(const std::vector<DataSourceConfig>& sources) {
  std::vector<std::string> out;
  for (const auto& source : sources) {
    DataStats stats;
    if (is_unlabeled_format(source_format(source))) {
      for (auto& seg : read_text_segments(source, &stats))
        if (!trim(seg.text).empty()) out.push_back(trim(seg.text));
    } else {
      int64_t skipped = 0;
      for (auto& p : read_pairs({source}, "pipeline.unlabeled", &skipped)) out.push_back(p.response);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The run's shared state
// ---------------------------------------------------------------------------------------------

struct Throughput {
  double tokens = 0, seconds = 0;
  double per_second() const { return seconds > 0 ? tokens / seconds : 0.0; }
  json to_json() const {
    return json{{"tokens", tokens}, {"seconds", seconds}, {"tokens_per_s", seconds > 0 ? json(per_second()) : json()}};
  }
};

struct Context {
  TrainConfig config;  // with the demo's paths filled in
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

Turns forward_turns(const Context& ctx, const Pair& p, const std::string& system = "") {
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

// The prompt and the target as training sees them: the target is the loss-masked assistant turn
// with its end-of-turn token.
ScoreRequest score_request(const Context& ctx, const Turns& t) {
  const RenderedChat r = render_chat(*ctx.tok, ctx.chat_template, messages_of(t, true));
  size_t first = r.ids.size(), last = 0;
  for (size_t i = 0; i < r.ids.size(); ++i)
    if (r.loss_mask[i]) {
      first = std::min(first, i);
      last = i;
    }
  ScoreRequest req;
  if (first == r.ids.size()) {
    req.prompt_ids = r.ids;
    return req;
  }
  req.prompt_ids.assign(r.ids.begin(), r.ids.begin() + static_cast<std::ptrdiff_t>(first));
  req.target_ids.assign(r.ids.begin() + static_cast<std::ptrdiff_t>(first),
                        r.ids.begin() + static_cast<std::ptrdiff_t>(last) + 1);
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
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("instruction") || !j.contains("response"))
      throw Error(fmt::format("{}:{}: not an {{instruction, response}} record", file.string(), n));
    pairs.push_back({j["instruction"].get<std::string>(), j["response"].get<std::string>()});
  }
  return pairs;
}

LoadedModel load_for_inference(const Context& ctx, const fs::path& dir) {
  return load_model_dir(dir, ctx.device, ctx.dtype);
}

// A key that changes when the model or the inputs change: chunks of another run are never reused.
std::string work_key(const fs::path& model_dir, const std::vector<std::vector<int64_t>>& inputs, const std::string& settings) {
  Xxh64 h(0);
  for (const auto& v : inputs) {
    const int64_t n = static_cast<int64_t>(v.size());
    h.update(&n, sizeof n);
    h.update(v.data(), v.size() * sizeof(int64_t));
  }
  return fmt::format("{}|{:016x}|{}", model_dir.lexically_normal().string(), h.digest(), settings);
}

struct Generated {
  std::string text;
  int64_t tokens = 0;
  std::string finish;  // "stop" | "length" | "skipped"
};

// Chunked, resumable generation: prompts over the context budget are skipped (empty text).
std::vector<Generated> generate_chunked(const Context& ctx, const fs::path& dir, const fs::path& model_dir,
                                        const std::vector<std::vector<int64_t>>& prompts, SamplingConfig sampling,
                                        Throughput& tp, const std::string& what) {
  sampling.stop_ids = {ctx.end_of_turn};
  const std::string settings = fmt::format("greedy={} t={} top_k={} top_p={} seed={} max_new={} eot={}", sampling.greedy,
                                           sampling.temperature, sampling.top_k, sampling.top_p, sampling.seed,
                                           sampling.max_new_tokens, ctx.end_of_turn);
  ChunkPlan plan{static_cast<int64_t>(prompts.size()), ctx.config.pipeline.chunk_size, work_key(model_dir, prompts, settings)};
  std::optional<LoadedModel> model;
  const int64_t batch = ctx.config.pipeline.batch_size;
  const bool fault_empty = std::getenv("MAINTUNE_FAULT_EMPTY_GENERATIONS") != nullptr;
  const uint64_t base_seed = sampling.seed;
  run_chunks(dir, plan, 0, 1, [&](int64_t begin, int64_t end, int64_t chunk) {
    if (!model) model = load_for_inference(ctx, model_dir);
    c10::NoGradGuard no_grad;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<json> records;
    int64_t produced = 0;
    for (int64_t b = begin; b < end; b += batch) {
      std::vector<std::vector<int64_t>> batch_prompts;
      std::vector<int64_t> index;
      for (int64_t i = b; i < std::min(end, b + batch); ++i) {
        if (static_cast<int64_t>(prompts[static_cast<size_t>(i)].size()) + sampling.max_new_tokens > ctx.max_len) continue;
        batch_prompts.push_back(prompts[static_cast<size_t>(i)]);
        index.push_back(i);
      }
      std::vector<Generated> outs(static_cast<size_t>(std::min(end, b + batch) - b), Generated{"", 0, "skipped"});
      if (!batch_prompts.empty()) {
        SamplingConfig s = sampling;
        s.seed = mix_seed(base_seed, static_cast<uint64_t>(chunk), static_cast<uint64_t>(b));  // a function of the chunk, not of the run
        const auto ids = generate(model->model, batch_prompts, s);
        for (size_t j = 0; j < ids.size(); ++j) {
          std::vector<int64_t> out = ids[j];
          const bool stopped = !out.empty() && out.back() == ctx.end_of_turn;
          if (stopped) out.pop_back();
          produced += static_cast<int64_t>(ids[j].size());
          Generated g{trim(ctx.tok->decode(out, /*skip_special=*/true)), static_cast<int64_t>(ids[j].size()),
                      stopped ? "stop" : "length"};
          if (fault_empty) g.text.clear();
          outs[static_cast<size_t>(index[j] - b)] = g;
        }
      }
      for (const auto& g : outs) records.push_back({{"text", g.text}, {"tokens", g.tokens}, {"finish", g.finish}});
    }
    tp.tokens += static_cast<double>(produced);
    tp.seconds += seconds_since(t0);
    fault_point(what + ".chunk");
    return records;
  }, [&](int64_t done, int64_t total, int64_t) { log(fmt::format("{}: chunk {}/{}", what, done, total)); });
  std::vector<Generated> out;
  for (const auto& r : read_chunks(dir, plan))
    out.push_back({r.at("text").get<std::string>(), r.at("tokens").get<int64_t>(), r.at("finish").get<std::string>()});
  return out;
}

// Chunked, resumable scoring: mean NLL of each request's target (NaN when it has none or does not fit).
std::vector<NllResult> score_chunked(const Context& ctx, const fs::path& dir, const fs::path& model_dir,
                                     const std::vector<ScoreRequest>& requests, Throughput& tp, const std::string& what) {
  std::vector<std::vector<int64_t>> inputs;
  for (const auto& r : requests) {
    inputs.push_back(r.prompt_ids);
    inputs.push_back(r.target_ids);
  }
  ChunkPlan plan{static_cast<int64_t>(requests.size()), ctx.config.pipeline.chunk_size, work_key(model_dir, inputs, "nll")};
  std::optional<LoadedModel> model;
  run_chunks(dir, plan, 0, 1, [&](int64_t begin, int64_t end, int64_t) {
    if (!model) model = load_for_inference(ctx, model_dir);
    c10::NoGradGuard no_grad;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<ScoreRequest> fit;
    std::vector<int64_t> index;
    for (int64_t i = begin; i < end; ++i) {
      const auto& r = requests[static_cast<size_t>(i)];
      if (r.target_ids.empty() || static_cast<int64_t>(r.prompt_ids.size() + r.target_ids.size()) > ctx.max_len) continue;
      fit.push_back(r);
      index.push_back(i);
    }
    std::vector<json> records(static_cast<size_t>(end - begin), json{{"nll_sum", nullptr}, {"n", 0}});
    const auto results = score_nll(model->model, fit, ctx.config.pipeline.batch_size);
    int64_t tokens = 0;
    for (size_t j = 0; j < results.size(); ++j) {
      records[static_cast<size_t>(index[j] - begin)] = json{{"nll_sum", results[j].nll_sum}, {"n", results[j].n_tokens}};
      tokens += static_cast<int64_t>(fit[j].prompt_ids.size() + fit[j].target_ids.size());
    }
    tp.tokens += static_cast<double>(tokens);
    tp.seconds += seconds_since(t0);
    fault_point(what + ".chunk");
    return records;
  }, [&](int64_t done, int64_t total, int64_t) { log(fmt::format("{}: chunk {}/{}", what, done, total)); });
  std::vector<NllResult> out;
  for (const auto& r : read_chunks(dir, plan)) {
    NllResult n;
    n.n_tokens = r.at("n").get<int64_t>();
    n.nll_sum = r.at("nll_sum").is_null() ? std::nan("") : r.at("nll_sum").get<double>();
    out.push_back(n);
  }
  return out;
}

double mean_nll(const NllResult& r) { return r.n_tokens > 0 ? r.nll_sum / static_cast<double>(r.n_tokens) : std::nan(""); }

// Token-weighted mean NLL over requests (NaN when none scored).
double pooled_nll(const std::vector<NllResult>& results) {
  double sum = 0;
  int64_t n = 0;
  for (const auto& r : results)
    if (r.n_tokens > 0 && std::isfinite(r.nll_sum)) {
      sum += r.nll_sum;
      n += r.n_tokens;
    }
  return n > 0 ? sum / static_cast<double>(n) : std::nan("");
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(); }

// ---------------------------------------------------------------------------------------------
// Training a stage model
// ---------------------------------------------------------------------------------------------

struct TrainSource {
  fs::path file;
  bool synthetic = false;
};

// Trains (or resumes, or skips when done) one model of a stage; returns its final/ dir. `kind` is
// the stage as alignment.stages names it (seed, rounds, final). Throws StageStopped when the
// training was stopped by a signal.
struct StageStopped {};

fs::path train_stage_model(const Context& ctx, const fs::path& dir, const std::vector<TrainSource>& sources,
                           const fs::path& init_from, int64_t steps, double alpha, const std::string& kind,
                           const std::string& what) {
  const fs::path done_file = dir / "trained.json";
  if (fs::exists(done_file) && fs::exists(dir / "final" / "config.json")) return dir / "final";
  TrainConfig c = ctx.config;
  c.data.sources.clear();
  for (const auto& s : sources) {
    DataSourceConfig d;
    d.path = s.file;
    d.format = "messages";
    d.on_malformed = "fail";
    d.synthetic = s.synthetic;
    c.data.sources.push_back(d);
  }
  c.data.eval_sources.clear();
  c.data.eval_fraction = 0;
  c.data.template_name = ctx.chat_template;
  if (c.data.cache_dir.empty()) c.data.cache_dir = (ctx.run_dir / "cache").string();
  c.model.tokenizer = ctx.tokenizer_path.string();
  if (!init_from.empty()) {
    c.model.path = init_from.string();
    c.model.init = "pretrained";
  }
  c.training.max_steps = steps;
  c.training.synthetic_weight = alpha;
  // The alignment terms only in the stages alignment.stages names.
  const auto& stages = c.alignment.stages;
  if (std::find(stages.begin(), stages.end(), kind) == stages.end()) {
    c.alignment.lambda_align = 0;
    c.alignment.lambda_cons = 0;
  }
  c.output.run_dir = dir.string();
  c.output.export_final = true;
  log(fmt::format("{}: training {} steps{} -> {}", what, steps,
                  alpha >= 0 ? fmt::format(" (synthetic weight alpha = {:.3f})", alpha) : "", dir.string()));
  const TrainOutcome outcome = run_training(c, "auto");
  if (outcome.interrupted) throw StageStopped{};
  fault_point(what + ".trained");
  write_text_file_atomically(done_file, json{{"steps", outcome.step}, {"last_loss", outcome.last_loss}}.dump() + "\n");
  return dir / "final";
}

// Held-out mean NLL of a model in one direction over pairs (NaN when there are none).
double heldout_nll(const Context& ctx, const fs::path& model_dir, const std::vector<Pair>& pairs, bool reverse,
                   const fs::path& dir, Throughput& tp, const std::string& what) {
  if (pairs.empty()) return std::nan("");
  std::vector<ScoreRequest> reqs;
  for (const auto& p : pairs) reqs.push_back(score_request(ctx, reverse ? reverse_turns(ctx, p) : forward_turns(ctx, p)));
  return pooled_nll(score_chunked(ctx, dir, model_dir, reqs, tp, what));
}

// ---------------------------------------------------------------------------------------------
// The stages
// ---------------------------------------------------------------------------------------------

fs::path stage1_dir(const Context& ctx) { return ctx.run_dir / "stage1_seed_models"; }
fs::path round_dir(const Context& ctx, int64_t k) { return ctx.run_dir / fmt::format("stage2_round_{}", k); }
fs::path model_of_round(const Context& ctx, int64_t k, bool reverse) {
  const fs::path dir = k == 0 ? stage1_dir(ctx) : round_dir(ctx, k);
  return dir / (reverse ? "reverse" : "forward") / "final";
}
// The held-out pairs the losses are measured on: data.eval_sources, else the seed pairs (then
// they are training pairs, and the report says so).
const std::vector<Pair>& heldout_pairs(const Context& ctx) { return ctx.eval.empty() ? ctx.seed : ctx.eval; }

void run_stage0_demo(Context& ctx) {
  const fs::path dir = ctx.run_dir / "stage0_demo";
  const auto& d = ctx.config.demo;
  if (!stage_done(dir)) {
    fs::create_directories(dir);
    const auto t0 = std::chrono::steady_clock::now();
    DemoSuiteOptions o;
    o.seed = static_cast<uint64_t>(d.seed);
    o.seed_pairs = d.seed_pairs;
    o.unlabeled = d.unlabeled;
    o.eval_pairs = d.eval_pairs;
    o.noise_fraction = d.noise_fraction;
    const DemoSuite suite = make_demo_suite(o);
    auto pairs_of = [](const std::vector<DemoPair>& v) {
      std::vector<Pair> out;
      for (const auto& p : v) out.push_back({p.instruction, p.response});
      return out;
    };
    write_pairs(dir / "seed.jsonl", pairs_of(suite.seed));
    write_pairs(dir / "eval.jsonl", pairs_of(suite.eval));
    std::string unlabeled, truth;
    int64_t noise = 0;
    for (const auto& p : suite.unlabeled) {
      unlabeled += json{{"text", p.response}}.dump() + "\n";
      truth += json{{"response", p.response}, {"source_instruction", p.instruction}, {"family", p.family}}.dump() + "\n";
      noise += p.family == "noise";
    }
    write_text_file_atomically(dir / "unlabeled.jsonl", unlabeled);
    write_text_file_atomically(dir / "unlabeled_truth.jsonl", truth);
    // The tokenizer learns the demo's text and the pipeline's own prompt text.
    std::vector<std::string> texts;
    for (const auto* v : {&suite.seed, &suite.unlabeled, &suite.eval})
      for (const auto& p : *v) {
        if (!p.instruction.empty()) texts.push_back(p.instruction);
        texts.push_back(p.response);
      }
    for (const auto& t : {ctx.config.pipeline.reverse_template, ctx.config.filter.self_curation_template,
                          ctx.config.final_tuning.seed_tag, ctx.config.final_tuning.synthetic_tag})
      texts.push_back(t);
    SentencePieceTrainOptions so;
    so.vocab_size = load_hf_config(fs::path(ctx.config.model.path) / "config.json").vocab_size;
    so.seed = static_cast<uint64_t>(d.seed);
    so.user_defined_symbols = {"[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"};
    train_sentencepiece_tokenizer(texts, so, dir / "tokenizer");
    mark_stage_done(dir, json{{"stage", "demo"},
                              {"seed_pairs", suite.seed.size()},
                              {"unlabeled", suite.unlabeled.size()},
                              {"unlabeled_noise", noise},
                              {"eval_pairs", suite.eval.size()},
                              {"tokenizer_vocab", so.vocab_size},
                              {"families", demo_task_families()},
                              {"seconds", seconds_since(t0)}});
    log(fmt::format("stage 0: demo suite: {} seed pairs, {} unlabeled responses ({} noise), {} held-out pairs, "
                    "tokenizer of {} pieces",
                    suite.seed.size(), suite.unlabeled.size(), noise, suite.eval.size(), so.vocab_size));
  }
  auto source = [](const fs::path& p, const std::string& format) {
    DataSourceConfig s;
    s.path = p;
    s.format = format;
    s.min_chars = 1;
    return s;
  };
  ctx.config.data.sources = {source(dir / "seed.jsonl", "prompt_response")};
  ctx.config.data.sources[0].prompt_field = "instruction";
  ctx.config.data.eval_sources = {ctx.config.data.sources[0]};
  ctx.config.data.eval_sources[0].path = dir / "eval.jsonl";
  ctx.config.pipeline.unlabeled = {source(dir / "unlabeled.jsonl", "text_jsonl")};
  ctx.config.model.tokenizer = (dir / "tokenizer").string();
}

void run_stage1(const Context& ctx) {
  const fs::path dir = stage1_dir(ctx);
  if (stage_done(dir)) return;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Turns> fwd, rev;
  for (const auto& p : ctx.seed) {
    fwd.push_back(forward_turns(ctx, p));
    rev.push_back(reverse_turns(ctx, p));
  }
  write_conversations(dir / "forward_train.jsonl", fwd);
  write_conversations(dir / "reverse_train.jsonl", rev);
  const int64_t steps = ctx.config.pipeline.seed_steps;
  const fs::path f = train_stage_model(ctx, dir / "forward", {{dir / "forward_train.jsonl", false}}, {}, steps, -1, "seed",
                                       "stage1.forward");
  const fs::path r = train_stage_model(ctx, dir / "reverse", {{dir / "reverse_train.jsonl", false}}, {}, steps, -1, "seed",
                                       "stage1.reverse");
  Throughput tp;
  const double lf = heldout_nll(ctx, f, heldout_pairs(ctx), false, dir / "heldout_forward", tp, "stage1.heldout");
  const double lr = heldout_nll(ctx, r, heldout_pairs(ctx), true, dir / "heldout_reverse", tp, "stage1.heldout");
  log(fmt::format("stage 1: seed models trained; held-out mean NLL forward {:.4f}, reverse {:.4f}", lf, lr));
  mark_stage_done(dir, json{{"stage", "seed_models"},
                            {"seed_pairs", ctx.seed.size()},
                            {"steps", steps},
                            {"heldout_nll", {{"forward", number_or_null(lf)}, {"reverse", number_or_null(lr)}}},
                            {"scoring", tp.to_json()},
                            {"seconds", seconds_since(t0)}});
}

void run_round(const Context& ctx, int64_t k) {
  const fs::path dir = round_dir(ctx, k);
  if (stage_done(dir)) return;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto& rc = ctx.config.rounds;
  const fs::path prev_f = model_of_round(ctx, k - 1, false), prev_r = model_of_round(ctx, k - 1, true);
  SamplingConfig s;
  s.greedy = false;
  s.temperature = rc.temperature;
  s.top_p = rc.top_p;
  s.max_new_tokens = rc.max_new_tokens;
  s.seed = mix_seed(static_cast<uint64_t>(ctx.config.training.seed), 0x726f756e64ull, static_cast<uint64_t>(k));
  // The reverse model writes instructions for the seed responses, the forward model responses for
  // the seed instructions.
  std::vector<std::vector<int64_t>> rev_prompts, fwd_prompts;
  for (const auto& p : ctx.seed) {
    Turns rt = reverse_turns(ctx, p);
    rev_prompts.push_back(generation_prompt(ctx, rt));
    fwd_prompts.push_back(generation_prompt(ctx, forward_turns(ctx, p)));
  }
  Throughput gen, score;
  const auto instr_hat = generate_chunked(ctx, dir / "gen_instructions", prev_r, rev_prompts, s, gen,
                                          fmt::format("stage2.round{}.instructions", k));
  const auto resp_hat = generate_chunked(ctx, dir / "gen_responses", prev_f, fwd_prompts, s, gen,
                                         fmt::format("stage2.round{}.responses", k));
  std::vector<Pair> syn_forward, syn_reverse;  // (I_hat, R) for the forward model; (I, R_hat) for the reverse
  int64_t empty_instr = 0, empty_resp = 0;
  for (size_t i = 0; i < ctx.seed.size(); ++i) {
    if (instr_hat[i].text.empty()) ++empty_instr;
    else syn_forward.push_back({instr_hat[i].text, ctx.seed[i].response});
    if (resp_hat[i].text.empty()) ++empty_resp;
    else syn_reverse.push_back({ctx.seed[i].instruction, resp_hat[i].text});
  }
  write_pairs(dir / "synthetic_forward.jsonl", syn_forward);
  write_pairs(dir / "synthetic_reverse.jsonl", syn_reverse);
  // alpha_k per model; adaptive compares the model's loss on its synthetic pairs with held-out real pairs.
  double alpha_f = 0, alpha_r = 0, syn_nll_f = std::nan(""), syn_nll_r = std::nan(""), real_nll_f = std::nan(""),
         real_nll_r = std::nan("");
  if (rc.alpha_schedule == "adaptive") {
    real_nll_f = heldout_nll(ctx, prev_f, heldout_pairs(ctx), false, dir / "adaptive_real_forward", score, "stage2.adaptive");
    real_nll_r = heldout_nll(ctx, prev_r, heldout_pairs(ctx), true, dir / "adaptive_real_reverse", score, "stage2.adaptive");
    syn_nll_f = heldout_nll(ctx, prev_f, syn_forward, false, dir / "adaptive_syn_forward", score, "stage2.adaptive");
    syn_nll_r = heldout_nll(ctx, prev_r, syn_reverse, true, dir / "adaptive_syn_reverse", score, "stage2.adaptive");
  }
  alpha_f = round_alpha(rc, k, real_nll_f, syn_nll_f);
  alpha_r = round_alpha(rc, k, real_nll_r, syn_nll_r);
  std::vector<Turns> fwd_syn, rev_syn;
  for (const auto& p : syn_forward) fwd_syn.push_back(forward_turns(ctx, p));
  for (const auto& p : syn_reverse) rev_syn.push_back(reverse_turns(ctx, p));
  std::vector<TrainSource> fsrc{{stage1_dir(ctx) / "forward_train.jsonl", false}};
  std::vector<TrainSource> rsrc{{stage1_dir(ctx) / "reverse_train.jsonl", false}};
  if (!fwd_syn.empty()) {
    write_conversations(dir / "forward_synthetic_train.jsonl", fwd_syn);
    fsrc.push_back({dir / "forward_synthetic_train.jsonl", true});
  }
  if (!rev_syn.empty()) {
    write_conversations(dir / "reverse_synthetic_train.jsonl", rev_syn);
    rsrc.push_back({dir / "reverse_synthetic_train.jsonl", true});
  }
  if (fwd_syn.empty() || rev_syn.empty())
    log(fmt::format("stage 2 round {}: warning: {} synthetic instructions and {} synthetic responses were empty; a "
                    "model without synthetic pairs retrains on the seed pairs only",
                    k, empty_instr, empty_resp));
  const bool restart = rc.init == "restart";
  const fs::path f = train_stage_model(ctx, dir / "forward", fsrc, restart ? fs::path() : prev_f, rc.steps,
                                       fwd_syn.empty() ? -1.0 : alpha_f, "rounds", fmt::format("stage2.round{}.forward", k));
  const fs::path r = train_stage_model(ctx, dir / "reverse", rsrc, restart ? fs::path() : prev_r, rc.steps,
                                       rev_syn.empty() ? -1.0 : alpha_r, "rounds", fmt::format("stage2.round{}.reverse", k));
  const double lf = heldout_nll(ctx, f, heldout_pairs(ctx), false, dir / "heldout_forward", score, "stage2.heldout");
  const double lr = heldout_nll(ctx, r, heldout_pairs(ctx), true, dir / "heldout_reverse", score, "stage2.heldout");
  log(fmt::format("stage 2 round {}: alpha forward {:.3f}, reverse {:.3f}; held-out mean NLL forward {:.4f}, reverse "
                  "{:.4f}; generation {:.0f} tok/s",
                  k, alpha_f, alpha_r, lf, lr, gen.per_second()));
  mark_stage_done(dir, json{{"stage", "mutual_round"},
                            {"round", k},
                            {"alpha", {{"forward", alpha_f}, {"reverse", alpha_r}}},
                            {"adaptive_inputs",
                             {{"real_nll_forward", number_or_null(real_nll_f)}, {"synthetic_nll_forward", number_or_null(syn_nll_f)},
                              {"real_nll_reverse", number_or_null(real_nll_r)}, {"synthetic_nll_reverse", number_or_null(syn_nll_r)}}},
                            {"synthetic_pairs", {{"forward", syn_forward.size()}, {"reverse", syn_reverse.size()}}},
                            {"empty", {{"instructions", empty_instr}, {"responses", empty_resp}}},
                            {"init", rc.init},
                            {"steps", rc.steps},
                            {"heldout_nll", {{"forward", number_or_null(lf)}, {"reverse", number_or_null(lr)}}},
                            {"generation", gen.to_json()},
                            {"scoring", score.to_json()},
                            {"seconds", seconds_since(t0)}});
}

fs::path synthesis_dir(const Context& ctx) { return ctx.run_dir / "stage3_synthesis"; }
fs::path filter_dir(const Context& ctx) { return ctx.run_dir / "stage4_filter"; }

void run_stage3(const Context& ctx) {
  const fs::path dir = synthesis_dir(ctx);
  if (stage_done(dir)) return;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto& sc = ctx.config.synthesis;
  const fs::path reverse_model = model_of_round(ctx, ctx.config.rounds.count, true);
  const int64_t n = sc.candidates;
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& r : ctx.unlabeled) {
    const auto ids = generation_prompt(ctx, reverse_turns(ctx, {"", r}));
    for (int64_t c = 0; c < n; ++c) prompts.push_back(ids);
  }
  SamplingConfig s;
  s.greedy = false;
  s.temperature = sc.temperature;
  s.top_p = sc.top_p;
  s.top_k = sc.top_k;
  s.max_new_tokens = sc.max_new_tokens;
  s.seed = mix_seed(static_cast<uint64_t>(ctx.config.training.seed), 0x73796e7468ull);
  Throughput gen;
  const auto out = generate_chunked(ctx, dir / "chunks", reverse_model, prompts, s, gen, "stage3.synthesis");
  std::string text;
  int64_t empty = 0, skipped = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].finish == "skipped") ++skipped;
    else if (out[i].text.empty()) ++empty;
    text += json{{"id", i},
                 {"response_id", static_cast<int64_t>(i) / n},
                 {"candidate", static_cast<int64_t>(i) % n},
                 {"instruction", out[i].text},
                 {"response", ctx.unlabeled[i / static_cast<size_t>(n)]},
                 {"finish_reason", out[i].finish}}
                .dump() +
            "\n";
  }
  write_text_file_atomically(dir / "candidates.jsonl", text);
  const int64_t usable = static_cast<int64_t>(out.size()) - empty - skipped;
  log(fmt::format("stage 3: {} candidates for {} unlabeled responses ({} empty, {} over data.max_len); generation "
                  "{:.0f} tok/s",
                  out.size(), ctx.unlabeled.size(), empty, skipped, gen.per_second()));
  if (usable == 0)
    throw Error(fmt::format("stage 3 (synthesis): the reverse model {} wrote no usable instruction for the {} unlabeled "
                            "responses ({} empty, {} too long for data.max_len); train it longer "
                            "(pipeline.seed_steps, rounds.steps) or check pipeline.reverse_template. The candidates are "
                            "in {}",
                            reverse_model.string(), ctx.unlabeled.size(), empty, skipped, (dir / "candidates.jsonl").string()));
  mark_stage_done(dir, json{{"stage", "synthesis"},
                            {"reverse_model", reverse_model.string()},
                            {"unlabeled", ctx.unlabeled.size()},
                            {"candidates", out.size()},
                            {"empty", empty},
                            {"too_long", skipped},
                            {"generation", gen.to_json()},
                            {"seconds", seconds_since(t0)}});
}

std::vector<std::string> compared_rules(const TrainConfig& c) {
  std::vector<std::string> rules = c.filter.compare;
  if (std::find(rules.begin(), rules.end(), c.filter.rule) == rules.end()) rules.insert(rules.begin(), c.filter.rule);
  return rules;
}

bool rule_used(const TrainConfig& c, const std::string& rule) {
  const auto rules = compared_rules(c);
  return std::find(rules.begin(), rules.end(), rule) != rules.end();
}

void run_stage4(const Context& ctx) {
  const fs::path dir = filter_dir(ctx);
  if (stage_done(dir)) return;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto& fc = ctx.config.filter;
  std::vector<json> cands;
  {
    std::ifstream in(synthesis_dir(ctx) / "candidates.jsonl", std::ios::binary);
    std::string line;
    while (std::getline(in, line)) cands.push_back(json::parse(line));
  }
  const size_t n = cands.size();
  const fs::path fwd_model = model_of_round(ctx, ctx.config.rounds.count, false);
  const fs::path rev_model = model_of_round(ctx, ctx.config.rounds.count, true);
  // Eligibility: a non-empty instruction, not a repeat of an earlier candidate or of a seed pair.
  std::vector<CandidateScores> scores(n);
  std::vector<std::string> drop_reason(n);
  std::set<std::string> seen;
  for (const auto& p : ctx.seed) seen.insert(dedupe_key(p.instruction, p.response) + "\x1eseed");
  std::set<std::string> seen_candidates;
  for (size_t i = 0; i < n; ++i) {
    const std::string instr = cands[i]["instruction"], resp = cands[i]["response"];
    const std::string key = dedupe_key(instr, resp);
    if (cands[i]["finish_reason"] == "skipped") drop_reason[i] = "too_long";
    else if (trim(instr).empty()) drop_reason[i] = "empty";
    else if (fc.drop_seed_pairs && seen.count(key + "\x1eseed")) drop_reason[i] = "seed_pair";
    else if (fc.dedupe && !seen_candidates.insert(key).second) drop_reason[i] = "duplicate";
    scores[i].eligible = drop_reason[i].empty();
  }
  // Both directions score every eligible candidate (the others get no score).
  std::vector<ScoreRequest> fwd_req(n), rev_req(n);
  for (size_t i = 0; i < n; ++i) {
    if (!scores[i].eligible) continue;
    const Pair p{cands[i]["instruction"], cands[i]["response"]};
    fwd_req[i] = score_request(ctx, forward_turns(ctx, p));
    rev_req[i] = score_request(ctx, reverse_turns(ctx, p));
  }
  Throughput tp;
  const auto fwd = score_chunked(ctx, dir / "forward_scores", fwd_model, fwd_req, tp, "stage4.forward");
  const auto rev = score_chunked(ctx, dir / "reverse_scores", rev_model, rev_req, tp, "stage4.reverse");
  for (size_t i = 0; i < n; ++i) {
    scores[i].forward_nll = mean_nll(fwd[i]);
    scores[i].reverse_nll = mean_nll(rev[i]);
  }
  // self_curation: the seed forward model rates each pair; the expected rating over "1".."5".
  std::vector<double> rating(n, std::nan(""));
  if (rule_used(ctx.config, "self_curation")) {
    std::vector<ScoreRequest> req;
    for (size_t i = 0; i < n; ++i)
      for (int d = 1; d <= 5; ++d) {
        if (!scores[i].eligible) {
          req.emplace_back();
          continue;
        }
        std::string user = replace_all(fc.self_curation_template, "{instruction}", cands[i]["instruction"].get<std::string>());
        user = replace_all(user, "{response}", cands[i]["response"].get<std::string>());
        ScoreRequest r;
        r.prompt_ids = generation_prompt(ctx, {"", user, ""});
        r.target_ids = ctx.tok->encode(std::to_string(d));
        req.push_back(r);
      }
    const auto res = score_chunked(ctx, dir / "self_curation_scores", model_of_round(ctx, 0, false), req, tp,
                                   "stage4.self_curation");
    for (size_t i = 0; i < n; ++i) {
      if (!scores[i].eligible) continue;
      double lse_max = -HUGE_VAL;
      std::array<double, 5> lp{};
      for (int d = 0; d < 5; ++d) {
        const auto& r = res[i * 5 + static_cast<size_t>(d)];
        lp[static_cast<size_t>(d)] = std::isfinite(r.nll_sum) ? -r.nll_sum : -HUGE_VAL;
        lse_max = std::max(lse_max, lp[static_cast<size_t>(d)]);
      }
      if (!std::isfinite(lse_max)) continue;
      double z = 0, e = 0;
      for (int d = 0; d < 5; ++d) {
        const double w = std::exp(lp[static_cast<size_t>(d)] - lse_max);
        z += w;
        e += w * (d + 1);
      }
      rating[i] = e / z;
    }
  }
  for (size_t i = 0; i < n; ++i) scores[i].self_rating = rating[i];
  // The learned alignment scorer of the last forward model: s(I, R) of each eligible candidate, the
  // instruction and the response encoded apart exactly as in training (prompt and target tokens).
  std::vector<double> align(n, std::nan(""));
  const bool alignment_used = rule_used(ctx.config, "alignment") || fc.alignment_weight > 0;
  if (alignment_used) {
    const LoadedModel fm = load_for_inference(ctx, fwd_model);
    const auto scorer = load_alignment_scorer(fwd_model, fm.model.config.hidden_size, ctx.device);
    if (!scorer)
      throw Error(fmt::format("{}: no {} (the filter uses the alignment scorer: alignment.stages must include the "
                              "stage that trains this model, with a positive alignment weight)",
                              fwd_model.string(), kAlignmentScorerFile));
    std::vector<std::vector<int64_t>> instr, resp;
    std::vector<size_t> which;
    for (size_t i = 0; i < n; ++i)
      if (scores[i].eligible && !fwd_req[i].target_ids.empty()) {
        instr.push_back(fwd_req[i].prompt_ids);
        resp.push_back(fwd_req[i].target_ids);
        which.push_back(i);
      }
    const auto ta = std::chrono::steady_clock::now();
    const auto s = alignment_pair_scores(fm.model, *scorer, instr, resp, ctx.config.pipeline.batch_size);
    for (size_t k = 0; k < which.size(); ++k) align[which[k]] = s[k];
    log(fmt::format("stage 4: alignment scorer on {} candidates in {:.1f} s", which.size(), seconds_since(ta)));
  }
  for (size_t i = 0; i < n; ++i) scores[i].alignment_score = align[i];

  FilterOptions fo;
  fo.keep = fc.keep;
  fo.threshold = fc.threshold;
  fo.top_k = fc.top_k;
  fo.quantile = fc.quantile;
  fo.forward_weight = fc.forward_weight;
  fo.reverse_weight = fc.reverse_weight;
  fo.alignment_weight = fc.alignment_weight;
  fo.normalize = fc.normalize;
  fo.seed = static_cast<uint64_t>(ctx.config.training.seed);
  const auto rules = compared_rules(ctx.config);
  std::map<std::string, std::vector<double>> rule_score;
  for (const auto& rule : rules) rule_score[rule] = rule_scores(rule, scores, fo);
  const int64_t budget = keep_count(rule_score[fc.rule], scores, fo);
  std::map<std::string, std::vector<bool>> kept;
  for (const auto& rule : rules) {
    std::vector<bool> k(n, false);
    for (const int64_t i : select_best(rule_score[rule], scores, budget)) k[static_cast<size_t>(i)] = true;
    kept[rule] = k;
  }
  std::vector<bool> eligible(n);
  for (size_t i = 0; i < n; ++i) eligible[i] = scores[i].eligible;
  std::vector<double> fz(n), rz(n);
  {
    std::vector<double> f(n), r(n);
    for (size_t i = 0; i < n; ++i) {
      f[i] = scores[i].forward_nll;
      r[i] = scores[i].reverse_nll;
    }
    fz = zscores(f, eligible);
    rz = zscores(r, eligible);
  }
  // Every candidate with every score component, kept or not.
  std::string text;
  std::map<std::string, std::vector<Pair>> kept_pairs;
  std::map<std::string, int64_t> kept_correct;
  int64_t eligible_count = 0, eligible_correct = 0;
  std::map<std::string, int64_t> drops;
  for (size_t i = 0; i < n; ++i) {
    const Pair p{cands[i]["instruction"], cands[i]["response"]};
    json rec{{"id", cands[i]["id"]},
             {"response_id", cands[i]["response_id"]},
             {"instruction", p.instruction},
             {"response", p.response},
             {"eligible", scores[i].eligible},
             {"drop_reason", drop_reason[i].empty() ? json() : json(drop_reason[i])},
             {"forward_nll", number_or_null(scores[i].forward_nll)},
             {"reverse_nll", number_or_null(scores[i].reverse_nll)},
             {"forward_tokens", fwd[i].n_tokens},
             {"reverse_tokens", rev[i].n_tokens},
             {"forward_z", scores[i].eligible ? number_or_null(fz[i]) : json()},
             {"reverse_z", scores[i].eligible ? number_or_null(rz[i]) : json()},
             {"self_rating", number_or_null(rating[i])},
             {"alignment_score", number_or_null(align[i])}};
    json rs = json::object(), ks = json::object();
    for (const auto& rule : rules) {
      rs[rule] = scores[i].eligible ? number_or_null(rule_score[rule][i]) : json();
      ks[rule] = static_cast<bool>(kept[rule][i]);
    }
    rec["scores"] = rs;
    rec["kept"] = ks;
    bool correct = false;
    if (ctx.demo_checker) {
      correct = check_demo_pair(p.instruction, p.response);
      rec["correct"] = correct;
    }
    if (!drop_reason[i].empty()) ++drops[drop_reason[i]];
    if (scores[i].eligible) {
      ++eligible_count;
      eligible_correct += correct;
    }
    for (const auto& rule : rules)
      if (kept[rule][i]) {
        kept_pairs[rule].push_back(p);
        kept_correct[rule] += correct;
      }
    text += rec.dump() + "\n";
  }
  write_text_file_atomically(dir / "scored.jsonl", text);
  json per_rule = json::object();
  for (const auto& rule : rules) {
    write_pairs(dir / fmt::format("kept_{}.jsonl", rule), kept_pairs[rule]);
    const int64_t k = static_cast<int64_t>(kept_pairs[rule].size());
    per_rule[rule] = {{"kept", k},
                      {"precision", ctx.demo_checker && k > 0 ? json(static_cast<double>(kept_correct[rule]) / static_cast<double>(k)) : json()}};
  }
  json record{{"stage", "filter"},
              {"rule", fc.rule},
              {"keep", fc.keep},
              {"budget", budget},
              {"candidates", n},
              {"eligible", eligible_count},
              {"dropped", drops},
              {"eligible_precision", ctx.demo_checker && eligible_count > 0
                                         ? json(static_cast<double>(eligible_correct) / static_cast<double>(eligible_count))
                                         : json()},
              {"rules", per_rule},
              {"forward_model", fwd_model.string()},
              {"reverse_model", rev_model.string()},
              {"scoring", tp.to_json()},
              {"seconds", seconds_since(t0)}};
  std::string line;
  for (const auto& rule : rules)
    line += fmt::format(" {} {}{}", rule, per_rule[rule]["kept"].get<int64_t>(),
                        per_rule[rule]["precision"].is_null() ? "" : fmt::format(" (precision {:.3f})", per_rule[rule]["precision"].get<double>()));
  log(fmt::format("stage 4: {} eligible of {} candidates; kept:{}; scoring {:.0f} tok/s", eligible_count, n, line,
                  tp.per_second()));
  if (budget == 0)
    log("stage 4: warning: the filter keeps no pair (filter.keep / threshold / top_k / quantile); the final models "
        "train on the seed pairs only");
  mark_stage_done(dir, record);
}

// Exact match of generated responses against the held-out pairs: the demo checker when on, else
// the reference response (whitespace-trimmed).
json evaluate_accuracy(const Context& ctx, const fs::path& model_dir, const fs::path& dir, const std::string& system,
                       const std::string& what) {
  if (ctx.eval.empty()) return json();
  std::vector<std::vector<int64_t>> prompts;
  for (const auto& p : ctx.eval) prompts.push_back(generation_prompt(ctx, forward_turns(ctx, p, system)));
  SamplingConfig s;
  s.greedy = true;
  s.max_new_tokens = ctx.config.pipeline.eval_max_new_tokens;
  Throughput gen;
  const auto out = generate_chunked(ctx, dir, model_dir, prompts, s, gen, what);
  int64_t correct = 0;
  std::string samples;
  for (size_t i = 0; i < out.size(); ++i) {
    const bool ok = ctx.demo_checker ? check_demo_pair(ctx.eval[i].instruction, out[i].text)
                                     : out[i].text == ctx.eval[i].response;
    correct += ok;
    samples += json{{"instruction", ctx.eval[i].instruction}, {"reference", ctx.eval[i].response},
                    {"generated", out[i].text}, {"correct", ok}}.dump() + "\n";
  }
  write_text_file_atomically(dir / "predictions.jsonl", samples);
  return json{{"accuracy", static_cast<double>(correct) / static_cast<double>(out.size())},
              {"correct", correct},
              {"total", out.size()},
              {"generation", gen.to_json()}};
}

void run_stage5(const Context& ctx) {
  const fs::path dir = ctx.run_dir / "stage5_final";
  if (stage_done(dir)) return;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto& fin = ctx.config.final_tuning;
  const std::string seed_system = fin.source_tags ? fin.seed_tag : "";
  std::vector<Turns> seed_turns;
  for (const auto& p : ctx.seed) seed_turns.push_back(forward_turns(ctx, p, seed_system));
  write_conversations(dir / "seed_train.jsonl", seed_turns);
  json models = json::object();
  Throughput tp;
  for (const auto& rule : fin.models) {
    const auto kept = load_pairs(filter_dir(ctx) / fmt::format("kept_{}.jsonl", rule));
    std::vector<Turns> syn;
    for (const auto& p : kept) syn.push_back(forward_turns(ctx, p, fin.source_tags ? fin.synthetic_tag : ""));
    std::vector<TrainSource> sources{{dir / "seed_train.jsonl", false}};
    if (!syn.empty()) {
      write_conversations(dir / fmt::format("synthetic_{}.jsonl", rule), syn);
      sources.push_back({dir / fmt::format("synthetic_{}.jsonl", rule), true});
    }
    const fs::path model = train_stage_model(ctx, dir / rule, sources, {}, fin.steps, syn.empty() ? -1.0 : fin.alpha, "final",
                                             fmt::format("stage5.{}", rule));
    json m{{"rule", rule}, {"synthetic_pairs", kept.size()}, {"seed_pairs", ctx.seed.size()}, {"steps", fin.steps}};
    m["heldout_nll"] = number_or_null(heldout_nll(ctx, model, ctx.eval, false, dir / rule / "heldout", tp, "stage5.heldout"));
    const json acc = evaluate_accuracy(ctx, model, dir / rule / "eval_generation", seed_system, fmt::format("stage5.{}.eval", rule));
    m["accuracy"] = acc.is_null() ? json() : acc["accuracy"];
    m["eval"] = acc;
    log(fmt::format("stage 5: final model '{}' ({} synthetic + {} seed pairs): accuracy {}", rule, kept.size(),
                    ctx.seed.size(), acc.is_null() ? "not measured (no held-out pairs)" : fmt::format("{:.3f}", acc["accuracy"].get<double>())));
    models[rule] = m;
  }
  // For reference: the stage-1 forward model (seed pairs only, pipeline.seed_steps steps).
  const json seed_acc = evaluate_accuracy(ctx, model_of_round(ctx, 0, false), dir / "seed_forward_eval", "", "stage5.seed_forward.eval");
  mark_stage_done(dir, json{{"stage", "final"},
                            {"models", models},
                            {"seed_forward", seed_acc},
                            {"scoring", tp.to_json()},
                            {"seconds", seconds_since(t0)}});
}

// ---------------------------------------------------------------------------------------------
// Stage keys (pipeline_stage_keys): which config parts each stage reads
// ---------------------------------------------------------------------------------------------

// The stage that first reads each config part, by kind (demo, seed, rounds, synthesis, filter,
// final): "section" or "section.key", the most specific entry wins. Keys chain, so a part counts for
// its stage and every later one. "" = no stage: the part does not change what any stage computes. A
// section not listed counts from stage 1 (the safe side).
const std::vector<std::pair<std::string, std::string>>& first_reader_of_config_parts() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"output", ""},                   // where the run is written, not what it computes ...
      {"output.export_dtype", "seed"},  // ... except this: each stage starts from the previous final/
      {"logging", ""},
      {"data.cache_dir", ""},             // token caches are keyed by their content
      {"training.checkpoint_every", ""},  // resume is exact, so checkpoints do not change results
      {"training.eval_every", ""},        // stage trainings have no eval data (train_stage_model)
      {"training.eval_max_batches", ""},
      {"demo", "demo"},
      {"model", "seed"},
      {"data", "seed"},
      {"optimizer", "seed"},
      {"schedule", "seed"},
      {"training", "seed"},
      {"pipeline", "seed"},  // batch_size and chunk_size set the sampling seeds and the scoring batches
      {"rounds", "rounds"},
      {"pipeline.unlabeled", "synthesis"},
      {"synthesis", "synthesis"},
      {"pipeline.checker", "filter"},
      {"filter", "filter"},
      {"pipeline.eval_max_new_tokens", "final"},
      {"final", "final"},
  };
  return table;
}

// With the demo on, stage 0 reads these too: it sizes its tokenizer by the model's vocabulary and
// trains it on the pipeline's prompt texts.
const std::vector<std::string> kReadByDemoStage = {"model.path", "pipeline.reverse_template",
                                                   "filter.self_curation_template", "final.seed_tag",
                                                   "final.synthetic_tag"};

std::string first_reader_of(const std::string& section, const std::string& key, bool demo) {
  const std::string path = section + "." + key;
  if (demo && std::find(kReadByDemoStage.begin(), kReadByDemoStage.end(), path) != kReadByDemoStage.end())
    return "demo";
  const auto& table = first_reader_of_config_parts();
  for (const auto& [part, stage] : table)
    if (part == path) return stage;
  for (const auto& [part, stage] : table)
    if (part == section) return stage;
  return "seed";
}

json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return node.Scalar();
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& entry : node) out[entry.first.Scalar()] = yaml_to_json(entry.second);
      return out;
    }
    default: return json();
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> pipeline_stage_keys(const TrainConfig& config) {
  return pipeline_stage_keys_of_yaml(train_config_to_yaml(config));
}

std::vector<std::pair<std::string, std::string>> pipeline_stage_keys_of_yaml(const std::string& resolved_yaml) {
  const YAML::Node tree = YAML::Load(resolved_yaml);
  const bool demo = tree["demo"] && tree["demo"]["enabled"] && tree["demo"]["enabled"].as<bool>();
  const int64_t rounds = tree["rounds"] && tree["rounds"]["count"] ? tree["rounds"]["count"].as<int64_t>() : 0;
  // The config parts each stage reads, by the stage's kind.
  std::map<std::string, json> parts;
  for (const char* kind : {"demo", "seed", "rounds", "synthesis", "filter", "final"}) parts[kind] = json::object();
  for (const auto& section_entry : tree) {
    const std::string section = section_entry.first.Scalar();
    const YAML::Node& body = section_entry.second;
    if (section == "alignment") {
      // The alignment loss term counts only for the trainings its `stages` list names.
      std::set<std::string> stages;
      const YAML::Node listed = body.IsMap() ? body["stages"] : YAML::Node();
      if (listed && listed.IsSequence()) {
        for (const auto& s : listed) stages.insert(s.Scalar());
      } else {
        stages = {"seed", "rounds", "final"};  // not a list we know: count it everywhere
      }
      for (const char* kind : {"seed", "rounds", "final"})
        if (stages.count(kind)) parts[kind][section] = yaml_to_json(body);
      continue;
    }
    if (!body.IsMap()) {
      parts["seed"][section] = yaml_to_json(body);
      continue;
    }
    for (const auto& key_entry : body) {
      const std::string key = key_entry.first.Scalar();
      const std::string kind = first_reader_of(section, key, demo);
      if (kind.empty() || (kind == "demo" && !demo)) continue;  // no stage 0: nobody reads the demo's settings
      parts[kind][section + "." + key] = yaml_to_json(key_entry.second);
    }
  }
  std::vector<std::pair<std::string, std::string>> keys;
  json previous;  // null before the first stage
  auto add = [&](const std::string& stage, const json& part) {
    const std::string key = cache_key(json{{"stage", stage}, {"previous", previous}, {"config", part}, {"version", 1}});
    keys.emplace_back(stage, key);
    previous = key;
  };
  if (demo) add("stage0_demo", parts["demo"]);
  add("stage1_seed_models", parts["seed"]);
  for (int64_t k = 1; k <= rounds; ++k) add(fmt::format("stage2_round_{}", k), parts["rounds"]);
  add("stage3_synthesis", parts["synthesis"]);
  add("stage4_filter", parts["filter"]);
  add("stage5_final", parts["final"]);
  return keys;
}

void check_pipeline_config(const TrainConfig& c) {
  std::vector<std::string> problems;
  const auto rules = compared_rules(c);
  for (const auto& m : c.final_tuning.models)
    if (std::find(rules.begin(), rules.end(), m) == rules.end())
      problems.push_back(fmt::format("final.models lists '{}', which is neither filter.rule nor in filter.compare", m));
  if (!(c.final_tuning.alpha == -1.0 || (c.final_tuning.alpha >= 0 && c.final_tuning.alpha <= 1)))
    problems.push_back(fmt::format("final.alpha must be -1 or in [0, 1], got {}", c.final_tuning.alpha));
  if (c.pipeline.reverse_template.find("{response}") == std::string::npos)
    problems.push_back("pipeline.reverse_template has no {response} placeholder");
  if (rule_used(c, "self_curation") && (c.filter.self_curation_template.find("{instruction}") == std::string::npos ||
                                        c.filter.self_curation_template.find("{response}") == std::string::npos))
    problems.push_back("filter.self_curation_template needs both {instruction} and {response}");
  if (c.filter.keep == "top_k" && c.filter.top_k <= 0) problems.push_back("filter.keep is top_k but filter.top_k is 0");
  if (c.filter.rule == "mutual" || rule_used(c, "mutual"))
    if (!(c.filter.forward_weight + c.filter.reverse_weight > 0))
      problems.push_back("filter.forward_weight + filter.reverse_weight must be positive for the mutual rule");
  if (rule_used(c, "alignment") || c.filter.alignment_weight > 0) {
    const char* stage = c.rounds.count > 0 ? "rounds" : "seed";
    const auto& st = c.alignment.stages;
    if (std::find(st.begin(), st.end(), stage) == st.end() || !(c.alignment.lambda_align > 0 || c.alignment.lambda_cons > 0))
      problems.push_back(fmt::format("the filter uses the alignment scorer, which the last forward model ({}) only has "
                                     "when alignment.stages includes {} and alignment.lambda_align or lambda_cons is "
                                     "positive",
                                     c.rounds.count > 0 ? "of the last round" : "of stage 1", stage));
  }
  if (c.pipeline.checker == "demo_tasks" && !c.demo.enabled && c.data.eval_sources.empty())
    problems.push_back("pipeline.checker is demo_tasks but there are no held-out pairs (data.eval_sources) and the demo is off");
  if (c.model.path.empty()) problems.push_back("model.path is not set (the base model dir)");
  if (c.output.run_dir.empty()) problems.push_back("output.run_dir is not set ('run_dir:' under 'output:', or --run-dir DIR)");
  if (!c.demo.enabled) {
    if (c.data.sources.empty()) problems.push_back("data.sources (the seed pairs) is empty");
    if (c.pipeline.unlabeled.empty()) problems.push_back("pipeline.unlabeled (the unlabeled responses) is empty");
  }
  if (!problems.empty()) throw Error(fmt::format("pipeline config: {}", fmt::join(problems, "; ")));
}

PipelineOutcome run_pipeline(const TrainConfig& config, bool resume) {
  check_pipeline_config(config);
  const DistEnv env = dist_env_from_environment();
  if (env.world_size > 1)
    throw Error("pipeline: several ranks are not supported yet (the trainer has no NCCL backend)");
  Context ctx;
  ctx.config = config;
  ctx.run_dir = fs::path(config.output.run_dir);
  const fs::path saved = ctx.run_dir / "pipeline.yaml";
  if (fs::exists(saved)) {
    if (!resume)
      throw Error(fmt::format("{}: this run directory already holds a pipeline run; continue it with --resume, or "
                              "choose another --run-dir",
                              ctx.run_dir.string()));
    const TrainConfig before = load_train_config(saved);
    const auto diffs = resume_incompatibilities(before, config);
    if (!diffs.empty())
      throw Error(fmt::format("{}: cannot resume: the config differs from the run's ({}) in keys that must stay as "
                              "the run started:\n  {}",
                              ctx.run_dir.string(), saved.string(), fmt::join(diffs, "\n  ")));
  } else {
    if (resume) log(fmt::format("{}: no pipeline run there yet; starting one", ctx.run_dir.string()));
    if (fs::exists(ctx.run_dir) && !fs::is_empty(ctx.run_dir))
      throw Error(fmt::format("{}: the run directory exists and is not empty, and holds no pipeline run; choose an "
                              "empty or new --run-dir",
                              ctx.run_dir.string()));
    fs::create_directories(ctx.run_dir);
    write_text_file_atomically(saved, train_config_to_yaml(config));
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    if (config.demo.enabled) run_stage0_demo(ctx);
    fault_point("stage0.done");
    const TrainConfig& c = ctx.config;
    ctx.tokenizer_path = c.model.tokenizer.empty() ? fs::path(c.model.path) : fs::path(c.model.tokenizer);
    ctx.tok = Tokenizer::load(ctx.tokenizer_path);
    ctx.chat_template = c.data.template_name == "auto" ? detect_chat_template(*ctx.tok) : c.data.template_name;
    if (ctx.chat_template.empty())
      throw Error(fmt::format("{}: cannot tell the chat template from the tokenizer; set data.template",
                              ctx.tokenizer_path.string()));
    ctx.end_of_turn = chat_end_of_turn_id(*ctx.tok, ctx.chat_template);
    const ModelConfig mc = load_hf_config(fs::path(c.model.path) / "config.json");
    // The template's own tokens must exist in the model (a tokenizer of another family would index out
    // of range); the data's ids are checked again by each training run.
    const std::vector<std::pair<std::string, int64_t>> template_ids = {{"end-of-turn", ctx.end_of_turn},
                                                                       {"BOS", ctx.tok->special().bos}};
    for (const auto& [what, id] : template_ids)
      if (id >= mc.vocab_size)
        throw Error(fmt::format("{}: the tokenizer's {} token id {} is outside the model {}'s vocabulary of {}; the "
                                "forward and reverse models must share the base model's tokenizer",
                                ctx.tokenizer_path.string(), what, id, c.model.path, mc.vocab_size));
    ctx.device = resolve_device(c.model.device);
    ctx.dtype = dtype_from_name(c.model.dtype);
    ctx.max_len = std::min<int64_t>(c.data.max_len, mc.max_position_embeddings > 0 ? mc.max_position_embeddings : c.data.max_len);
    ctx.demo_checker = c.pipeline.checker == "demo_tasks";
    int64_t skipped = 0;
    ctx.seed = read_pairs(c.data.sources, "data.sources (seed pairs)", &skipped);
    if (ctx.seed.empty())
      throw Error(fmt::format("data.sources: the seed set is empty: no instruction-response pair in {} ({} without "
                              "a non-blank instruction and response)",
                              c.data.sources.empty() ? std::string("(no sources)") : c.data.sources[0].path.string(), skipped));
    ctx.eval = read_pairs(c.data.eval_sources, "data.eval_sources (held-out pairs)", nullptr);
    ctx.unlabeled = read_unlabeled(c.pipeline.unlabeled);
    if (ctx.unlabeled.empty())
      throw Error(fmt::format("pipeline.unlabeled: no usable segment in {} (every record was empty or shorter than "
                              "min_chars)",
                              c.pipeline.unlabeled.empty() ? std::string("(no sources)") : c.pipeline.unlabeled[0].path.string()));
    log(fmt::format("{} seed pairs, {} unlabeled responses, {} held-out pairs; template {}, {} rounds, filter {}",
                    ctx.seed.size(), ctx.unlabeled.size(), ctx.eval.size(), ctx.chat_template, c.rounds.count, c.filter.rule));
    run_stage1(ctx);
    for (int64_t k = 1; k <= c.rounds.count; ++k) run_round(ctx, k);
    run_stage3(ctx);
    run_stage4(ctx);
    run_stage5(ctx);
    write_pipeline_report(ctx.run_dir, ctx.config);
    fault_point("report.done");
  } catch (const StageStopped&) {
    log("stopped by a signal; continue with --resume");
    return {ctx.run_dir, {}, false};
  }
  log(fmt::format("done in {:.0f} s: {}", seconds_since(t0), (ctx.run_dir / "report" / "report.md").string()));
  return {ctx.run_dir, ctx.run_dir / "report" / "report.md", true};
}

}  // namespace mt
