// Chunked, resumable generation and scoring (see chunked_inference.h).
#include "trainer/method/chunked_inference.h"

#include <c10/core/GradMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "trainer/base/fault_injection.h"
#include "trainer/base/hash.h"
#include "trainer/base/random.h"
#include "trainer/method/chunk_progress.h"

namespace mt::pipeline {

namespace {

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

}  // namespace

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

}  // namespace mt::pipeline
