// Loading a tiktoken BPE file ("<base64 token> <rank>" lines, rank == id) into the BPE tables, and
// LLaMA-3's special tokens, which the file itself does not hold.
#include <fmt/format.h>

#include <algorithm>

#include "models/bpe_vocab.h"
#include "models/error.h"
#include "models/read_file.h"

namespace mt {

using namespace bpe_detail;

namespace {

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

struct Line {
  std::string bytes;
  int64_t rank;
  size_t line;
};

// Every non-empty line as (token bytes, rank, line number); tiktoken skips empty lines.
std::vector<Line> read_lines(const std::string& src, const std::string& text) {
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
  return lines;
}

// The ranks are exactly 0..n-1: the line of each rank.
std::vector<size_t> line_of_each_rank(const std::string& src, const std::vector<Line>& lines) {
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
  return rank_line;
}

// Regular tokens (id = rank), the lookup table, every single byte checked, the two-byte ranks.
void build_ranked_tokens(Tok& t, const std::vector<Line>& lines, const std::vector<size_t>& rank_line,
                         size_t text_size) {
  const std::string& src = t.source;
  t.arena.reserve(text_size);
  for (const Line& l : lines) add_regular(t, static_cast<int32_t>(l.rank), l.bytes);
  if (auto [id, earlier] = build_table(t); id >= 0)
    throw Error(fmt::format("{}:{}: duplicate token (the same bytes as on line {})", src, rank_line[id], rank_line[earlier]));
  for (int b = 0; b < 256; ++b) {
    if (t.byte_id[b] < 0)
      throw Error(fmt::format("{}: no token for byte 0x{:02X}: a byte-level BPE file has all 256 single bytes", src, b));
  }
  t.pair2.assign(65536, kNoRank);
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const uint8_t two[2] = {static_cast<uint8_t>(a), static_cast<uint8_t>(b)};
      const int32_t id = t.find(two, 2);
      if (id >= 0) t.pair2[a << 8 | b] = id;
    }
  }
  finish_ids(t);
}

// The caller's special tokens, on ids no regular token has.
void add_special_tokens(Tok& t, const std::map<std::string, int64_t>& special_tokens) {
  const std::string& src = t.source;
  for (const auto& [content, id] : special_tokens) {
    if (content.empty()) throw Error(fmt::format("{}: special token with empty text (id {})", src, id));
    if (id < 0 || id >= INT32_MAX) throw Error(fmt::format("{}: special token {} has invalid id {}", src, shown(content), id));
    if (static_cast<size_t>(id) < t.ids.size() && t.ids[id].kind != Tok::kAbsent)
      throw Error(fmt::format("{}: special token {} id {} is already taken", src, shown(content), id));
    set_id(t, id, content, Tok::kSpecial);
    t.added.push_back({content, id, true, false, false, false});
    t.specials[content] = id;
  }
  build_matchers(t);
}

}  // namespace

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
  const std::string text = read_file(file, "tiktoken file");
  const std::vector<Line> lines = read_lines(t->source, text);
  build_ranked_tokens(*t, lines, line_of_each_rank(t->source, lines), text.size());
  add_special_tokens(*t, special_tokens);
  return t;
}

}  // namespace mt
