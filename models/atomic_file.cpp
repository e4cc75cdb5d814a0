// Atomic file writes (see atomic_file.h): temporary file, fsync, rename, directory fsync.
#include "models/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "models/error.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

}  // namespace

void write_all(int fd, const void* buf, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error(path + ": write failed: " + errno_text(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

namespace {

// Makes the rename durable; some filesystems cannot fsync a directory (EINVAL), which is fine.
void fsync_dir(const fs::path& file) {
  fs::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(dir.string() + ": cannot open directory to fsync: " + errno_text(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) throw Error(dir.string() + ": fsync failed: " + errno_text(err));
}

}  // namespace

// Writes `path` via `path.tmp.<pid>`: fill, fsync, rename, fsync the directory. A crash leaves
// either the old file or the new one under `path`, never a torn one.
void write_file_atomically(const fs::path& path, const std::function<void(int fd, const std::string& tmp)>& fill) {
  const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(tmp + ": cannot create: " + errno_text(errno));
  try {
    fill(fd, tmp);
    if (::fsync(fd) != 0) throw Error(tmp + ": fsync failed: " + errno_text(errno));
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) throw Error(tmp + ": close failed: " + errno_text(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      throw Error(tmp + ": cannot rename to " + path.string() + ": " + errno_text(errno));
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_dir(path);
}

void write_text_file_atomically(const fs::path& path, const std::string& text) {
  write_file_atomically(path, [&](int fd, const std::string& tmp) { write_all(fd, text.data(), text.size(), tmp); });
}

}  // namespace mt
