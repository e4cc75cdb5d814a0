// Internal to the byte-level BPE files (bpe_tokenizer.cpp, bpe_vocab.cpp, tiktoken_bpe.cpp,
// tokenizer_json_bpe.cpp): the BpeTokenizer tables (regular tokens and their open-addressing lookup,
// merges, added tokens, per-id decode info), the hashing and UTF-8 helpers their hot paths inline,
// and the building steps both loaders share (defined in bpe_vocab.cpp).
#pragma once
#include <array>
#include <climits>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "models/bpe_tokenizer.h"

namespace mt {

namespace bpe_detail {

constexpr int32_t kNoRank = INT32_MAX;

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  return x;
}

// Fast hash for short byte strings (tokens are mostly < 16 bytes): whole 8-byte words, then a tail
// read as two overlapping 4-byte words (or three single bytes), so every byte counts exactly once.
inline uint64_t hash_bytes(const uint8_t* p, size_t n) {
  uint64_t h = (n + 1) * 0x9E3779B97F4A7C15ULL;
  while (n > 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    w = static_cast<uint64_t>(a) << 32 | b;
  } else if (n > 0) {
    w = static_cast<uint64_t>(p[0]) << 16 | static_cast<uint64_t>(p[n >> 1]) << 8 | p[n - 1];
  }
  return mix64(h ^ w);
}

// a[0, n) == b[0, n) without a libc call: tokens are short, and memcmp's call and dispatch cost more
// than the compare. Reads stay inside both ranges (overlapping words for the tail).
inline bool bytes_equal(const uint8_t* a, const uint8_t* b, size_t n) {
  auto load8 = [](const uint8_t* p) { uint64_t w; std::memcpy(&w, p, 8); return w; };
  auto load4 = [](const uint8_t* p) { uint32_t w; std::memcpy(&w, p, 4); return w; };
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      if (load8(a + i) != load8(b + i)) return false;
    }
    return load8(a + n - 8) == load8(b + n - 8);
  }
  if (n >= 4) return load4(a) == load4(b) && load4(a + n - 4) == load4(b + n - 4);
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// The first up-to-8 bytes of a key as one word, the same way for a token and for a lookup key of
// equal length (overlapping loads below 8 bytes), so a slot compare settles most lookups.
inline uint64_t head_of(const uint8_t* p, size_t n) {
  if (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  }
  if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    return static_cast<uint64_t>(b) << 32 | a;
  }
  return n == 0 ? 0 : static_cast<uint64_t>(p[n - 1]) << 16 | static_cast<uint64_t>(p[n >> 1]) << 8 | p[0];
}

// One UTF-8 character at s[i]: its length (0 if not well-formed) and code point.
inline size_t decode_utf8(const uint8_t* s, size_t n, size_t i, uint32_t* cp) {
  const uint8_t b0 = s[i];
  if (b0 < 0x80) return *cp = b0, 1;
  auto cont = [&](size_t k) { return i + k < n && (s[i + k] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) return *cp = (b0 & 0x1Fu) << 6 | (s[i + 1] & 0x3Fu), 2;
  if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    const uint8_t b1 = s[i + 1];
    if ((b0 == 0xE0 && b1 < 0xA0) || (b0 == 0xED && b1 > 0x9F)) return 0;
    return *cp = (b0 & 0x0Fu) << 12 | (b1 & 0x3Fu) << 6 | (s[i + 2] & 0x3Fu), 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    const uint8_t b1 = s[i + 1];
    if ((b0 == 0xF0 && b1 < 0x90) || (b0 == 0xF4 && b1 > 0x8F)) return 0;
    return *cp = (b0 & 0x07u) << 18 | (b1 & 0x3Fu) << 12 | (s[i + 2] & 0x3Fu) << 6 | (s[i + 3] & 0x3Fu), 4;
  }
  return 0;
}

struct Merge {
  int32_t rank = kNoRank;
  int32_t id = -1;  // the token the merge makes
};

}  // namespace bpe_detail

struct BpeTokenizer {
  enum class Kind { Tiktoken, HfJson };
  Kind kind = Kind::Tiktoken;
  std::string source;  // the file, for messages

  // Regular tokens: id -> bytes in `arena`, and bytes -> id through `slots` (open addressing). A
  // slot carries the token's length and first 8 bytes, so a lookup of a token of <= 8 bytes (most
  // of them) touches one cache line; longer ones compare the rest in the arena.
  struct Bytes {
    uint32_t off = 0, len = 0;
  };
  std::string arena;
  std::vector<Bytes> regular;  // by id; len 0: no regular token with that id
  struct Slot {
    uint64_t head = 0;
    uint32_t id1 = 0;  // id + 1; 0: empty
    uint16_t len = 0;
    uint16_t tag = 0;  // more hash bits
  };
  std::vector<Slot> slots;
  uint64_t mask = 0;
  size_t max_token_len = 0;
  std::array<int32_t, 256> byte_id{};  // the token of each single byte, -1 if none

  // tiktoken: rank == id, and a two-byte pair's merge is the rank of those two bytes (65536 entries,
  // the first merge of every piece). HF: merges keyed by (left id, right id).
  std::vector<int32_t> pair2;
  std::vector<uint64_t> merge_keys;  // ~0: empty
  std::vector<bpe_detail::Merge> merge_vals;
  uint64_t merge_mask = 0;
  bool ignore_merges = true;  // a piece that is a token maps to it directly (tiktoken always does)
  int32_t unk_id = -1;        // HF: token for bytes without one (else they are dropped, as HF does)

  // Special tokens (tiktoken) / added tokens (HF), matched in text before pre-tokenization.
  struct Added {
    std::string content;
    int64_t id = 0;
    bool special = true, lstrip = false, rstrip = false, normalized = false;
  };
  std::vector<Added> added;
  std::map<std::string, int64_t> specials;
  struct Matcher {  // leftmost-longest search over a set of added tokens
    std::unordered_map<std::string_view, size_t> by_content;  // -> index into `added`
    std::vector<size_t> lengths;                              // distinct, longest first
    std::array<bool, 256> first{};
  };
  Matcher raw_matcher, normalized_matcher;  // HF's two passes; tiktoken uses only the first

  // Decoding: every id's bytes (regular tokens, or added-token text) and what it is.
  enum IdKind : uint8_t { kAbsent = 0, kRegular = 1, kSpecial = 2, kAddedPlain = 3 };
  struct IdInfo {
    uint32_t off = 0, len = 0;
    IdKind kind = kAbsent;
  };
  std::vector<IdInfo> ids;

  int32_t find(const uint8_t* p, size_t n) const {
    if (n > max_token_len || n == 0) return -1;
    const uint64_t h = bpe_detail::hash_bytes(p, n);
    const uint64_t head = bpe_detail::head_of(p, n);
    const auto tag = static_cast<uint16_t>(h >> 48);
    for (uint64_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& e = slots[i];
      if (e.id1 == 0) return -1;
      if (e.head == head && e.len == n && e.tag == tag) {
        const auto id = static_cast<int32_t>(e.id1 - 1);
        if (n <= 8) return id;
        const auto* tok = reinterpret_cast<const uint8_t*>(arena.data()) + regular[id].off;
        if (bpe_detail::bytes_equal(tok + 8, p + 8, n - 8)) return id;
      }
    }
  }
  bpe_detail::Merge merge_of(int32_t left, int32_t right) const {
    const uint64_t key = static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
    for (uint64_t i = bpe_detail::mix64(key) & merge_mask;; i = (i + 1) & merge_mask) {
      if (merge_keys[i] == key) return merge_vals[i];
      if (merge_keys[i] == ~0ULL) return {};
    }
  }
};

// Building the tables (bpe_vocab.cpp), shared by tiktoken_bpe.cpp and tokenizer_json_bpe.cpp.
namespace bpe_detail {

using Tok = BpeTokenizer;

size_t table_capacity(size_t count);  // power of two, load factor <= 1/2
void add_regular(Tok& t, int32_t id, std::string_view bytes);
// Builds the bytes -> id table over every regular token; returns {id, earlier id} of the first
// duplicate, if any.
std::pair<int32_t, int32_t> build_table(Tok& t);
void build_matchers(Tok& t);
void set_id(Tok& t, int64_t id, std::string_view bytes, Tok::IdKind kind);
// Regular tokens decode to their own bytes (unless an added token took the id).
void finish_ids(Tok& t);

std::string shown(std::string_view s, size_t max = 60);  // for messages: JSON-escaped, shortened
[[noreturn]] void fail_at(const std::string& file, const std::string& place, const std::string& msg);

}  // namespace bpe_detail

}  // namespace mt
