// libFuzzer target for the BPE tokenizer files (models/bpe_tokenizer.h): the first input byte picks
// tokenizer.json (HF's byte-level BPE) or a tiktoken tokenizer.model (base64 token + rank lines),
// the rest is the file. Any bytes either load or throw mt::Error; a loaded tokenizer encodes and
// decodes text (the file's own bytes too) without crashing, and for tiktoken (which must hold all
// 256 single bytes) decoding what it encoded gives the text back. A tokenizer.json may lack bytes:
// HF's BPE drops them, so ours does too and there is no round trip to check. Run with scripts/fuzz.sh SECONDS tokenizer_files.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <map>
#include <string>

#include "fuzz/fuzz_input_file.h"
#include "models/bpe_tokenizer.h"
#include "models/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool tiktoken = data[0] & 1;
  const std::string file = mt::fuzz::input_file(data + 1, size - 1, tiktoken ? "-tokenizer.model" : "-tokenizer.json");
  try {
    const std::map<std::string, int64_t> special = {{"<|eot_id|>", 3000}, {"<|begin_of_text|>", 3001}};
    const auto tok = tiktoken ? mt::load_tiktoken_bpe(file, special)
                              : mt::load_tokenizer_json_bpe(file);
    const std::string tail(reinterpret_cast<const char*>(data + 1), std::min<size_t>(size - 1, 256));
    for (const std::string& text : {std::string("Hello, world! 123  \n\t  <|eot_id|> x"), tail}) {
      const auto ids = mt::bpe_encode(*tok, text, false);
      if (tiktoken && mt::bpe_decode_bytes(*tok, ids, false) != text) __builtin_trap();
      (void)mt::bpe_encode(*tok, text, true);
    }
  } catch (const mt::Error&) {
  }
  return 0;
}
