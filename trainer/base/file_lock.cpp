// Lock files: the waiting FileLock and the per-folder DirLock (see file_lock.h).
#include "trainer/base/file_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "models/error.h"

namespace mt {

namespace {

int open_lock_file(const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(fmt::format("{}: cannot open the lock file: {}", file, std::strerror(errno)));
  return fd;
}

// The holder's pid as it wrote it ("" when unreadable: it may be writing it right now).
std::string read_holder_pid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid;
}

}  // namespace

FileLock::FileLock(const std::filesystem::path& file) {
  fd_ = open_lock_file(file.string());
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd_);
    throw Error(fmt::format("{}: flock failed: {}", file.string(), std::strerror(err)));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

DirLock::DirLock(const std::filesystem::path& dir, const std::string& what) {
  const std::string file = (dir / kDirLockFile).string();
  fd_ = open_lock_file(file);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string pid = read_holder_pid(fd_);
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) throw Error(fmt::format("{}: cannot lock: {}", file, std::strerror(err)));
    throw Error(fmt::format("{}: this {} is in use by another maintune process{}; wait for it to finish or stop it "
                            "(a stopped run resumes), or choose another folder",
                            dir.string(), what, pid.empty() ? "" : " (pid " + pid + ")"));
  }
  // The pid is for the message above only; the lock itself is the flock.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // A lock whose pid cannot be recorded still excludes others; only the message loses the pid.
  }
}

bool is_empty_but_for_lock(const std::filesystem::path& dir) {
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().filename() != kDirLockFile) return false;
  return true;
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace mt
