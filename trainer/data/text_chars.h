// Characters of input text, shared by the data readers: printable error excerpts, Unicode
// character counts and ASCII-whitespace trimming (find_invalid_utf8 is public, in data_formats.h).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace mt {

// A message safe to print: invalid UTF-8 bytes and control characters become \xNN.
std::string printable(const std::string& s);

// Unicode code points of valid UTF-8 (bytes that do not continue a sequence).
int64_t count_chars(std::string_view s);

bool is_space(char c);
std::string_view trim(std::string_view s);
bool is_blank(std::string_view s);

}  // namespace mt
