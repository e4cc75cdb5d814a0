// RUN/train.log (see run_log.h).
#include "trainer/loop/run_log.h"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "models/error.h"

namespace mt {

std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms));
}

RunLog::~RunLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void RunLog::open(const std::filesystem::path& file) {
  close();
  path_ = file;
  file_ = std::fopen(path_.c_str(), "ab");
  if (file_ == nullptr) throw Error(fmt::format("{}: cannot open for appending: {}", path_.string(), std::strerror(errno)));
  std::vector<std::string> pending;
  pending.swap(pending_);
  for (const auto& p : pending) write(p);
}

void RunLog::close() {
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
}

void RunLog::line(const std::string& text) {
  const std::string stamp = utc_timestamp();
  std::string out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = text.find('\n', start);
    const std::string part = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!(part.empty() && end == std::string::npos && start > 0)) out += stamp + " " + part + "\n";
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (file_ == nullptr) pending_.push_back(out);
  else write(out);
}

void RunLog::write(const std::string& text) {
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0)
    throw Error(fmt::format("{}: write failed: {}", path_.string(), std::strerror(errno)));
}

}  // namespace mt
