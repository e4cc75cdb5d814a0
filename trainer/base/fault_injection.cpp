// Kill points for tests (see fault_injection.h).
#include "trainer/base/fault_injection.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

namespace mt {

void fault_point(const std::string& name) {
  const char* env = std::getenv("MAINTUNE_FAULT_KILL_AT");
  if (env == nullptr || *env == '\0') return;
  const std::string spec(env);
  const size_t colon = spec.rfind(':');
  const std::string target = colon == std::string::npos ? spec : spec.substr(0, colon);
  const long nth = colon == std::string::npos ? 1 : std::strtol(spec.c_str() + colon + 1, nullptr, 10);
  if (target != name) return;
  static std::mutex mu;
  static std::map<std::string, long> hits;
  std::lock_guard<std::mutex> lock(mu);
  if (++hits[name] < nth) return;
  std::fprintf(stderr, "fault injection: killed at %s (hit %ld)\n", name.c_str(), nth);
  std::fflush(stderr);
  std::_Exit(137);
}

}  // namespace mt
