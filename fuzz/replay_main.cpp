// Standalone driver for the fuzz target (no libFuzzer needed), built with ASan + UBSan and run
// under CTest: each input file is fed whole, truncated at many lengths, and with deterministic
// byte mutations. A sanitizer report or trap fails the test; mt::Error is the expected answer.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void feed(const std::vector<uint8_t>& bytes) {
  // A fresh heap copy of exactly `size` bytes, so ASan sees any read past the end.
  std::vector<uint8_t> copy(bytes);
  LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state] {  // xorshift64: deterministic mutations, same on every run
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  size_t runs = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream f(argv[i], std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "replay: cannot open %s\n", argv[i]);
      return 1;
    }
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    feed(bytes);
    ++runs;
    // Truncations: every length for small files, 512 spread lengths for large ones.
    const size_t step = bytes.size() <= 4096 ? 1 : bytes.size() / 512;
    for (size_t n = 0; n < bytes.size(); n += step, ++runs) feed(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n));
    // Mutations in the first 4 KiB (the length prefix and the JSON header live there).
    const size_t span = std::min<size_t>(bytes.size(), 4096);
    for (int m = 0; m < 2000 && span > 0; ++m, ++runs) {
      std::vector<uint8_t> mutated(bytes);
      const int flips = 1 + static_cast<int>(next() % 3);
      for (int k = 0; k < flips; ++k) mutated[next() % span] = static_cast<uint8_t>(next());
      feed(mutated);
    }
  }
  std::printf("replay: %zu inputs from %d files ran clean\n", runs, argc - 1);
  return 0;
}
