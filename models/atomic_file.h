// Atomic file writes: fill a temporary file beside the target, fsync it, rename it over the target,
// fsync the directory. A crash at any moment leaves the old file or the new one, never a torn one.
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

// Fault injection for tests of full disks: after `bytes` more bytes through write_all, every
// write_all fails with ENOSPC (-1 turns it off). The environment variable
// MAINTUNE_FAULT_ENOSPC_AFTER_BYTES sets the same budget at the first write of a process.
void inject_write_fault_after_bytes(int64_t bytes);

// write(2) until all `n` bytes are written (retrying EINTR and short writes); errors name `path`.
void write_all(int fd, const void* buf, size_t n, const std::string& path);

}  // namespace mt
