// bench_sp: single-threaded SentencePiece encode throughput of maintune (sp_encode over
// libsentencepiece) and of the library called directly, per second of this thread's CPU time.
//   bench_sp MODEL [--lines] TEXT_FILE...
// Default: as bench_bpe, the texts concatenated, repeated to ~20 MB, encoded in 1 MB chunks cut at
// newlines (scripts/bench_tokenizers.py times Python sentencepiece on the same chunks). --lines:
// every non-empty line encoded on its own, repeated to ~20 MB (scripts/bench_sp.py --lines).
#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "models/error.h"
#include "models/sentencepiece_tokenizer.h"
#include "tests/bench_corpus.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL [--lines] TEXT_FILE...\n", argv[0]);
    return 2;
  }
  try {
    const std::string model = argv[1];
    bool lines = false;
    std::vector<std::string> files;
    for (int i = 2; i < argc; ++i) {
      if (std::string(argv[i]) == "--lines") lines = true;
      else files.push_back(argv[i]);
    }
    const std::string text = mt::bench::read_texts(files);
    const size_t target = mt::bench::kCorpusBytes;
    std::string data;
    std::vector<std::string_view> pieces;
    if (lines) {
      std::vector<std::string_view> base;
      for (size_t pos = 0; pos < text.size();) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        if (end > pos) base.emplace_back(text.data() + pos, end - pos);
        pos = end + 1;
      }
      size_t bytes = 0;
      while (bytes < target)
        for (auto l : base) {
          pieces.push_back(l);
          bytes += l.size();
        }
      data.resize(bytes);  // only its size is reported
    } else {
      data = mt::bench::repeat_to_corpus(text);
      pieces = mt::bench::newline_chunks(data);
    }
    auto run = [&](const char* impl, const std::function<size_t(std::string_view)>& encode) {
      size_t tokens = 0;
      const double best = mt::bench::best_of_3([&] {
        size_t n = 0;
        for (auto p : pieces) n += encode(p);
        return n;
      }, &tokens);
      std::printf("bench_sp: %s, %s: %.1f MB in %zu %s, %zu tokens: %.2f MB/s per CPU second, single-threaded\n",
                  impl, model.c_str(), data.size() / 1e6, pieces.size(), lines ? "lines" : "chunks", tokens,
                  data.size() / 1e6 / best);
      std::fflush(stdout);
    };
    const auto tok = mt::load_sentencepiece(model);
    run("maintune sp_encode", [&](std::string_view s) { return mt::sp_encode(*tok, s, false).size(); });
    sentencepiece::SentencePieceProcessor proc;  // the library alone: the wrapper's overhead
    if (!proc.Load(model).ok()) throw mt::Error(model + ": cannot load");
    std::vector<int> ids;
    run("libsentencepiece Encode", [&](std::string_view s) {
      proc.Encode(absl::string_view(s.data(), s.size()), &ids).IgnoreError();
      return ids.size();
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sp: %s\n", e.what());
    return 1;
  }
  return 0;
}
