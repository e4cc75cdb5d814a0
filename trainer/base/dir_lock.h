// One maintune process per output folder: a lock (flock(2) on DIR/.maintune.lock) that a train run,
// a pipeline and a sweep take on their folder before they write anything there. A second process on
// the same folder would write over the first one's checkpoints and records; it is refused with the
// holder's pid. The kernel releases the lock when its holder dies, even by kill -9, so a crashed run
// never leaves a stale lock behind: resuming it just works.
#pragma once
#include <filesystem>
#include <string>

namespace mt {

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
