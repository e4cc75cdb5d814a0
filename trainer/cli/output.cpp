// Checked output (see output.h).
#include "trainer/cli/output.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace mt::cli {

void CheckedOutput::fail(int err) {
  // An error seen by an earlier, buffered write may have left errno behind: EIO says only "failed".
  throw OutputError(std::string("cannot write output: ") + std::strerror(err != 0 ? err : EIO));
}

void CheckedOutput::write(std::string_view text) {
  errno = 0;
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::ferror(file_)) fail(errno);
}

void CheckedOutput::write_line(std::string_view line) {
  write(line);
  write("\n");
  finish();
}

void CheckedOutput::finish() {
  errno = 0;
  if (std::fflush(file_) != 0 || std::ferror(file_)) fail(errno);
}

CheckedOutput& out() {
  static CheckedOutput stdout_output(stdout);
  return stdout_output;
}

}  // namespace mt::cli
