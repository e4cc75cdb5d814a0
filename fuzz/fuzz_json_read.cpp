// libFuzzer target for the bounded JSON parse (models/json_read.h), the entry point of config.json,
// tokenizer files and every JSONL record: any input either parses or throws mt::Error, never
// crashes; a parsed value is within the depth limit, and parses back to itself from its dump
// (and parse_json_or_discarded agrees). Build and run with scripts/fuzz.sh SECONDS json_read.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "models/error.h"
#include "models/json_read.h"

namespace {

size_t depth(const nlohmann::json& j, size_t limit) {
  if (limit == 0 || !j.is_structured()) return 0;
  size_t d = 0;
  for (const auto& v : j) d = std::max(d, depth(v, limit - 1));
  return d + 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  mt::JsonLimits limits;
  limits.max_depth = 64;  // small, so the fuzzer reaches it
  bool parsed = false;
  try {
    const nlohmann::json j = mt::parse_json(text, "fuzz.json", limits);
    parsed = true;
    if (depth(j, limits.max_depth + 1) > limits.max_depth) __builtin_trap();
    if (mt::parse_json(j.dump(), "dump", limits) != j) __builtin_trap();
  } catch (const mt::Error&) {
  }
  if (mt::parse_json_or_discarded(text, limits).is_discarded() == parsed) __builtin_trap();
  return 0;
}
