// LLaMA-3's pre-tokenizer, hand-written: the pieces that tiktoken's regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// finds, with its backtracking (leftmost-first) semantics, over UTF-8 bytes. No regex library: exact
// parity on both machines, and several times faster than a general engine.
#include <algorithm>
#include <array>
#include <cstring>

#include "models/bpe_tokenizer.h"
#include "models/unicode_tables.h"

namespace mt {

namespace unicode {

CharClass char_class(uint32_t cp) {
  // The BMP (all of the common scripts) through a 64 KiB table built once from the runs; the rest
  // by binary search over the runs.
  static const std::array<uint8_t, 0x10000> bmp = [] {
    std::array<uint8_t, 0x10000> t{};
    for (size_t i = 0; i < kNumClassRuns && kClassRuns[i].start < 0x10000; ++i) {
      const uint32_t end = i + 1 < kNumClassRuns ? std::min<uint32_t>(kClassRuns[i + 1].start, 0x10000) : 0x10000;
      std::fill(t.begin() + kClassRuns[i].start, t.begin() + end, kClassRuns[i].cls);
    }
    return t;
  }();
  if (cp < 0x10000) return static_cast<CharClass>(bmp[cp]);
  if (cp > 0x10FFFF) return kOther;
  const ClassRun* end = kClassRuns + kNumClassRuns;
  const ClassRun* it = std::upper_bound(kClassRuns, end, cp, [](uint32_t c, const ClassRun& r) { return c < r.start; });
  return static_cast<CharClass>((it - 1)->cls);
}

}  // namespace unicode

namespace {

using unicode::CharClass;
using unicode::kLetter;
using unicode::kNumber;
using unicode::kOther;
using unicode::kSpace;

// ASCII classes: the regex's view of bytes 0..127 (\s is \t\n\v\f\r and space, not 0x1C..0x1F).
constexpr std::array<uint8_t, 128> kAscii = [] {
  std::array<uint8_t, 128> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = kLetter;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = kLetter;
  for (int c = '0'; c <= '9'; ++c) t[c] = kNumber;
  for (int c : {'\t', '\n', '\v', '\f', '\r', ' '}) t[c] = kSpace;
  return t;
}();

struct Char {
  uint32_t len;  // bytes
  CharClass cls;
};

// The character at s[i] (i < n). A byte that does not start a well-formed UTF-8 sequence (stray
// continuation byte, overlong form, surrogate, > U+10FFFF, truncated) is a one-byte character of
// class Other, so invalid input groups like punctuation and every byte stays in exactly one piece.
inline Char char_at(const uint8_t* s, size_t n, size_t i) {
  const uint8_t b0 = s[i];
  if (b0 < 0x80) return {1, static_cast<CharClass>(kAscii[b0])};
  const size_t left = n - i;
  auto cont = [&](size_t k) { return (s[i + k] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (left >= 2 && cont(1)) return {2, unicode::char_class((b0 & 0x1Fu) << 6 | (s[i + 1] & 0x3Fu))};
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left >= 3 && cont(1) && cont(2)) {
      const uint8_t b1 = s[i + 1];
      const bool ok = b0 == 0xE0 ? b1 >= 0xA0 : b0 == 0xED ? b1 <= 0x9F : true;  // no overlongs, no surrogates
      if (ok) return {3, unicode::char_class((b0 & 0x0Fu) << 12 | (b1 & 0x3Fu) << 6 | (s[i + 2] & 0x3Fu))};
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left >= 4 && cont(1) && cont(2) && cont(3)) {
      const uint8_t b1 = s[i + 1];
      const bool ok = b0 == 0xF0 ? b1 >= 0x90 : b0 == 0xF4 ? b1 <= 0x8F : true;  // no overlongs, <= U+10FFFF
      if (ok) {
        return {4, unicode::char_class((b0 & 0x07u) << 18 | (b1 & 0x3Fu) << 12 | (s[i + 2] & 0x3Fu) << 6 |
                                       (s[i + 3] & 0x3Fu))};
      }
    }
  }
  return {1, kOther};
}

inline bool is_crlf(uint8_t b) { return b == '\r' || b == '\n'; }

// End of the run of characters of class `cls` starting at i.
inline size_t skip_class(const uint8_t* s, size_t n, size_t i, CharClass cls) {
  while (i < n) {
    if (s[i] < 0x80) {  // ASCII fast path
      if (kAscii[s[i]] != cls) break;
      ++i;
      continue;
    }
    const Char c = char_at(s, n, i);
    if (c.cls != cls) break;
    i += c.len;
  }
  return i;
}

}  // namespace

// End (exclusive) of the piece that starts at `pos` (< text.size()). Each branch is one alternative
// of the regex, tried in the regex's order; a later branch runs only when every earlier one fails.
size_t llama3_piece_end(std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const size_t i = pos;

  // (?i:'s|'t|'re|'ve|'m|'ll|'d): case-insensitive with Unicode simple case folding, under which
  // only 's' gains a non-ASCII variant, U+017F LATIN SMALL LETTER LONG S (bytes C5 BF).
  if (s[i] == '\'' && i + 1 < n) {
    const uint8_t c1 = s[i + 1] | 0x20;  // ASCII lower case; only compared against letters below
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
    if (s[i + 1] == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return i + 3;
    if (i + 2 < n) {
      const uint8_t c2 = s[i + 2] | 0x20;
      if (((c1 == 'r' || c1 == 'v') && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return i + 3;
    }
  }

  const Char c0 = char_at(s, n, i);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c0.cls == kLetter) return skip_class(s, n, i + c0.len, kLetter);
  if ((c0.cls == kOther || (c0.cls == kSpace && !is_crlf(s[i]))) && i + c0.len < n) {
    const Char c1 = char_at(s, n, i + c0.len);
    if (c1.cls == kLetter) return skip_class(s, n, i + c0.len + c1.len, kLetter);
  }
  // \p{N}{1,3}
  if (c0.cls == kNumber) {
    size_t j = i + c0.len;
    for (int k = 1; k < 3 && j < n; ++k) {
      const Char c = char_at(s, n, j);
      if (c.cls != kNumber) break;
      j += c.len;
    }
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t p = std::string_view::npos;
  if (c0.cls == kOther) {
    p = i;
  } else if (s[i] == ' ' && i + 1 < n && char_at(s, n, i + 1).cls == kOther) {
    p = i + 1;
  }
  if (p != std::string_view::npos) {
    size_t j = skip_class(s, n, p, kOther);
    while (j < n && is_crlf(s[j])) ++j;
    return j;
  }
  // c0 is white space. \s*[\r\n]+ ends just after the run's last CR/LF; \s+(?!\S) takes the run to
  // the end of the text, or all of it but its last character; \s+ takes a lone one.
  size_t j = i, last_start = i, crlf_end = std::string_view::npos;
  while (j < n) {
    const Char c = char_at(s, n, j);
    if (c.cls != kSpace) break;
    if (is_crlf(s[j])) crlf_end = j + 1;
    last_start = j;
    j += c.len;
  }
  if (crlf_end != std::string_view::npos) return crlf_end;
  if (j == n) return j;
  if (last_start > i) return last_start;
  return j;
}

std::vector<std::string_view> llama3_pretokenize(std::string_view text) {
  std::vector<std::string_view> pieces;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = llama3_piece_end(text, pos);
    pieces.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return pieces;
}

}  // namespace mt
