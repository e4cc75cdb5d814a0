// Atomic file writes (see atomic_file.h): temporary file, fsync, rename, directory fsync.
#include "models/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cerrno>
#include <system_error>

#include "models/error.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// Bytes write_all may still write before the injected ENOSPC; -1 = no fault, -2 = not read yet.
std::atomic<int64_t> g_write_budget{-2};

void charge_write_budget(size_t n, const std::string& path) {
  int64_t budget = g_write_budget.load();
  if (budget == -2) {
    const char* env = std::getenv("MAINTUNE_FAULT_ENOSPC_AFTER_BYTES");
    budget = env != nullptr && *env != '\0' ? std::strtoll(env, nullptr, 10) : -1;
    g_write_budget.store(budget);
  }
  if (budget < 0) return;
  if (static_cast<int64_t>(n) > budget) {
    g_write_budget.store(0);
    throw Error(path + ": write failed: " + errno_text(ENOSPC) + " (injected fault)");
  }
  g_write_budget.fetch_sub(static_cast<int64_t>(n));
}

std::string fmt_rename_error(const fs::path& from, const fs::path& to, int err) {
  return from.string() + ": cannot rename to " + to.string() + ": " + errno_text(err);
}

}  // namespace

void inject_write_fault_after_bytes(int64_t bytes) { g_write_budget.store(bytes < 0 ? -1 : bytes); }

void write_all(int fd, const void* buf, size_t n, const std::string& path) {
  charge_write_budget(n, path);
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

// Some filesystems cannot fsync a directory (EINVAL), which is fine.
void fsync_directory(const fs::path& dir_in) {
  const fs::path dir = dir_in.empty() ? fs::path(".") : dir_in;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(dir.string() + ": cannot open directory to fsync: " + errno_text(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) throw Error(dir.string() + ": fsync failed: " + errno_text(err));
}

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
  fsync_directory(path.parent_path());
}

void write_text_file_atomically(const fs::path& path, const std::string& text) {
  write_file_atomically(path, [&](int fd, const std::string& tmp) { write_all(fd, text.data(), text.size(), tmp); });
}

bool publish_directory(const fs::path& tmp, const fs::path& target, IfPublished if_published) {
  std::error_code ec;
  const fs::path parent = target.parent_path();
  const fs::path old = target.string() + ".old-" + std::to_string(::getpid());
  try {
    fsync_directory(tmp);
    const bool exists = fs::exists(target);
    if (exists && if_published == IfPublished::kKeepExisting) {
      fs::remove_all(tmp, ec);
      return false;
    }
    if (exists && if_published == IfPublished::kFail) throw Error(target.string() + ": already exists");
    if (exists) fs::rename(target, old);
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      const int err = errno;
      if ((err == EEXIST || err == ENOTEMPTY) && if_published == IfPublished::kKeepExisting) {
        fs::remove_all(tmp, ec);  // another process published between our check and our rename
        return false;
      }
      throw Error(fmt_rename_error(tmp, target, err));
    }
    fsync_directory(parent);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error(target.string() + ": cannot publish " + tmp.string() + ": " + e.code().message());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  fs::remove_all(old, ec);
  return true;
}

}  // namespace mt
