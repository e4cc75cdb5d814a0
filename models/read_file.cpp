// Whole-file reads with errors naming the file (see read_file.h), and the file variant of the
// bounded JSON parse (json_read.h; here because json_read.cpp stays free of fmt and torch).
#include "models/read_file.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "models/error.h"
#include "models/json_read.h"

namespace mt {
namespace {

std::string file_role(const std::string& what) { return what.empty() ? "" : " " + what; }

void check_file_mode(mode_t mode, const std::filesystem::path& file, const std::string& what) {
  if (S_ISREG(mode)) return;
  if (S_ISDIR(mode)) throw Error(fmt::format("{}: cannot read{}: it is a directory", file.string(), file_role(what)));
  throw Error(fmt::format("{}: cannot read{}: not a regular file (a FIFO, socket or device)", file.string(),
                          file_role(what)));
}

}  // namespace

int open_regular_file(const std::filesystem::path& file, const std::string& what) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("{}: cannot open{}: {}", file.string(), file_role(what), std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(fmt::format("{}: cannot stat{}: {}", file.string(), file_role(what), std::strerror(err)));
  }
  try {
    check_file_mode(st.st_mode, file, what);
  } catch (...) {
    ::close(fd);
    throw;
  }
  // Back to blocking reads: for a regular file the flag changes nothing, but callers need not know it.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

void check_regular_file(const std::filesystem::path& file, const std::string& what) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0)
    throw Error(fmt::format("{}: cannot open{}: {}", file.string(), file_role(what), std::strerror(errno)));
  check_file_mode(st.st_mode, file, what);
}

std::string read_file(const std::filesystem::path& file, const std::string& what, uint64_t max_bytes) {
  const std::string role = file_role(what);
  const int fd = open_regular_file(file, what);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(::fdopen(fd, "rb"), &std::fclose);
  if (!f) {
    const int err = errno;
    ::close(fd);
    throw Error(fmt::format("{}: cannot open{}: {}", file.string(), role, std::strerror(err)));
  }
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    text.append(buf, n);
    if (text.size() > max_bytes)
      throw Error(fmt::format("{}: cannot read{}: larger than {} MiB, which no{} is", file.string(), role,
                              max_bytes >> 20, what.empty() ? " such file" : role));
  }
  if (std::ferror(f.get())) throw Error(fmt::format("{}: cannot read{}: {}", file.string(), role, std::strerror(errno)));
  return text;
}

nlohmann::json read_json_file(const std::filesystem::path& file, const std::string& what, const JsonLimits& limits) {
  return parse_json(read_file(file, what, limits.max_bytes), file.string(), limits);
}

}  // namespace mt
