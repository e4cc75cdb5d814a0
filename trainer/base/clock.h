// Wall-clock durations as the logs and records print them: seconds since a steady_clock point
// (the training loop, the pipeline's stages and the sweep all time themselves with it).
#pragma once
#include <chrono>

namespace mt {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace mt
