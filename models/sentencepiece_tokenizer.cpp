// SentencePiece tokenizers (LLaMA-2, Mistral v1/v3 `tokenizer.model`): encoding through
// libsentencepiece itself, a small reader of the model protobuf for what its C++ API does not expose
// (piece types, normalizer flags), and a decoder that returns raw bytes so that the caller decides
// how invalid UTF-8 from byte-fallback pieces is shown.
#include "models/sentencepiece_tokenizer.h"

#include <fmt/format.h>
#include <sentencepiece_processor.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

#include "models/read_file.h"
#include "models/error.h"

namespace mt {

namespace {

// SentencePiece::Type in sentencepiece_model.proto.
enum PieceType : uint8_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

const char kSpace[] = "\xE2\x96\x81";  // U+2581, the piece alphabet's space

// What we need from the ModelProto, read straight off the protobuf wire format (the C++ API of
// libsentencepiece hides piece types and the normalizer spec behind protobuf headers it does not
// install). Field numbers from sentencepiece_model.proto.
struct ModelInfo {
  std::vector<uint8_t> types;  // per piece
  bool has_trainer_spec = false, has_normalizer_spec = false;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, treat_whitespace_as_suffix = false;
  std::string unk_surface = " \xE2\x81\x87 ";
};

struct WireReader {
  const std::string& file;
  std::string_view buf;
  size_t pos = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(fmt::format("{}: not a valid SentencePiece model (truncated or corrupt protobuf at byte {}: {})",
                            file, pos, what));
  }
  bool done() const { return pos >= buf.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= buf.size()) fail("varint runs past the end");
      const uint8_t b = static_cast<uint8_t>(buf[pos++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > buf.size() - pos) fail(fmt::format("length {} runs past the end", n));
    std::string_view s = buf.substr(pos, n);
    pos += n;
    return s;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: if (buf.size() - pos < 8) fail("fixed64 runs past the end"); pos += 8; break;
      case 2: bytes(); break;
      case 5: if (buf.size() - pos < 4) fail("fixed32 runs past the end"); pos += 4; break;
      default: fail(fmt::format("unknown wire type {}", wire));
    }
  }
};

// Calls fn(field, wire, reader) for each field of a message; fn must consume the value.
template <typename Fn>
void for_each_field(WireReader& r, Fn&& fn) {
  while (!r.done()) {
    const uint64_t key = r.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (field == 0) r.fail("field number 0");
    fn(field, wire, r);
  }
}

ModelInfo read_model_info(const std::string& file, std::string_view data) {
  ModelInfo info;
  WireReader top{file, data};
  for_each_field(top, [&](uint32_t field, uint32_t wire, WireReader& r) {
    if (field == 1 && wire == 2) {  // repeated SentencePiece pieces
      WireReader p{file, r.bytes()};
      uint8_t type = kNormal;
      for_each_field(p, [&](uint32_t f, uint32_t w, WireReader& pr) {
        if (f == 3 && w == 0) type = static_cast<uint8_t>(pr.varint());
        else pr.skip(w);
      });
      info.types.push_back(type);
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      info.has_trainer_spec = true;
      WireReader t{file, r.bytes()};
      for_each_field(t, [&](uint32_t f, uint32_t w, WireReader& tr) {
        if (f == 24 && w == 0) info.treat_whitespace_as_suffix = tr.varint() != 0;
        else if (f == 44 && w == 2) info.unk_surface = std::string(tr.bytes());
        else tr.skip(w);
      });
    } else if (field == 3 && wire == 2) {  // NormalizerSpec
      info.has_normalizer_spec = true;
      WireReader n{file, r.bytes()};
      for_each_field(n, [&](uint32_t f, uint32_t w, WireReader& nr) {
        if (f == 3 && w == 0) info.add_dummy_prefix = nr.varint() != 0;
        else if (f == 4 && w == 0) info.remove_extra_whitespaces = nr.varint() != 0;
        else nr.skip(w);
      });
    } else {
      r.skip(wire);
    }
  });
  // Protobuf has no end marker: a file cut at a field boundary parses. The specs come after the
  // pieces in a serialized model, so a cut model lacks them.
  if (info.types.empty() || !info.has_trainer_spec || !info.has_normalizer_spec)
    throw Error(fmt::format("{}: not a valid SentencePiece model (no {}; truncated?)", file,
                            info.types.empty() ? "pieces" : !info.has_trainer_spec ? "trainer_spec" : "normalizer_spec"));
  return info;
}

int byte_of_piece(const std::string& piece) {  // "<0xE2>" -> 0xE2, else -1
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = piece[i];
    v = v * 16 + (c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -999);
  }
  return v >= 0 ? v : -1;
}

}  // namespace

struct SentencePieceTokenizer {
  sentencepiece::SentencePieceProcessor proc;
  std::string file;
  ModelInfo info;
  std::vector<std::string> pieces;                  // id -> piece text
  std::vector<int16_t> byte_value;                  // id -> byte for <0xNN> pieces, else -1
  std::map<std::string, int64_t> special;           // control, unknown and user-defined pieces
  std::array<std::vector<std::pair<std::string, int64_t>>, 256> special_by_first;  // longest first
  int64_t bos = -1, eos = -1, pad = -1, unk = -1;

  bool is_special_type(int64_t id) const {
    const uint8_t t = info.types[static_cast<size_t>(id)];
    return t == kControl || t == kUnknown || t == kUserDefined;
  }
};

std::shared_ptr<const SentencePieceTokenizer> load_sentencepiece(const std::filesystem::path& file) {
  const std::string name = file.string();
  const std::string data = read_file(file, "SentencePiece model");
  if (data.empty()) throw Error(fmt::format("{}: empty file, not a SentencePiece model", name));

  auto t = std::make_shared<SentencePieceTokenizer>();
  t->file = name;
  t->info = read_model_info(name, data);
  const auto status = t->proc.LoadFromSerializedProto(data);
  if (!status.ok()) throw Error(fmt::format("{}: not a valid SentencePiece model: {}", name, status.ToString()));
  const int n = t->proc.GetPieceSize();
  if (n <= 0 || static_cast<size_t>(n) != t->info.types.size())
    throw Error(fmt::format("{}: SentencePiece model has {} pieces but its protobuf lists {}", name, n,
                            t->info.types.size()));
  if (t->info.treat_whitespace_as_suffix)
    throw Error(fmt::format("{}: SentencePiece models with treat_whitespace_as_suffix are not supported", name));

  t->pieces.resize(static_cast<size_t>(n));
  t->byte_value.assign(static_cast<size_t>(n), -1);
  for (int i = 0; i < n; ++i) {
    t->pieces[static_cast<size_t>(i)] = t->proc.IdToPiece(i);
    if (t->info.types[static_cast<size_t>(i)] == kByte) {
      const int b = byte_of_piece(t->pieces[static_cast<size_t>(i)]);
      if (b < 0) throw Error(fmt::format("{}: byte piece {} is not of the form <0xNN>", name, i));
      t->byte_value[static_cast<size_t>(i)] = static_cast<int16_t>(b);
    }
    if (t->is_special_type(i) && !t->pieces[static_cast<size_t>(i)].empty())
      t->special.emplace(t->pieces[static_cast<size_t>(i)], i);
  }
  for (const auto& [text, id] : t->special) t->special_by_first[static_cast<uint8_t>(text[0])].emplace_back(text, id);
  for (auto& v : t->special_by_first)
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  t->bos = t->proc.bos_id();
  t->eos = t->proc.eos_id();
  t->pad = t->proc.pad_id();
  t->unk = t->proc.unk_id();
  return t;
}

namespace {

void encode_plain(const SentencePieceTokenizer& t, std::string_view text, std::vector<int64_t>& out) {
  if (text.empty()) return;
  std::vector<int> ids;
  const auto status = t.proc.Encode(absl::string_view(text.data(), text.size()), &ids);
  if (!status.ok()) throw Error(fmt::format("{}: SentencePiece encode failed: {}", t.file, status.ToString()));
  out.insert(out.end(), ids.begin(), ids.end());
}

// Appends the decoding of ids[b, e) as libsentencepiece's Decode does it (the first piece loses the
// dummy-prefix space; control pieces are invisible; <unk> shows as the unk surface), except that
// byte pieces are copied as raw bytes, valid UTF-8 or not.
void decode_run(const SentencePieceTokenizer& t, const std::vector<int64_t>& ids, size_t b, size_t e,
                std::string& out) {
  const size_t start = out.size();
  const bool strip_first_space = t.info.add_dummy_prefix || t.info.remove_extra_whitespaces;
  bool is_bos_ws = true, bos_ws_seen = false;
  for (size_t i = b; i < e; ++i) {
    const auto id = static_cast<size_t>(ids[i]);
    if (t.byte_value[id] >= 0) {
      out.push_back(static_cast<char>(t.byte_value[id]));
      continue;
    }
    if (bos_ws_seen || out.size() > start) is_bos_ws = false;
    bos_ws_seen = false;
    const uint8_t type = t.info.types[id];
    if (type == kControl) continue;
    if (type == kUnknown) {
      out += t.info.unk_surface;
      continue;
    }
    std::string_view piece = t.pieces[id];
    if (is_bos_ws && strip_first_space && piece.compare(0, 3, kSpace) == 0) {
      piece.remove_prefix(3);
      bos_ws_seen = !t.info.remove_extra_whitespaces;
    }
    for (size_t k = 0; k < piece.size();) {
      if (piece.compare(k, 3, kSpace) == 0) {
        out.push_back(' ');
        k += 3;
      } else {
        out.push_back(piece[k++]);
      }
    }
  }
}

}  // namespace

std::vector<int64_t> sp_encode(const SentencePieceTokenizer& t, std::string_view text, bool allow_special) {
  std::vector<int64_t> out;
  if (!allow_special) {
    encode_plain(t, text, out);
    return out;
  }
  // Split at the leftmost-longest special piece; each text segment is encoded on its own, exactly as
  // sentencepiece would encode it alone (so it gets the dummy-prefix space).
  size_t seg = 0;
  for (size_t i = 0; i < text.size();) {
    const auto& cands = t.special_by_first[static_cast<uint8_t>(text[i])];
    const std::pair<std::string, int64_t>* hit = nullptr;
    for (const auto& c : cands)
      if (text.compare(i, c.first.size(), c.first) == 0) {
        hit = &c;
        break;
      }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    encode_plain(t, text.substr(seg, i - seg), out);
    out.push_back(hit->second);
    i += hit->first.size();
    seg = i;
  }
  encode_plain(t, text.substr(seg), out);
  return out;
}

std::vector<int64_t> sp_encode_with_offsets(const SentencePieceTokenizer& t, std::string_view text,
                                            std::vector<std::pair<size_t, size_t>>& offsets) {
  std::vector<int64_t> out;
  offsets.clear();
  if (text.empty()) return out;
  sentencepiece::ImmutableSentencePieceText spt;
  const auto status = t.proc.Encode(absl::string_view(text.data(), text.size()), spt.mutable_proto());
  if (!status.ok()) throw Error(fmt::format("{}: SentencePiece encode failed: {}", t.file, status.ToString()));
  const size_t n = spt.pieces_size();
  out.reserve(n);
  offsets.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto p = spt.pieces(static_cast<int>(i));
    out.push_back(p.id());
    const size_t b = std::min<size_t>(p.begin(), text.size()), e = std::min<size_t>(p.end(), text.size());
    offsets.emplace_back(b, std::max(b, e));
  }
  return out;
}

std::string sp_decode(const SentencePieceTokenizer& t, const std::vector<int64_t>& ids, bool skip_special) {
  const auto n = static_cast<int64_t>(t.pieces.size());
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= n)
      throw Error(fmt::format("token id {} at position {} is outside the vocabulary [0, {}) of {}", ids[i], i, n,
                              t.file));
  std::string out;
  if (skip_special) {  // libsentencepiece's own behaviour: control pieces are invisible
    decode_run(t, ids, 0, ids.size(), out);
    return out;
  }
  // Special pieces are written as their text and end a segment: the inverse of sp_encode with
  // allow_special, where the text after a special piece is encoded on its own.
  size_t run = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!t.is_special_type(ids[i])) continue;
    decode_run(t, ids, run, i, out);
    out += t.pieces[static_cast<size_t>(ids[i])];
    run = i + 1;
  }
  decode_run(t, ids, run, ids.size(), out);
  return out;
}

int64_t sp_vocab_size(const SentencePieceTokenizer& t) { return static_cast<int64_t>(t.pieces.size()); }

int64_t sp_piece_id(const SentencePieceTokenizer& t, std::string_view piece) {
  // PieceToId answers <unk>'s id for unknown pieces; check the round trip.
  const int id = t.proc.PieceToId(absl::string_view(piece.data(), piece.size()));
  if (id < 0 || static_cast<size_t>(id) >= t.pieces.size() || t.pieces[static_cast<size_t>(id)] != piece) return -1;
  return id;
}

std::map<std::string, int64_t> sp_special_pieces(const SentencePieceTokenizer& t) { return t.special; }
int64_t sp_bos_id(const SentencePieceTokenizer& t) { return t.bos; }
int64_t sp_eos_id(const SentencePieceTokenizer& t) { return t.eos; }
int64_t sp_pad_id(const SentencePieceTokenizer& t) { return t.pad; }
int64_t sp_unk_id(const SentencePieceTokenizer& t) { return t.unk; }

}  // namespace mt
