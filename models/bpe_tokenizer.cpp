// Byte-level BPE (LLaMA-3): loads tiktoken rank files and HF tokenizer.json BPE models, encodes with
// the LLaMA-3 pre-tokenizer plus lowest-rank-first pair merging, decodes to raw bytes. Lookups go
// through one open-addressing table over the token bytes; merging uses stack arrays for short
// pieces and a heap for long ones, so no input is quadratic and the hot path does not allocate.
//
// Reference behaviour (each point tested in tests/test_bpe_tokenizer.cpp):
// - Parity targets: tiktoken 0.14 with Meta's pattern and ranks for LLaMA-3 files; HF tokenizers
//   0.23 for tokenizer.json. Character classes are Unicode 16.0, as in tiktoken's regex crate.
// - tiktoken special tokens are recognized only with allow_special, leftmost-longest (tiktoken's
//   own alternation order is hash-map order; no LLaMA-3 special token is a prefix of another).
// - HF added tokens follow tokenizers' encode(text, add_special_tokens=False): every added token is
//   split out of the text, special or not. With allow_special=false special ones stay text (as
//   tokenizers' encode_special_tokens=True does) while plain added tokens are still split out.
// - Invalid UTF-8 (the references take Python str, so they never see it): each bad byte is a
//   one-byte character of class Other, grouped like punctuation; decode(encode(x)) == x for any x.
#include "models/bpe_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>
#include <unordered_map>

#include "models/read_file.h"
#include "models/error.h"
#include "models/hf_config.h"  // read_json_file
#include "models/unicode_tables.h"

namespace mt {

// llama3_pretokenize.cpp: end of the pre-token that starts at `pos` (the streaming form of
// llama3_pretokenize, so encoding never materializes the list of pieces).
size_t llama3_piece_end(std::string_view text, size_t pos);

namespace {

using nlohmann::json;
constexpr int32_t kNoRank = INT32_MAX;
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

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

size_t table_capacity(size_t count) {  // power of two, load factor <= 1/2
  size_t cap = 1024;
  while (cap < 2 * count) cap <<= 1;
  return cap;
}

// One UTF-8 character at s[i]: its length (0 if not well-formed) and code point.
size_t decode_utf8(const uint8_t* s, size_t n, size_t i, uint32_t* cp) {
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

bool is_white_space(uint32_t cp) { return unicode::char_class(cp) == unicode::kSpace; }

// GPT-2's byte-to-unicode alphabet, reversed: code point -> byte, -1 outside the alphabet. Printable
// Latin-1 bytes stand for themselves; the other 68 bytes are U+0100.. in byte order.
const std::array<int16_t, 324>& unicode_to_byte() {
  static const std::array<int16_t, 324> table = [] {
    std::array<int16_t, 324> t;
    t.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[printable ? b : next++] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return table;
}

// A byte-level vocabulary string back to the bytes it stands for; false if any character is outside
// the alphabet.
bool byte_level_decode(const std::string& s, std::string* out) {
  out->clear();
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t len = decode_utf8(p, s.size(), i, &cp);
    if (len == 0 || cp >= unicode_to_byte().size() || unicode_to_byte()[cp] < 0) return false;
    out->push_back(static_cast<char>(unicode_to_byte()[cp]));
    i += len;
  }
  return true;
}

std::string shown(std::string_view s, size_t max = 60) {  // for messages: JSON-escaped, shortened
  std::string q = json(std::string(s.substr(0, max))).dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > max ? q + "..." : q;
}

struct Merge {
  int32_t rank = kNoRank;
  int32_t id = -1;  // the token the merge makes
};

}  // namespace

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
  std::vector<Merge> merge_vals;
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
    const uint64_t h = hash_bytes(p, n);
    const uint64_t head = head_of(p, n);
    const auto tag = static_cast<uint16_t>(h >> 48);
    for (uint64_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& e = slots[i];
      if (e.id1 == 0) return -1;
      if (e.head == head && e.len == n && e.tag == tag) {
        const auto id = static_cast<int32_t>(e.id1 - 1);
        if (n <= 8) return id;
        const auto* tok = reinterpret_cast<const uint8_t*>(arena.data()) + regular[id].off;
        if (bytes_equal(tok + 8, p + 8, n - 8)) return id;
      }
    }
  }
  Merge merge_of(int32_t left, int32_t right) const {
    const uint64_t key = static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
    for (uint64_t i = mix64(key) & merge_mask;; i = (i + 1) & merge_mask) {
      if (merge_keys[i] == key) return merge_vals[i];
      if (merge_keys[i] == ~0ULL) return {};
    }
  }
};

namespace {

using Tok = BpeTokenizer;

// --- building ------------------------------------------------------------------------------------

void add_regular(Tok& t, int32_t id, std::string_view bytes) {
  if (bytes.size() > 0xFFFF) throw Error(fmt::format("{}: token id {} is longer than 65535 bytes", t.source, id));
  if (t.regular.size() <= static_cast<size_t>(id)) t.regular.resize(static_cast<size_t>(id) + 1);
  t.regular[id] = {static_cast<uint32_t>(t.arena.size()), static_cast<uint32_t>(bytes.size())};
  t.arena.append(bytes);
  t.max_token_len = std::max(t.max_token_len, bytes.size());
}

// Builds the bytes -> id table over every regular token; returns {id, earlier id} of the first
// duplicate, if any.
std::pair<int32_t, int32_t> build_table(Tok& t) {
  size_t count = 0;
  for (const auto& b : t.regular) count += b.len > 0;
  t.slots.assign(table_capacity(count), Tok::Slot{});
  t.mask = t.slots.size() - 1;
  for (size_t id = 0; id < t.regular.size(); ++id) {
    const Tok::Bytes b = t.regular[id];
    if (b.len == 0) continue;
    const auto* p = reinterpret_cast<const uint8_t*>(t.arena.data() + b.off);
    const int32_t existing = t.find(p, b.len);
    if (existing >= 0) return {static_cast<int32_t>(id), existing};
    const uint64_t h = hash_bytes(p, b.len);
    uint64_t i = h & t.mask;
    while (t.slots[i].id1 != 0) i = (i + 1) & t.mask;
    t.slots[i] = {head_of(p, b.len), static_cast<uint32_t>(id + 1), static_cast<uint16_t>(b.len),
                  static_cast<uint16_t>(h >> 48)};
  }
  t.byte_id.fill(-1);
  for (int b = 0; b < 256; ++b) {
    const auto c = static_cast<uint8_t>(b);
    t.byte_id[b] = t.find(&c, 1);
  }
  return {-1, -1};
}

void build_matchers(Tok& t) {
  for (size_t i = 0; i < t.added.size(); ++i) {
    const Tok::Added& a = t.added[i];
    Tok::Matcher& m = a.normalized ? t.normalized_matcher : t.raw_matcher;
    m.by_content.emplace(a.content, i);
    m.first[static_cast<uint8_t>(a.content[0])] = true;
    if (std::find(m.lengths.begin(), m.lengths.end(), a.content.size()) == m.lengths.end())
      m.lengths.push_back(a.content.size());
  }
  for (Tok::Matcher* m : {&t.raw_matcher, &t.normalized_matcher})
    std::sort(m->lengths.begin(), m->lengths.end(), std::greater<>());
}

void set_id(Tok& t, int64_t id, std::string_view bytes, Tok::IdKind kind) {
  if (t.ids.size() <= static_cast<size_t>(id)) t.ids.resize(static_cast<size_t>(id) + 1);
  t.ids[id] = {static_cast<uint32_t>(t.arena.size()), static_cast<uint32_t>(bytes.size()), kind};
  t.arena.append(bytes);
}

// --- encoding ------------------------------------------------------------------------------------

struct Sym {
  uint32_t start;  // byte offset of the part in the piece
  int32_t id;
};

// The merge of two adjacent parts [begin, mid) [mid, end): tiktoken ranks the concatenated bytes
// (rank == id); HF looks up the (left id, right id) pair in its merge list.
inline Merge pair_merge(const Tok& t, const uint8_t* piece, uint32_t begin, uint32_t end, int32_t left, int32_t right) {
  if (t.kind == Tok::Kind::Tiktoken) {
    const int32_t id = t.find(piece + begin, end - begin);
    return id < 0 ? Merge{} : Merge{id, id};
  }
  return t.merge_of(left, right);
}

// Lowest rank first, leftmost among equal ranks (tiktoken's byte_pair_merge, HF's merge_word), by
// rescanning: fastest for the short parts lists of ordinary words. sym[m].start is the piece end.
constexpr int kScanMax = 64;
void merge_scan(const Tok& t, const uint8_t* piece, Sym* sym, int m, Merge* mg, std::vector<int64_t>& out) {
  for (int k = 0; k + 1 < m; ++k) {
    if (t.kind == Tok::Kind::Tiktoken && sym[k + 2].start - sym[k].start == 2) {
      const int32_t r = t.pair2[piece[sym[k].start] << 8 | piece[sym[k].start + 1]];
      mg[k] = {r, r < kNoRank ? r : -1};
    } else {
      mg[k] = pair_merge(t, piece, sym[k].start, sym[k + 2].start, sym[k].id, sym[k + 1].id);
    }
  }
  while (m > 1) {
    int best = -1;
    int32_t best_rank = kNoRank;
    for (int k = 0; k + 1 < m; ++k) {
      if (mg[k].rank < best_rank) best_rank = mg[k].rank, best = k;
    }
    if (best < 0) break;
    sym[best].id = mg[best].id;
    std::memmove(&sym[best + 1], &sym[best + 2], sizeof(Sym) * (m - best - 1));  // with the end sentinel
    if (m - best - 3 > 0) std::memmove(&mg[best + 1], &mg[best + 2], sizeof(Merge) * (m - best - 3));
    --m;
    if (best + 1 < m) mg[best] = pair_merge(t, piece, sym[best].start, sym[best + 2].start, sym[best].id, sym[best + 1].id);
    if (best > 0) mg[best - 1] = pair_merge(t, piece, sym[best - 1].start, sym[best + 1].start, sym[best - 1].id, sym[best].id);
  }
  for (int k = 0; k < m; ++k) out.push_back(sym[k].id);
}

// The same merge order for long pieces (a CJK sentence, a run of '=' or a megabyte without spaces)
// with a heap and a linked list: O(n log n) where rescanning would be quadratic. A heap entry is
// stale once either of its parts has changed (its version moved on).
void merge_heap(const Tok& t, const uint8_t* piece, uint32_t piece_len, const std::vector<Sym>& syms,
                std::vector<int64_t>& out) {
  struct Node {
    uint32_t start;
    int32_t id, prev, next;
    uint32_t ver;
  };
  struct Cand {
    int32_t rank;
    int32_t left, right, id;
    uint32_t ver_left, ver_right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  const auto m = static_cast<int32_t>(syms.size());
  std::vector<Node> nodes(m);
  for (int32_t k = 0; k < m; ++k) nodes[k] = {syms[k].start, syms[k].id, k - 1, k + 1 < m ? k + 1 : -1, 0};
  auto end_of = [&](int32_t k) { return nodes[k].next < 0 ? piece_len : nodes[nodes[k].next].start; };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<>> heap;
  auto push = [&](int32_t l, int32_t r) {
    const Merge mg = pair_merge(t, piece, nodes[l].start, end_of(r), nodes[l].id, nodes[r].id);
    if (mg.rank < kNoRank) heap.push({mg.rank, l, r, mg.id, nodes[l].ver, nodes[r].ver});
  };
  for (int32_t k = 0; k + 1 < m; ++k) push(k, k + 1);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    if (nodes[c.left].ver != c.ver_left || nodes[c.right].ver != c.ver_right) continue;
    Node& l = nodes[c.left];
    Node& r = nodes[c.right];
    l.id = c.id;
    ++l.ver;
    ++r.ver;  // r is gone
    l.next = r.next;
    if (r.next >= 0) nodes[r.next].prev = c.left;
    if (l.prev >= 0) push(l.prev, c.left);
    if (l.next >= 0) push(c.left, l.next);
  }
  for (int32_t k = 0; k >= 0; k = nodes[k].next) out.push_back(nodes[k].id);
}

void encode_piece(const Tok& t, const uint8_t* p, size_t n, std::vector<int64_t>& out) {
  if (n == 1 && t.byte_id[p[0]] >= 0) return out.push_back(t.byte_id[p[0]]);
  if (t.ignore_merges) {
    const int32_t id = t.find(p, n);
    if (id >= 0) return out.push_back(id);
  }
  // Parts start as single bytes. HF drops a byte without a token (or uses unk), as its BPE does.
  Sym small[kScanMax + 1];
  Merge mg[kScanMax];
  std::vector<Sym> big;
  const bool fits = n <= static_cast<size_t>(kScanMax);
  if (!fits) big.reserve(n + 1);
  int m = 0;
  for (size_t i = 0; i < n; ++i) {
    int32_t id = t.byte_id[p[i]];
    if (id < 0) {
      if (t.unk_id < 0) continue;
      id = t.unk_id;
    }
    const Sym s{static_cast<uint32_t>(i), id};
    if (fits) small[m] = s; else big.push_back(s);
    ++m;
  }
  if (m == 0) return;
  if (fits) {
    small[m] = {static_cast<uint32_t>(n), -1};
    merge_scan(t, p, small, m, mg, out);
  } else {
    merge_heap(t, p, static_cast<uint32_t>(n), big, out);
  }
}

void encode_ordinary(const Tok& t, std::string_view text, std::vector<int64_t>& out) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = llama3_piece_end(text, pos);
    encode_piece(t, s + pos, end - pos, out);
    pos = end;
  }
}

// Leftmost-longest added token in text[from, text.size()): {start, index into t.added}.
std::pair<size_t, size_t> find_added(const Tok::Matcher& m, std::string_view text, size_t from) {
  if (m.by_content.empty()) return {std::string_view::npos, 0};
  for (size_t p = from; p < text.size(); ++p) {
    if (!m.first[static_cast<uint8_t>(text[p])]) continue;
    for (size_t len : m.lengths) {
      if (p + len > text.size()) continue;
      auto it = m.by_content.find(text.substr(p, len));
      if (it != m.by_content.end()) return {p, it->second};
    }
  }
  return {std::string_view::npos, 0};
}

// Splits text at the added tokens of one matcher as HF's AddedVocabulary::find_matches does: matches
// are leftmost-longest and non-overlapping; a special token is skipped (left as text) unless
// `allow_special`; lstrip/rstrip take the white space beside a token into it. Gaps go to `gap`.
template <class Gap>
void split_added(const Tok& t, const Tok::Matcher& m, std::string_view text, bool allow_special, Gap&& gap,
                 std::vector<int64_t>& out) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  size_t done = 0, from = 0;
  while (true) {
    auto [start, idx] = find_added(m, text, from);
    if (start == std::string_view::npos) break;
    const Tok::Added& a = t.added[idx];
    size_t stop = start + a.content.size();
    from = stop;
    if (a.special && !allow_special) continue;
    if (a.lstrip) {  // back over white space, but not into what is already done
      size_t k = start;
      while (k > done) {
        size_t b = k - 1;
        while (b > done && k - b < 4 && (s[b] & 0xC0) == 0x80) --b;
        uint32_t cp = 0;
        if (decode_utf8(s, k, b, &cp) != k - b || !is_white_space(cp)) break;
        k = b;
      }
      start = k;
    }
    if (a.rstrip) {
      uint32_t cp = 0;
      for (size_t len; stop < text.size() && (len = decode_utf8(s, text.size(), stop, &cp)) > 0 && is_white_space(cp);)
        stop += len;
      from = stop;
    }
    if (done < start) gap(text.substr(done, start - done));
    out.push_back(a.id);
    done = stop;
  }
  if (done < text.size()) gap(text.substr(done));
}

// --- loading helpers -----------------------------------------------------------------------------

[[noreturn]] void fail_at(const std::string& file, const std::string& place, const std::string& msg) {
  throw Error(fmt::format("{}: {}: {}", file, place, msg));
}

bool base64_decode(std::string_view in, std::string* out) {
  static const std::array<int8_t, 256> val = [] {
    std::array<int8_t, 256> v;
    v.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) v[static_cast<uint8_t>(a[i])] = static_cast<int8_t>(i);
    return v;
  }();
  out->clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  size_t pad = 0;
  if (in.back() == '=') pad = in[in.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = in[i + k];
      const bool is_pad = i + 4 == in.size() && k >= 4 - pad;
      if (is_pad) {
        if (c != '=') return false;
        v <<= 6;
        continue;
      }
      const int8_t d = val[static_cast<uint8_t>(c)];
      if (d < 0) return false;
      v = v << 6 | static_cast<uint32_t>(d);
    }
    out->push_back(static_cast<char>(v >> 16));
    if (!(i + 4 == in.size() && pad == 2)) out->push_back(static_cast<char>(v >> 8 & 0xFF));
    if (!(i + 4 == in.size() && pad >= 1)) out->push_back(static_cast<char>(v & 0xFF));
  }
  return true;
}

// Regular tokens decode to their own bytes (unless an added token took the id).
void finish_ids(Tok& t) {
  if (t.ids.size() < t.regular.size()) t.ids.resize(t.regular.size());
  for (size_t id = 0; id < t.regular.size(); ++id) {
    const Tok::Bytes b = t.regular[id];
    if (b.len > 0 && t.ids[id].kind == Tok::kAbsent) t.ids[id] = {b.off, b.len, Tok::kRegular};
  }
}

}  // namespace

// --- public API ----------------------------------------------------------------------------------

std::map<std::string, int64_t> llama3_special_tokens(int64_t num_base_tokens) {
  // Llama 3.1+ names (meta-llama/llama-models, models/llama3_1/api/tokenizer.py); 3.0 called ids
  // 128002..128010 reserved_special_token_0..5 except the headers and eot_id.
  std::vector<std::string> names = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
                                    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
                                    "<|python_tag|>"};
  for (int i = 2; names.size() < 256; ++i) names.push_back(fmt::format("<|reserved_special_token_{}|>", i));
  std::map<std::string, int64_t> m;
  for (size_t i = 0; i < names.size(); ++i) m[names[i]] = num_base_tokens + static_cast<int64_t>(i);
  return m;
}

std::shared_ptr<const BpeTokenizer> load_tiktoken_bpe(const std::filesystem::path& file,
                                                      const std::map<std::string, int64_t>& special_tokens) {
  auto t = std::make_shared<BpeTokenizer>();
  t->kind = Tok::Kind::Tiktoken;
  t->source = file.string();
  const std::string& src = t->source;
  const std::string text = read_file(file, "tiktoken file");

  struct Line {
    std::string bytes;
    int64_t rank;
    size_t line;
  };
  std::vector<Line> lines;
  std::string bytes;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;  // tiktoken skips empty lines
    const auto where = fmt::format("{}:{}", src, line_no);
    const size_t sp = line.find_first_of(" \t");
    std::string_view tok = line.substr(0, sp), rank_s;
    if (sp != std::string_view::npos) {
      rank_s = line.substr(sp);
      rank_s.remove_prefix(std::min(rank_s.find_first_not_of(" \t"), rank_s.size()));
      while (!rank_s.empty() && (rank_s.back() == ' ' || rank_s.back() == '\t')) rank_s.remove_suffix(1);
    }
    if (sp == 0 || rank_s.empty() || rank_s.find_first_of(" \t") != std::string_view::npos)
      throw Error(fmt::format("{}: expected '<base64 token> <rank>', got {}", where, shown(line)));
    if (!base64_decode(tok, &bytes)) throw Error(fmt::format("{}: invalid base64 token {}", where, shown(tok)));
    if (bytes.empty()) throw Error(fmt::format("{}: empty token", where));
    int64_t rank = 0;
    const bool digits = rank_s.size() <= 10 && std::all_of(rank_s.begin(), rank_s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) for (char c : rank_s) rank = rank * 10 + (c - '0');
    if (!digits || rank >= INT32_MAX)
      throw Error(fmt::format("{}: rank {} is not a non-negative integer below 2^31-1", where, shown(rank_s)));
    lines.push_back({bytes, rank, line_no});
  }
  if (lines.empty()) throw Error(fmt::format("{}: empty tiktoken file (no tokens)", src));

  const size_t n = lines.size();
  std::vector<size_t> rank_line(n, 0);
  for (const Line& l : lines) {
    if (static_cast<size_t>(l.rank) >= n)
      throw Error(fmt::format("{}:{}: rank {} out of range: ranks must be 0..{} for {} tokens", src, l.line, l.rank,
                              n - 1, n));
    if (rank_line[l.rank] != 0)
      throw Error(fmt::format("{}:{}: duplicate rank {} (also on line {})", src, l.line, l.rank, rank_line[l.rank]));
    rank_line[l.rank] = l.line;
  }
  t->arena.reserve(text.size());
  for (const Line& l : lines) add_regular(*t, static_cast<int32_t>(l.rank), l.bytes);
  if (auto [id, earlier] = build_table(*t); id >= 0)
    throw Error(fmt::format("{}:{}: duplicate token (the same bytes as on line {})", src, rank_line[id], rank_line[earlier]));
  for (int b = 0; b < 256; ++b) {
    if (t->byte_id[b] < 0)
      throw Error(fmt::format("{}: no token for byte 0x{:02X}: a byte-level BPE file has all 256 single bytes", src, b));
  }
  t->pair2.assign(65536, kNoRank);
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const uint8_t two[2] = {static_cast<uint8_t>(a), static_cast<uint8_t>(b)};
      const int32_t id = t->find(two, 2);
      if (id >= 0) t->pair2[a << 8 | b] = id;
    }
  }
  finish_ids(*t);

  for (const auto& [content, id] : special_tokens) {
    if (content.empty()) throw Error(fmt::format("{}: special token with empty text (id {})", src, id));
    if (id < 0 || id >= INT32_MAX) throw Error(fmt::format("{}: special token {} has invalid id {}", src, shown(content), id));
    if (static_cast<size_t>(id) < t->ids.size() && t->ids[id].kind != Tok::kAbsent)
      throw Error(fmt::format("{}: special token {} id {} is already taken", src, shown(content), id));
    set_id(*t, id, content, Tok::kSpecial);
    t->added.push_back({content, id, true, false, false, false});
    t->specials[content] = id;
  }
  build_matchers(*t);
  return t;
}

namespace {

void parse_tokenizer_json(Tok* t, const json& j) {
  const std::string& src = t->source;
  if (!j.is_object()) fail_at(src, "top level", "must be a JSON object");

  // model
  if (!j.contains("model") || !j["model"].is_object()) fail_at(src, "model", "missing or not an object");
  const json& model = j["model"];
  if (!model.contains("type") || !model["type"].is_string())
    fail_at(src, "model.type", "missing (expected \"BPE\")");
  if (model["type"] != "BPE")
    fail_at(src, "model.type", fmt::format("unsupported model type {} (only byte-level \"BPE\")", model["type"].dump()));
  auto opt_bool = [&](const json& obj, const char* key, const std::string& path, bool dflt) {
    if (!obj.contains(key) || obj[key].is_null()) return dflt;
    if (!obj[key].is_boolean()) fail_at(src, path + "." + key, "must be true or false");
    return obj[key].get<bool>();
  };
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null() && model[key] != "")
      fail_at(src, fmt::format("model.{}", key), "unsupported (byte-level BPE has none)");
  }
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0))
    fail_at(src, "model.dropout", "unsupported (BPE dropout is for training)");
  if (opt_bool(model, "byte_fallback", "model", false)) fail_at(src, "model.byte_fallback", "unsupported for byte-level BPE");
  t->ignore_merges = opt_bool(model, "ignore_merges", "model", false);
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail_at(src, "model.vocab", "missing or not an object");
  if (!model.contains("merges") || !model["merges"].is_array()) fail_at(src, "model.merges", "missing or not a list");

  // added_tokens first: vocabulary strings outside the byte-level alphabet are allowed only for them.
  std::map<std::string, size_t> added_by_content;
  std::map<int64_t, size_t> added_by_id;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) fail_at(src, "added_tokens", "must be a list");
    const json& list = j["added_tokens"];
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string path = fmt::format("added_tokens[{}]", i);
      const json& a = list[i];
      if (!a.is_object()) fail_at(src, path, "must be an object");
      if (!a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() >= INT32_MAX)
        fail_at(src, path + ".id", "missing or not a valid token id");
      if (!a.contains("content") || !a["content"].is_string() || a["content"].get<std::string>().empty())
        fail_at(src, path + ".content", "missing or not a non-empty string");
      Tok::Added tok;
      tok.id = a["id"].get<int64_t>();
      tok.content = a["content"].get<std::string>();
      tok.special = opt_bool(a, "special", path, false);
      tok.lstrip = opt_bool(a, "lstrip", path, false);
      tok.rstrip = opt_bool(a, "rstrip", path, false);
      tok.normalized = opt_bool(a, "normalized", path, !tok.special);
      if (opt_bool(a, "single_word", path, false)) fail_at(src, path + ".single_word", "true is not supported");
      if (added_by_content.count(tok.content)) fail_at(src, path + ".content", fmt::format("duplicate added token {}", shown(tok.content)));
      if (added_by_id.count(tok.id)) fail_at(src, path + ".id", fmt::format("duplicate added token id {}", tok.id));
      added_by_content[tok.content] = t->added.size();
      added_by_id[tok.id] = t->added.size();
      t->added.push_back(tok);
    }
  }

  std::string bytes;
  std::map<int64_t, std::string> id_owner;
  for (const auto& [key, value] : model["vocab"].items()) {
    const std::string path = fmt::format("model.vocab[{}]", shown(key));
    if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() >= INT32_MAX)
      fail_at(src, path, "must be a non-negative integer id");
    const int64_t id = value.get<int64_t>();
    if (auto it = id_owner.find(id); it != id_owner.end())
      fail_at(src, path, fmt::format("id {} is also the id of {}", id, shown(it->second)));
    id_owner[id] = key;
    if (!byte_level_decode(key, &bytes)) {
      if (added_by_content.count(key)) continue;  // e.g. an added token with a space in it
      fail_at(src, path, "token is not in the byte-level (GPT-2 bytes-to-unicode) alphabet");
    }
    if (bytes.empty()) fail_at(src, path, "empty token");
    add_regular(*t, static_cast<int32_t>(id), bytes);
  }
  if (auto [id, earlier] = build_table(*t); id >= 0)
    fail_at(src, fmt::format("model.vocab[{}]", shown(id_owner[id])), fmt::format("same bytes as {}", shown(id_owner[earlier])));
  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    if (!model["unk_token"].is_string()) fail_at(src, "model.unk_token", "must be a string or null");
    const auto& unk = model["unk_token"].get_ref<const std::string&>();
    if (!model["vocab"].contains(unk)) fail_at(src, "model.unk_token", fmt::format("{} is not in the vocabulary", shown(unk)));
    t->unk_id = static_cast<int32_t>(model["vocab"][unk].get<int64_t>());
  }

  // merges: "a b" strings or ["a", "b"] pairs; rank = index (a later duplicate wins, as in HF).
  const json& merges = model["merges"];
  t->merge_keys.assign(table_capacity(merges.size()), ~0ULL);
  t->merge_vals.assign(t->merge_keys.size(), Merge{});
  t->merge_mask = t->merge_keys.size() - 1;
  std::string left, right, both;
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string path = fmt::format("model.merges[{}]", i);
    const json& e = merges[i];
    std::string a, b;
    if (e.is_string()) {
      const auto& s = e.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail_at(src, path, fmt::format("expected \"left right\" with one space, got {}", shown(s)));
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      fail_at(src, path, "expected \"left right\" or [\"left\", \"right\"]");
    }
    auto id_of = [&](const std::string& s, std::string* out, const char* what) {
      const int32_t id = byte_level_decode(s, out) ? t->find(reinterpret_cast<const uint8_t*>(out->data()), out->size()) : -1;
      if (id < 0) fail_at(src, path, fmt::format("{}{} is not in the vocabulary", what, shown(s)));
      return id;
    };
    const int32_t ia = id_of(a, &left, ""), ib = id_of(b, &right, "");
    const int32_t merged = id_of(a + b, &both, "merged token ");
    const uint64_t key = static_cast<uint64_t>(static_cast<uint32_t>(ia)) << 32 | static_cast<uint32_t>(ib);
    uint64_t k = mix64(key) & t->merge_mask;
    while (t->merge_keys[k] != ~0ULL && t->merge_keys[k] != key) k = (k + 1) & t->merge_mask;
    t->merge_keys[k] = key;
    t->merge_vals[k] = {static_cast<int32_t>(i), merged};
  }

  // normalizer / pre-tokenizer / decoder: exactly LLaMA-3's, or a clear error rather than a guess.
  if (j.contains("normalizer") && !j["normalizer"].is_null())
    fail_at(src, "normalizer", fmt::format("unsupported normalizer {} (byte-level BPE here takes none)", shown(j["normalizer"].dump(), 80)));
  const std::string expected_pre = "Sequence[Split(LLaMA-3 regex, Isolated), ByteLevel(use_regex=false)]";
  if (!j.contains("pre_tokenizer") || !j["pre_tokenizer"].is_object())
    fail_at(src, "pre_tokenizer", "missing; expected " + expected_pre);
  const json& pre = j["pre_tokenizer"];
  if (pre.value("type", "") != "Sequence" || !pre.contains("pretokenizers") || !pre["pretokenizers"].is_array() ||
      pre["pretokenizers"].size() != 2)
    fail_at(src, "pre_tokenizer", fmt::format("unsupported pre-tokenizer {}; expected {}", shown(pre.dump(), 120), expected_pre));
  const json& split = pre["pretokenizers"][0];
  const json& bl = pre["pretokenizers"][1];
  if (!split.is_object() || split.value("type", "") != "Split")
    fail_at(src, "pre_tokenizer.pretokenizers[0]", "expected a Split pre-tokenizer with LLaMA-3's regex");
  if (!split.contains("pattern") || !split["pattern"].is_object() || !split["pattern"].contains("Regex") ||
      !split["pattern"]["Regex"].is_string())
    fail_at(src, "pre_tokenizer.pretokenizers[0].pattern", "expected {\"Regex\": <LLaMA-3 pattern>}");
  if (split["pattern"]["Regex"] != kLlama3Pattern)
    fail_at(src, "pre_tokenizer.pretokenizers[0].pattern.Regex",
            fmt::format("unsupported pre-tokenizer regex {} (only LLaMA-3's is implemented)", shown(split["pattern"]["Regex"].get<std::string>(), 120)));
  if (split.value("behavior", "") != "Isolated" || split.value("invert", false))
    fail_at(src, "pre_tokenizer.pretokenizers[0]", "unsupported Split behavior (expected Isolated, invert false)");
  if (!bl.is_object() || bl.value("type", "") != "ByteLevel")
    fail_at(src, "pre_tokenizer.pretokenizers[1]", "expected a ByteLevel pre-tokenizer");
  if (opt_bool(bl, "use_regex", "pre_tokenizer.pretokenizers[1]", true))
    fail_at(src, "pre_tokenizer.pretokenizers[1].use_regex", "unsupported: true adds GPT-2's regex split");
  if (opt_bool(bl, "add_prefix_space", "pre_tokenizer.pretokenizers[1]", false))
    fail_at(src, "pre_tokenizer.pretokenizers[1].add_prefix_space", "unsupported: true");
  if (!j.contains("decoder") || !j["decoder"].is_object() || j["decoder"].value("type", "") != "ByteLevel")
    fail_at(src, "decoder", "unsupported decoder (expected ByteLevel)");

  // Added tokens decode as HF does: through the byte-level alphabet when all of their characters are
  // in it, else as their UTF-8 text.
  for (const Tok::Added& a : t->added) {
    const std::string_view out = byte_level_decode(a.content, &bytes) ? std::string_view(bytes) : std::string_view(a.content);
    set_id(*t, a.id, out, a.special ? Tok::kSpecial : Tok::kAddedPlain);
    if (a.special) t->specials[a.content] = a.id;
  }
  finish_ids(*t);
  build_matchers(*t);
}

}  // namespace

std::shared_ptr<const BpeTokenizer> load_tokenizer_json_bpe(const std::filesystem::path& file) {
  auto t = std::make_shared<BpeTokenizer>();
  t->kind = Tok::Kind::HfJson;
  t->source = file.string();
  const json j = read_json_file(file);
  try {
    parse_tokenizer_json(t.get(), j);
  } catch (const json::exception& e) {  // a value of an unexpected type deep inside
    throw Error(fmt::format("{}: unexpected JSON structure: {}", t->source, e.what()));
  }
  return t;
}

std::vector<int64_t> bpe_encode(const BpeTokenizer& t, std::string_view text, bool allow_special) {
  std::vector<int64_t> out;
  out.reserve(text.size() / 4 + 8);
  if (t.kind == Tok::Kind::Tiktoken) {
    // tiktoken: special tokens only when allowed; the text between them is encoded on its own.
    if (!allow_special || t.added.empty()) {
      encode_ordinary(t, text, out);
    } else {
      split_added(t, t.raw_matcher, text, true, [&](std::string_view gap) { encode_ordinary(t, gap, out); }, out);
    }
    return out;
  }
  // HF: non-normalized added tokens on the text, then normalized ones in what is left (there is no
  // normalizer); special ones only when allowed, plain added tokens always (as HF's encode does).
  auto second_pass = [&](std::string_view gap) {
    split_added(t, t.normalized_matcher, gap, allow_special, [&](std::string_view g) { encode_ordinary(t, g, out); }, out);
  };
  split_added(t, t.raw_matcher, text, allow_special, second_pass, out);
  return out;
}

std::string bpe_decode_bytes(const BpeTokenizer& t, const std::vector<int64_t>& ids, bool skip_special) {
  std::string out;
  out.reserve(ids.size() * 4);
  for (const int64_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= t.ids.size() || t.ids[id].kind == Tok::kAbsent)
      throw Error(fmt::format("{}: token id {} is not in the vocabulary (size {})", t.source, id, t.ids.size()));
    const Tok::IdInfo& info = t.ids[id];
    if (skip_special && info.kind == Tok::kSpecial) continue;
    out.append(t.arena, info.off, info.len);
  }
  return out;
}

int64_t bpe_vocab_size(const BpeTokenizer& t) { return static_cast<int64_t>(t.ids.size()); }

const std::map<std::string, int64_t>& bpe_special_tokens(const BpeTokenizer& t) { return t.specials; }

int64_t bpe_token_id(const BpeTokenizer& t, std::string_view bytes) {
  if (bytes.empty()) return -1;
  const int32_t id = t.find(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (id >= 0) return id;
  for (const Tok::Added& a : t.added) {  // HF added tokens that are not special
    if (!a.special && a.content == bytes) return a.id;
  }
  return -1;
}

}  // namespace mt
