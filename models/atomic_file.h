// Atomic file writes: fill a temporary file beside the target, fsync it, rename it over the target,
// fsync the directory. A crash at any moment leaves the old file or the new one, never a torn one.
#pragma once
#include <filesystem>
#include <functional>
#include <string>

namespace mt {

// Writes `path` via `path.tmp.<pid>`; `fill(fd, tmp_name)` writes the contents (use write_all).
// Errors (disk full, permissions) are mt::Error naming the file; the temporary is removed.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(int fd, const std::string& tmp)>& fill);

// write_file_atomically with a whole text.
void write_text_file_atomically(const std::filesystem::path& path, const std::string& text);

// write(2) until all `n` bytes are written (retrying EINTR and short writes); errors name `path`.
void write_all(int fd, const void* buf, size_t n, const std::string& path);

}  // namespace mt
