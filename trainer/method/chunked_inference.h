// Generation and scoring over many prompts, resumable in chunks (trainer/method/chunk_progress.h):
// a kill loses at most one chunk, and sampling seeds depend on (seed, chunk, batch start) only, so a
// resumed run writes what an uninterrupted one would. The chunk folder's plan is keyed by the model
// and the inputs, so chunks of other work are never reused.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/generate.h"
#include "models/score.h"
#include "trainer/method/stage_context.h"

namespace mt::pipeline {

struct Generated {
  std::string text;
  int64_t tokens = 0;
  std::string finish;  // "stop" | "length" | "skipped"
};

// Generates for every prompt with `model_dir` (stopping at the template's end of turn); prompts over
// the context budget are skipped (empty text, finish "skipped").
std::vector<Generated> generate_chunked(const Context& ctx, const fs::path& dir, const fs::path& model_dir,
                                        const std::vector<std::vector<int64_t>>& prompts, SamplingConfig sampling,
                                        Throughput& tp, const std::string& what);

// Summed NLL and token count of each request's target (NaN / 0 when it has none or does not fit).
std::vector<NllResult> score_chunked(const Context& ctx, const fs::path& dir, const fs::path& model_dir,
                                     const std::vector<ScoreRequest>& requests, Throughput& tp, const std::string& what);

double mean_nll(const NllResult& r);
// Token-weighted mean NLL over requests (NaN when none scored).
double pooled_nll(const std::vector<NllResult>& results);

}  // namespace mt::pipeline
