// Byte-level BPE (LLaMA-3) encoding and decoding: added tokens split out of the text, the LLaMA-3
// pre-tokenizer, lowest-rank-first pair merging; decoding to raw bytes. The tables are bpe_vocab.h's,
// loaded by tiktoken_bpe.cpp and tokenizer_json_bpe.cpp. Lookups go through one open-addressing
// table over the token bytes; merging uses stack arrays for short pieces and a heap for long ones,
// so no input is quadratic and the hot path does not allocate.
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

#include <cstring>
#include <queue>

#include "models/bpe_vocab.h"
#include "models/error.h"
#include "models/unicode_tables.h"

namespace mt {

using namespace bpe_detail;

// llama3_pretokenize.cpp: end of the pre-token that starts at `pos` (the streaming form of
// llama3_pretokenize, so encoding never materializes the list of pieces).
size_t llama3_piece_end(std::string_view text, size_t pos);

namespace {

bool is_white_space(uint32_t cp) { return unicode::char_class(cp) == unicode::kSpace; }

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

}  // namespace

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
