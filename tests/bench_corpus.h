// The corpus and timing shared by the tokenizer benchmarks (bench_bpe, bench_sp): text files read
// and repeated to ~20 MB, cut into 1 MB chunks at newlines exactly as scripts/bench_tokenizers.py
// cuts them (so both sides encode the same bytes), and best-of-3 timing in this thread's CPU time.
#pragma once
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "models/error.h"

namespace mt::bench {

constexpr size_t kCorpusBytes = 20u << 20;

// Per second of this thread's CPU time, so other work on a shared machine does not skew it.
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

inline std::string read_texts(const std::vector<std::string>& files) {
  std::string text;
  for (const auto& file : files) {
    std::ifstream f(file, std::ios::binary);
    if (!f) throw mt::Error(file + ": cannot open");
    std::stringstream ss;
    ss << f.rdbuf();
    text += ss.str();
  }
  if (text.empty()) throw mt::Error("no text");
  return text;
}

// `text` repeated to at least kCorpusBytes.
inline std::string repeat_to_corpus(const std::string& text) {
  std::string data;
  while (data.size() < kCorpusBytes) data += text;
  return data;
}

// 1 MB chunks cut after a newline, as a data loader would feed documents.
inline std::vector<std::string_view> newline_chunks(const std::string& data) {
  std::vector<std::string_view> chunks;
  for (size_t pos = 0; pos < data.size();) {
    size_t end = std::min(data.size(), pos + (1u << 20));
    const size_t nl = data.rfind('\n', end);
    if (end < data.size() && nl != std::string::npos && nl > pos) end = nl + 1;
    chunks.emplace_back(data.data() + pos, end - pos);
    pos = end;
  }
  return chunks;
}

// Runs encode_all() three times; returns the best CPU seconds, `tokens` from the last run.
template <typename Fn>
double best_of_3(Fn&& encode_all, size_t* tokens) {
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const double a = thread_cpu_seconds();
    *tokens = encode_all();
    best = std::min(best, thread_cpu_seconds() - a);
  }
  return best;
}

}  // namespace mt::bench
