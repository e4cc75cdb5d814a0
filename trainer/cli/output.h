// Checked output for every command (issue 19: no failure exits 0). What a command prints to stdout
// goes through here, so a failed write (a full disk, /dev/full, a closed stdout) is an error: "cannot
// write output: <strerror>", exit 1. JSONL lines are flushed and checked one by one, so a long
// generate stops at the first line that cannot be written rather than computing the rest for
// nothing; main flushes and checks once more after every command.
//
// A closed pipe (`maintune generate ... | head -1`) ends the command quietly by SIGPIPE, as
// coreutils do (the default disposition is kept: the shell sees 141, never 0). Where the parent has
// SIGPIPE ignored, the write fails with EPIPE instead and is reported as any failed write.
#pragma once
#include <cstdio>
#include <string_view>

#include "models/error.h"

namespace mt::cli {

// A write to a command's output failed; the message is "cannot write output: <strerror>".
struct OutputError : Error {
  using Error::Error;
};

// Writes to one stdio stream and throws OutputError at the first failure.
class CheckedOutput {
 public:
  explicit CheckedOutput(std::FILE* file) : file_(file) {}
  // `text` as it is, buffered (help, config YAML): a failure shows at the latest in finish().
  void write(std::string_view text);
  // `line` and a newline, flushed and checked now (one JSONL record).
  void write_line(std::string_view line);
  // Flushes and checks everything written so far.
  void finish();

 private:
  [[noreturn]] void fail(int err);
  std::FILE* file_;
};

// The commands' stdout.
CheckedOutput& out();

}  // namespace mt::cli
