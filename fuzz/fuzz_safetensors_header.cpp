// libFuzzer target for the safetensors header parser: any input must either parse or throw
// mt::Error. Another exception, a crash or a sanitizer report is a finding.
// Build and run with scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "models/error.h"
#include "models/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    mt::StHeader h = mt::parse_safetensors_header(data, size, "fuzz.safetensors");
    // What a valid header promises: ranges tile the data section in order.
    uint64_t expected = 0;
    for (const mt::StTensorInfo& t : h.tensors) {
      if (t.begin != expected || t.end < t.begin) __builtin_trap();
      expected = t.end;
    }
    if (h.data_start + expected != size) __builtin_trap();
  } catch (const mt::Error&) {
  }
  return 0;
}
