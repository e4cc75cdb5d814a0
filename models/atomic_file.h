// Atomic file writes: fill a temporary file beside the target, fsync it, rename it over the target,
// fsync the directory. A crash at any moment leaves the old file or the new one, never a torn one.
// The same for whole directories (checkpoints, final/, token caches, copied stages): publish_directory.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace mt {

// Writes `path` via `path.tmp.<pid>`; `fill(fd, tmp_name)` writes the contents (use write_all).
// Errors (disk full, permissions) are mt::Error naming the file; the temporary is removed.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(int fd, const std::string& tmp)>& fill);

// fsync of a directory, making renames and creations inside it durable (EINVAL, from filesystems
// that cannot sync directories, is ignored).
void fsync_directory(const std::filesystem::path& dir);

// write_file_atomically with a whole text.
void write_text_file_atomically(const std::filesystem::path& path, const std::string& text);

// What publish_directory does when the target already exists.
enum class IfPublished {
  kReplace,       // the old directory is renamed away, the new one renamed in, the old one removed
  kKeepExisting,  // another writer finished first: keep its directory, remove ours
  kFail,          // an error naming the target
};

// Publishes the filled temporary directory `tmp` (beside `target`, same filesystem) as `target`:
// fsync of tmp, rename, fsync of the parent. A crash at any moment leaves the old target or the new
// one. Returns false when kKeepExisting found one (tmp is then removed). On error tmp is removed and
// mt::Error names the target.
bool publish_directory(const std::filesystem::path& tmp, const std::filesystem::path& target, IfPublished if_published);

// Fault injection for tests of full disks: after `bytes` more bytes through write_all, every
// write_all fails with ENOSPC (-1 turns it off). The environment variable
// MAINTUNE_FAULT_ENOSPC_AFTER_BYTES sets the same budget at the first write of a process.
void inject_write_fault_after_bytes(int64_t bytes);

// write(2) until all `n` bytes are written (retrying EINTR and short writes); errors name `path`.
void write_all(int fd, const void* buf, size_t n, const std::string& path);

}  // namespace mt
