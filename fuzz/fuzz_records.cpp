// libFuzzer target for the data readers (trainer/data/data_formats.h): the first input byte picks
// the format (auto-detected, or one of the conversation and unlabeled formats) and the malformed
// policy, the rest is the data file. Any bytes either give conversations / segments or an
// mt::Error; under "skip" the counts add up (every conversation came from a record read, none is
// empty of messages). Run with scripts/fuzz.sh SECONDS records.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_input_file.h"
#include "models/error.h"
#include "trainer/data/data_formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kFormats[] = {"auto",     "alpaca",            "alpaca_seed", "messages", "prompt_response",
                                   "prompts", "prompt_completion", "mt_bench",    "text_jsonl", "text"};
  mt::DataSourceConfig c;
  c.format = kFormats[(data[0] >> 1) % (sizeof(kFormats) / sizeof(kFormats[0]))];
  c.on_malformed = (data[0] & 1) ? "skip" : "fail";
  c.max_line_bytes = 1 << 16;  // small, so the fuzzer reaches the bound
  c.min_chars = 4;
  c.max_chars = 64;
  c.path = mt::fuzz::input_file(data + 1, size - 1, ".jsonl");
  try {
    mt::DataStats stats;
    if (mt::is_unlabeled_format(c.format)) {
      for (const auto& seg : mt::read_text_segments(c, &stats))
        if (seg.text.empty() || seg.where.empty()) __builtin_trap();
    } else {
      const auto convs = mt::read_conversations(c, &stats);
      if (static_cast<int64_t>(convs.size()) > stats.conversations) __builtin_trap();
      for (const auto& conv : convs)
        if (conv.messages.empty() || conv.where.empty() || conv.context_messages > conv.messages.size()) __builtin_trap();
    }
  } catch (const mt::Error&) {
  }
  return 0;
}
