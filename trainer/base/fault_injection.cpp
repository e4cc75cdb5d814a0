// Kill points and NaN steps for tests (see fault_injection.h).
#include "trainer/base/fault_injection.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

#include "models/error.h"

namespace mt {

namespace {

std::mutex g_nan_mutex;
std::set<int64_t> g_nan_steps;

// One step of MAINTUNE_FAULT_NAN_STEPS; a bad one names the variable and its value.
int64_t parse_step(const std::string& item, const std::string& all) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(item.c_str(), &end, 10);
  if (errno != 0 || end == item.c_str() || *end != '\0' || v < 1)
    throw Error(fmt::format("MAINTUNE_FAULT_NAN_STEPS='{}': '{}' is not a step number (a comma-separated list of "
                            "steps >= 1, e.g. 3,4)",
                            all, item));
  return v;
}

}  // namespace

void fault_point(const std::string& name) {
  const char* env = std::getenv("MAINTUNE_FAULT_KILL_AT");
  if (env == nullptr || *env == '\0') return;
  const std::string spec(env);
  const size_t colon = spec.rfind(':');
  const std::string target = colon == std::string::npos ? spec : spec.substr(0, colon);
  const long nth = colon == std::string::npos ? 1 : std::strtol(spec.c_str() + colon + 1, nullptr, 10);
  if (target != name) return;
  // MAINTUNE_FAULT_RANK=R: only the process whose RANK is R (one rank of a `maintune launch` job).
  if (const char* only = std::getenv("MAINTUNE_FAULT_RANK"); only != nullptr && *only != '\0') {
    const char* rank = std::getenv("RANK");
    if (rank == nullptr || std::string(rank) != only) return;
  }
  static std::mutex mu;
  static std::map<std::string, long> hits;
  std::lock_guard<std::mutex> lock(mu);
  if (++hits[name] < nth) return;
  std::fprintf(stderr, "fault injection: killed at %s (hit %ld)\n", name.c_str(), nth);
  std::fflush(stderr);
  std::_Exit(137);
}

bool fault_flag(const std::string& name) {
  const char* env = std::getenv("MAINTUNE_FAULT_FLAGS");
  if (env == nullptr || *env == '\0') return false;
  const std::string list = std::string(",") + env + ",";
  return list.find("," + name + ",") != std::string::npos;
}

void inject_nan_loss_at_steps(const std::vector<int64_t>& steps) {
  std::lock_guard<std::mutex> lock(g_nan_mutex);
  g_nan_steps = std::set<int64_t>(steps.begin(), steps.end());
}

void load_nan_steps_from_env() {
  const char* env = std::getenv("MAINTUNE_FAULT_NAN_STEPS");
  if (env == nullptr || *env == '\0') return;
  std::lock_guard<std::mutex> lock(g_nan_mutex);
  std::string s = env;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) g_nan_steps.insert(parse_step(item, s));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
}

bool nan_injected(int64_t step) {
  std::lock_guard<std::mutex> lock(g_nan_mutex);
  return g_nan_steps.count(step) > 0;
}

}  // namespace mt
