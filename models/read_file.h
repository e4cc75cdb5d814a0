// Reading a whole file into memory, with the errors every input path owes its user: the file, what
// it was read as, and why (missing, a directory, unreadable, larger than any such file can be).
#pragma once
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

namespace mt {

// Opens `file` for reading and returns the descriptor, refusing what is not a regular file: the open
// does not block (O_NONBLOCK, so a FIFO cannot hang the caller) and fstat of the open file decides,
// so a file swapped in between cannot slip through. Throws mt::Error: "FILE: cannot open WHAT:
// <strerror>", "FILE: cannot read WHAT: it is a directory", "FILE: cannot read WHAT: not a regular
// file (a FIFO, socket or device)".
int open_regular_file(const std::filesystem::path& file, const std::string& what = "");

// The same refusals by path (stat) for readers that open the file later themselves.
void check_regular_file(const std::filesystem::path& file, const std::string& what = "");

// The bytes of `file`. `what` names the file's role in messages ("config", "the sweep file"; "" =
// none). Throws mt::Error: "FILE: cannot open WHAT: <strerror>", "FILE: cannot read WHAT: it is a
// directory", "FILE: cannot read WHAT: larger than N MiB, which no WHAT is", or a read error.
std::string read_file(const std::filesystem::path& file, const std::string& what = "",
                      uint64_t max_bytes = std::numeric_limits<uint64_t>::max());

}  // namespace mt
