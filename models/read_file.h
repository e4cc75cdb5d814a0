// Reading a whole file into memory, with the errors every input path owes its user: the file, what
// it was read as, and why (missing, a directory, unreadable, larger than any such file can be).
#pragma once
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

namespace mt {

// The bytes of `file`. `what` names the file's role in messages ("config", "the sweep file"; "" =
// none). Throws mt::Error: "FILE: cannot open WHAT: <strerror>", "FILE: cannot read WHAT: it is a
// directory", "FILE: cannot read WHAT: larger than N MiB, which no WHAT is", or a read error.
std::string read_file(const std::filesystem::path& file, const std::string& what = "",
                      uint64_t max_bytes = std::numeric_limits<uint64_t>::max());

}  // namespace mt
