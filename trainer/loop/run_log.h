// RUN/train.log: the console's messages and step lines with a wall-clock timestamp each, appended
// across resumes, so a run's history survives the terminal it ran in. Lines logged before the run
// directory is open are kept and written when it opens. Every write is checked: a failed write is an
// mt::Error naming the file, never a silently shorter log.
#pragma once
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace mt {

class RunLog {
 public:
  RunLog() = default;
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;
  ~RunLog();

  // Opens `file` for appending and writes the lines logged so far.
  void open(const std::filesystem::path& file);
  // Closes the file and forgets it (the run directory is about to be removed).
  void close();
  bool is_open() const { return file_ != nullptr; }
  // "2026-12-04T18:20:01.123Z <line>" per line of `text`.
  void line(const std::string& text);

 private:
  void write(const std::string& text);
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::vector<std::string> pending_;
};

// The UTC wall-clock time as ISO 8601 with milliseconds ("2026-12-04T18:20:01.123Z").
std::string utc_timestamp();

}  // namespace mt
