// bench_bpe: single-threaded encode throughput of our byte-level BPE, to compare with tiktoken
// (scripts/bench_tokenizers.py runs the reference on the same bytes).
//   bench_bpe TOKENIZER TEXT_FILE...   TOKENIZER: a tiktoken file (LLaMA-3 specials) or tokenizer.json
// The texts are concatenated, repeated to ~20 MB, encoded in 1 MB chunks; prints MB/s (best of 3)
// per second of this thread's CPU time, so other work on a shared machine does not skew it.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

#include "models/bpe_tokenizer.h"
#include "models/error.h"
#include "tests/bench_corpus.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER(tokenizer.model|tokenizer.json) TEXT_FILE...\n", argv[0]);
    return 2;
  }
  try {
    const std::string tok_path = argv[1];
    const auto t0 = std::chrono::steady_clock::now();
    const auto tok = tok_path.size() >= 5 && tok_path.substr(tok_path.size() - 5) == ".json"
                         ? mt::load_tokenizer_json_bpe(tok_path)
                         : mt::load_tiktoken_bpe(tok_path, mt::llama3_special_tokens());
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string data = mt::bench::repeat_to_corpus(
        mt::bench::read_texts(std::vector<std::string>(argv + 2, argv + argc)));
    const std::vector<std::string_view> chunks = mt::bench::newline_chunks(data);
    size_t tokens = 0;
    const double best = mt::bench::best_of_3([&] {
      size_t n = 0;
      for (auto c : chunks) n += mt::bpe_encode(*tok, c, false).size();
      return n;
    }, &tokens);
    // Order-sensitive checksum of all ids, sum((i + 1) * id) mod 2^64, as bench_tokenizers.py prints.
    uint64_t sum = 0, i = 0;
    for (auto c : chunks) {
      for (int64_t id : mt::bpe_encode(*tok, c, false)) sum += ++i * static_cast<uint64_t>(id);
    }
    std::printf("bench_bpe: %s load %.2f s; %.1f MB in %zu chunks, %zu tokens (%.2f bytes/token, checksum %llu): "
                "%.1f MB/s per CPU second, single-threaded\n",
                tok_path.c_str(), load_s, data.size() / 1e6, chunks.size(), tokens,
                static_cast<double>(data.size()) / tokens, static_cast<unsigned long long>(sum), data.size() / 1e6 / best);
  } catch (const mt::Error& e) {
    std::fprintf(stderr, "bench_bpe: %s\n", e.what());
    return 1;
  }
  return 0;
}
