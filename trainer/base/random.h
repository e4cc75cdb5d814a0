// The project's randomness: splitmix64 and integer recipes over it, the same on every machine and
// compiler (never std::shuffle or std::uniform_*_distribution, whose outputs are not specified).
// Behind every shuffle, data split, sampling seed and demo-suite draw.
#pragma once
#include <cstdint>

namespace mt {

// splitmix64: advances `state` and returns the next output (the published recipe).
uint64_t splitmix64(uint64_t& state);
// Uniform in [0, bound) from splitmix64 draws without modulo bias (Lemire's multiply-shift with
// rejection); bound > 0.
uint64_t bounded_draw(uint64_t& state, uint64_t bound);
// Uniform in [0, 1) with 53 random bits (one splitmix64 draw).
double unit_draw(uint64_t& state);
// A seed derived from `seed` and up to two stream numbers (a stage, a chunk, a batch start), so that
// a result depends on where it is computed, never on how many results a process computed before.
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0);

}  // namespace mt
