// Locks on lock files (flock(2)), held while the object lives and released by the kernel when the
// holder dies, even by kill -9, so a crash never leaves a stale lock.
//
// FileLock waits for the lock: the token cache's builders queue on KEY.lock, so one tokenizes and
// the others load its result.
//
// DirLock refuses instead: one maintune process per output folder (DIR/.maintune.lock) that a train run,
// a pipeline and a sweep take on their folder before they write anything there. A second process on
// the same folder would write over the first one's checkpoints and records; it is refused with the
// holder's pid. The kernel releases the lock when its holder dies, even by kill -9, so a crashed run
// never leaves a stale lock behind: resuming it just works.
#pragma once
#include <filesystem>
#include <string>

namespace mt {

class FileLock {
 public:
  // Takes the lock on `file` (created when missing), waiting while another process holds it.
  explicit FileLock(const std::filesystem::path& file);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

class DirLock {
 public:
  // Takes the lock on `dir` (which must exist) or throws mt::Error naming the folder and, when it
  // can be read, the pid of the process holding it. `what` says what the folder is ("run directory").
  DirLock(const std::filesystem::path& dir, const std::string& what);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

// The lock file's name, which a folder-is-empty check leaves out.
inline constexpr const char* kDirLockFile = ".maintune.lock";

// True when `dir` holds nothing but, perhaps, its lock file (which a refused start can leave).
bool is_empty_but_for_lock(const std::filesystem::path& dir);

}  // namespace mt
