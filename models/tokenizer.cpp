// The Tokenizer front end: finds the tokenizer files of a HF model directory (or takes one file),
// tells byte-level BPE (tiktoken text / tokenizer.json) from SentencePiece (protobuf) by content,
// applies tokenizer_config.json and special_tokens_map.json for special-token ids, and dispatches
// encode/decode, splitting at special tokens itself and mapping invalid UTF-8 to U+FFFD.
#include "models/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "models/bpe_tokenizer.h"
#include "models/read_file.h"
#include "models/error.h"
#include "models/json_read.h"
#include "models/sentencepiece_tokenizer.h"

namespace mt {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A tiktoken file is text lines "<base64 token> <rank>"; a SentencePiece model is a binary protobuf.
bool looks_like_tiktoken(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const size_t sp = line.find(' ');
  if (sp == 0 || sp == std::string::npos || sp + 1 == line.size()) return false;
  for (size_t i = 0; i < sp; ++i) {
    const char c = line[i];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) return false;
  }
  for (size_t i = sp + 1; i < line.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(line[i]))) return false;
  return true;
}

bool looks_like_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char c;
  while (in.get(c))
    if (!std::isspace(static_cast<unsigned char>(c))) return c == '{';
  return false;
}

int64_t count_lines(const fs::path& file) {
  const std::string text = read_file(file);
  int64_t n = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (text.find_first_not_of(" \r\t", start) < end) ++n;
    start = end + 1;
  }
  return n;
}

bool has_byte_level(const json& j) {
  if (j.is_object()) {
    if (j.contains("type") && j["type"] == "ByteLevel") return true;
    for (const auto& [k, v] : j.items()) if (has_byte_level(v)) return true;
  } else if (j.is_array()) {
    for (const auto& v : j) if (has_byte_level(v)) return true;
  }
  return false;
}

// What kind of model a tokenizer.json holds, without building its (large) vocab and merges.
struct JsonKind {
  std::string model_type;
  bool byte_level = false, byte_fallback = false;
  bool is_byte_level_bpe() const { return model_type == "BPE" && byte_level && !byte_fallback; }
};

JsonKind inspect_tokenizer_json(const fs::path& file) {
  JsonLimits skip_vocab;
  skip_vocab.skip = {{"model", "vocab"}, {"model", "merges"}};
  const json j = read_json_file(file, "tokenizer file", skip_vocab);
  if (!j.is_object()) throw Error(fmt::format("{}: expected a JSON object", file.string()));
  if (!j.contains("model") || !j["model"].is_object())
    throw Error(fmt::format("{}: missing object 'model'", file.string()));
  JsonKind k;
  const json& m = j["model"];
  k.model_type = m.value("type", std::string());
  k.byte_fallback = m.contains("byte_fallback") && m["byte_fallback"].is_boolean() && m["byte_fallback"].get<bool>();
  k.byte_level = (j.contains("pre_tokenizer") && has_byte_level(j["pre_tokenizer"])) ||
                 (j.contains("decoder") && has_byte_level(j["decoder"]));
  return k;
}

// Python's bytes.decode("utf-8", "replace"): one U+FFFD per maximal invalid subpart (Unicode's
// "substitution of maximal subparts"), everything valid copied as is.
std::string utf8_replace_invalid(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    size_t len = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    if (len == 0) {  // 0x80..0xC1, 0xF5..0xFF never start a character
      out += kReplacement;
      ++i;
      continue;
    }
    size_t k = i + 1;
    for (; k < i + len && k < n; ++k) {
      const auto b = static_cast<uint8_t>(s[k]);
      const uint8_t l = k == i + 1 ? lo : 0x80, h = k == i + 1 ? hi : 0xBF;
      if (b < l || b > h) break;
    }
    if (k == i + len) out.append(s.substr(i, len));
    else out += kReplacement;
    i = k;
  }
  return out;
}

// A token given in a HF config: "text", {"content": "text", ...}, or null (no such token).
std::optional<std::string> config_token_text(const json& v, const std::string& file, const std::string& key) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  throw Error(fmt::format("{}: key '{}': expected a string, an object with a string \"content\", or null, got {}",
                          file, key, v.dump()));
}

// The model file a Tokenizer wraps, as the load steps see it.
struct Backend {
  std::shared_ptr<const SentencePieceTokenizer> sp;
  std::shared_ptr<const BpeTokenizer> bpe;
  fs::path source;
  int64_t vocab_size() const { return sp ? sp_vocab_size(*sp) : bpe_vocab_size(*bpe); }
  int64_t piece_id(const std::string& text) const { return sp ? sp_piece_id(*sp, text) : bpe_token_id(*bpe, text); }
};

Backend load_json_bpe(const fs::path& file) {
  const JsonKind k = inspect_tokenizer_json(file);
  if (!k.is_byte_level_bpe())
    throw Error(fmt::format("{}: model type '{}'{} is not a byte-level BPE; only LLaMA-3 style byte-level BPE "
                            "tokenizer.json files are read (SentencePiece models load from tokenizer.model)",
                            file.string(), k.model_type, k.byte_fallback ? " with byte_fallback" : ""));
  return {nullptr, load_tokenizer_json_bpe(file), file};
}

// A tokenizer.model: a tiktoken file (told by content) or a SentencePiece model.
Backend load_model_file(const fs::path& file) {
  std::error_code ec;
  if (fs::is_directory(file, ec)) throw Error(fmt::format("{}: is a directory, not a tokenizer file", file.string()));
  Backend b;
  if (looks_like_tiktoken(file)) {
    // The tiktoken file holds only the mergeable ranks; LLaMA-3's special tokens follow them.
    b.bpe = load_tiktoken_bpe(file, llama3_special_tokens(count_lines(file)));
  } else {
    b.sp = load_sentencepiece(file);
  }
  b.source = file;
  return b;
}

// True when the optional file `file` of a tokenizer directory is there. One that is there but is no
// regular file (a FIFO would block the read forever, a directory has no bytes) is an mt::Error
// naming it, never skipped: the tokenizer would silently be another one.
bool optional_tokenizer_file(const fs::path& file) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(file, ec);
  if (ec || !fs::exists(st)) return false;
  check_regular_file(file, "tokenizer file");
  return true;
}

// The model file of a HF directory, or the one file given.
Backend load_backend(const fs::path& path, bool is_dir) {
  if (is_dir) {
    const fs::path tj = path / "tokenizer.json", tm = path / "tokenizer.model";
    const bool has_tj = optional_tokenizer_file(tj), has_tm = optional_tokenizer_file(tm);
    // Prefer tokenizer.json when it is byte-level BPE; a SentencePiece-style tokenizer.json
    // (LLaMA-2, Mistral) is the HF conversion of tokenizer.model, which we read instead.
    if (has_tj && (!has_tm || inspect_tokenizer_json(tj).is_byte_level_bpe())) return load_json_bpe(tj);
    if (has_tm) return load_model_file(tm);
    throw Error(fmt::format("{}: no tokenizer.json or tokenizer.model in this directory", path.string()));
  }
  check_regular_file(path, "tokenizer file");
  if (looks_like_json(path)) return load_json_bpe(path);
  return load_model_file(path);
}

// Special tokens the model file itself defines.
SpecialTokens model_special_tokens(const Backend& b) {
  SpecialTokens sp;
  if (b.sp) {
    sp.by_text = sp_special_pieces(*b.sp);
    sp.bos = sp_bos_id(*b.sp);
    sp.eos = sp_eos_id(*b.sp);
    sp.pad = sp_pad_id(*b.sp);
    sp.unk = sp_unk_id(*b.sp);
  } else {
    sp.by_text = bpe_special_tokens(*b.bpe);
    auto named = [&](const char* text) {
      auto it = sp.by_text.find(text);
      return it == sp.by_text.end() ? int64_t{-1} : it->second;
    };
    sp.bos = named("<|begin_of_text|>");
    sp.eos = named("<|end_of_text|>");
  }
  return sp;
}

// Resolves a token text from a config file to its id (special first, then the vocabulary).
int64_t resolve(const Tokenizer& tok, const std::string& text, const std::string& file, const std::string& key) {
  const auto id = tok.token_id(text);
  if (!id) throw Error(fmt::format("{}: key '{}': token '{}' is not in the tokenizer's vocabulary", file, key, text));
  return *id;
}

void add_special(SpecialTokens& sp, const std::string& text, int64_t id) {
  if (text.empty()) return;
  for (auto it = sp.by_text.begin(); it != sp.by_text.end();)  // the config renames an id
    it = (it->second == id && it->first != text) ? sp.by_text.erase(it) : std::next(it);
  sp.by_text[text] = id;
}

// bos/eos/pad/unk_token and additional_special_tokens of a config file. `sp` is tok's own special
// tokens: each token resolves against the ones set before it.
void apply_named(const Tokenizer& tok, SpecialTokens& sp, const json& cfg, const std::string& file) {
  static const std::array<std::pair<const char*, int64_t SpecialTokens::*>, 4> kNamed = {{
      {"bos_token", &SpecialTokens::bos}, {"eos_token", &SpecialTokens::eos},
      {"pad_token", &SpecialTokens::pad}, {"unk_token", &SpecialTokens::unk}}};
  for (const auto& [key, member] : kNamed) {
    if (!cfg.contains(key)) continue;
    const auto text = config_token_text(cfg[key], file, key);
    if (!text) {
      sp.*member = -1;
      continue;
    }
    const int64_t id = resolve(tok, *text, file, key);
    sp.*member = id;
    add_special(sp, *text, id);
  }
  if (cfg.contains("additional_special_tokens")) {
    const json& extra = cfg["additional_special_tokens"];
    if (!extra.is_array()) throw Error(fmt::format("{}: key 'additional_special_tokens' must be a list", file));
    for (size_t i = 0; i < extra.size(); ++i) {
      const std::string key = fmt::format("additional_special_tokens[{}]", i);
      const auto text = config_token_text(extra[i], file, key);
      if (text) add_special(sp, *text, resolve(tok, *text, file, key));
    }
  }
}

// tokenizer_config.json's added_tokens_decoder: {"<id>": {"content": ..., "special": ...}, ...}.
void apply_added_tokens_decoder(const Backend& b, SpecialTokens& sp, const json& cfg, const std::string& file) {
  if (!cfg.contains("added_tokens_decoder")) return;
  const json& added = cfg["added_tokens_decoder"];
  if (!added.is_object()) throw Error(fmt::format("{}: key 'added_tokens_decoder' must be an object", file));
  for (const auto& [key, v] : added.items()) {
    const std::string where = fmt::format("added_tokens_decoder[\"{}\"]", key);
    int64_t id = -1;
    size_t used = 0;
    try {
      id = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != key.size() || key.empty() || id < 0)
      throw Error(fmt::format("{}: key '{}': expected a non-negative integer token id", file, where));
    if (!v.is_object() || !v.contains("content") || !v["content"].is_string())
      throw Error(fmt::format("{}: key '{}': expected an object with a string \"content\"", file, where));
    const std::string text = v["content"].get<std::string>();
    if (text.empty()) throw Error(fmt::format("{}: key '{}': empty \"content\"", file, where));
    const int64_t backend = b.vocab_size();
    if (id > backend + (int64_t{1} << 20))
      throw Error(fmt::format("{}: key '{}': id {} is far beyond the vocabulary size {}", file, where, id, backend));
    const bool special = v.contains("special") && v["special"].is_boolean() && v["special"].get<bool>();
    const int64_t piece = b.piece_id(text);
    // A non-special added token that is just a vocabulary entry stays ordinary text; one the
    // vocabulary lacks (an id past it, or a renamed id) can only be told by its text.
    if (special || piece != id) add_special(sp, text, id);
  }
}

void read_add_bos_eos(SpecialTokens& sp, const json& cfg, const std::string& file) {
  for (const char* key : {"add_bos_token", "add_eos_token"}) {
    if (!cfg.contains(key) || cfg[key].is_null()) continue;
    if (!cfg[key].is_boolean()) throw Error(fmt::format("{}: key '{}' must be true or false", file, key));
    (std::string(key) == "add_bos_token" ? sp.add_bos : sp.add_eos) = cfg[key].get<bool>();
  }
}

// chat_template: a string, or [{"name": "default", "template": "..."}, ...]; unchanged if absent.
void read_chat_template(const json& cfg, const std::string& file, std::string* chat_template) {
  if (!cfg.contains("chat_template") || cfg["chat_template"].is_null()) return;
  const json& ct = cfg["chat_template"];
  if (ct.is_string()) {
    *chat_template = ct.get<std::string>();
  } else if (ct.is_array()) {
    for (size_t i = 0; i < ct.size(); ++i) {
      if (!ct[i].is_object() || !ct[i].contains("name") || !ct[i].contains("template") ||
          !ct[i]["template"].is_string())
        throw Error(fmt::format("{}: key 'chat_template[{}]': expected {{\"name\", \"template\"}}", file, i));
      if (ct[i]["name"] == "default") *chat_template = ct[i]["template"].get<std::string>();
    }
  } else {
    throw Error(fmt::format("{}: key 'chat_template' must be a string or a list of named templates", file));
  }
}

void apply_tokenizer_config(const Tokenizer& tok, const Backend& b, const fs::path& cfg_path, SpecialTokens& sp,
                            std::string* chat_template) {
  const std::string file = cfg_path.string();
  const json cfg = read_json_file(cfg_path, "tokenizer config");
  if (!cfg.is_object()) throw Error(fmt::format("{}: expected a JSON object", file));
  apply_added_tokens_decoder(b, sp, cfg, file);
  apply_named(tok, sp, cfg, file);
  read_add_bos_eos(sp, cfg, file);
  read_chat_template(cfg, file, chat_template);
}

void apply_special_tokens_map(const Tokenizer& tok, const fs::path& map_path, SpecialTokens& sp) {
  const json m = read_json_file(map_path, "special tokens map");
  if (!m.is_object()) throw Error(fmt::format("{}: expected a JSON object", map_path.string()));
  apply_named(tok, sp, m, map_path.string());
}

}  // namespace

Tokenizer Tokenizer::load(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(fmt::format("{}: no such tokenizer file or directory", path.string()));
  const bool is_dir = fs::is_directory(path, ec);
  const fs::path dir = is_dir ? path : path.parent_path();

  Tokenizer tok;
  const Backend b = load_backend(path, is_dir);
  tok.sp_ = b.sp;
  tok.bpe_ = b.bpe;
  tok.source_ = b.source;
  tok.special_ = model_special_tokens(b);

  const fs::path cfg_path = dir / "tokenizer_config.json";
  if (is_dir && optional_tokenizer_file(cfg_path)) {
    apply_tokenizer_config(tok, b, cfg_path, tok.special_, &tok.chat_template_);
    if (!tok.chat_template_.empty()) tok.chat_template_file_ = cfg_path;
  }
  const fs::path map_path = dir / "special_tokens_map.json";
  if (is_dir && optional_tokenizer_file(map_path))  // loaded after the config and wins, as in HF
    apply_special_tokens_map(tok, map_path, tok.special_);
  const fs::path jinja_path = dir / "chat_template.jinja";
  if (is_dir && tok.chat_template_.empty() && optional_tokenizer_file(jinja_path)) {
    tok.chat_template_ = read_file(jinja_path);
    tok.chat_template_file_ = jinja_path;
  }
  return tok;
}

namespace {

// Leftmost-longest split of `text` at special-token texts: calls on_text(segment) and
// on_special(id) in order.
void split_specials(const SpecialTokens& sp, std::string_view text,
                    const std::function<void(std::string_view)>& on_text,
                    const std::function<void(int64_t)>& on_special) {
  std::array<std::vector<const std::pair<const std::string, int64_t>*>, 256> by_first;
  for (const auto& e : sp.by_text)
    if (!e.first.empty()) by_first[static_cast<uint8_t>(e.first[0])].push_back(&e);
  for (auto& v : by_first)
    std::stable_sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->first.size() > b->first.size(); });
  size_t seg = 0;
  for (size_t i = 0; i < text.size();) {
    const std::pair<const std::string, int64_t>* hit = nullptr;
    for (const auto* c : by_first[static_cast<uint8_t>(text[i])])
      if (text.compare(i, c->first.size(), c->first) == 0) {
        hit = c;
        break;
      }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    if (i > seg) on_text(text.substr(seg, i - seg));
    on_special(hit->second);
    i += hit->first.size();
    seg = i;
  }
  if (seg < text.size()) on_text(text.substr(seg));
}

[[noreturn]] void not_loaded() { throw Error("Tokenizer: used before Tokenizer::load()"); }

}  // namespace

std::vector<int64_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  if (!sp_ && !bpe_) not_loaded();
  auto plain = [&](std::string_view s) { return sp_ ? sp_encode(*sp_, s, false) : bpe_encode(*bpe_, s, false); };
  if (!allow_special) return plain(text);
  // The BPE model splits out its own special tokens as HF does (with their lstrip/rstrip); only
  // specials that the config files added or renamed need our splitting.
  if (bpe_ && special_.by_text == bpe_special_tokens(*bpe_)) return bpe_encode(*bpe_, text, true);
  // Each text segment between special tokens is encoded on its own (for SentencePiece: exactly as
  // sentencepiece encodes it alone, dummy-prefix space included).
  std::vector<int64_t> out;
  split_specials(
      special_, text,
      [&](std::string_view s) {
        const auto ids = plain(s);
        out.insert(out.end(), ids.begin(), ids.end());
      },
      [&](int64_t id) { out.push_back(id); });
  return out;
}

std::vector<int64_t> Tokenizer::encode_with_offsets(std::string_view text,
                                                    std::vector<std::pair<size_t, size_t>>& offsets) const {
  if (!sp_ && !bpe_) not_loaded();
  if (sp_) return sp_encode_with_offsets(*sp_, text, offsets);
  std::vector<int64_t> ids = bpe_encode(*bpe_, text, false);
  offsets.clear();
  offsets.reserve(ids.size());
  size_t pos = 0;
  for (const int64_t id : ids) {  // byte-level: each token is a run of the input's bytes
    const size_t n = bpe_decode_bytes(*bpe_, {id}, false).size();
    offsets.emplace_back(pos, pos + n);
    pos += n;
  }
  if (pos != text.size())
    throw Error(fmt::format("{}: BPE token bytes cover {} of the {} input bytes", source_.string(), pos, text.size()));
  return ids;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  if (!sp_ && !bpe_) not_loaded();
  const int64_t backend = sp_ ? sp_vocab_size(*sp_) : bpe_vocab_size(*bpe_);
  std::unordered_map<int64_t, const std::string*> special_text;
  for (const auto& [text, id] : special_.by_text) special_text.emplace(id, &text);
  const int64_t n = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= n || (ids[i] >= backend && special_text.count(ids[i]) == 0))
      throw Error(fmt::format("token id {} at position {} is not in the vocabulary of {} (size {})", ids[i], i,
                              source_.string(), n));
  auto run_bytes = [&](const std::vector<int64_t>& run, bool skip) {
    return sp_ ? sp_decode(*sp_, run, skip) : bpe_decode_bytes(*bpe_, run, skip);
  };
  std::string bytes;
  if (skip_special) {
    std::vector<int64_t> kept;
    kept.reserve(ids.size());
    for (const int64_t id : ids)
      if (special_text.count(id) == 0) kept.push_back(id);
    bytes = run_bytes(kept, true);
  } else {
    std::vector<int64_t> run;
    for (const int64_t id : ids) {
      auto it = special_text.find(id);
      if (it == special_text.end()) {
        run.push_back(id);
        continue;
      }
      bytes += run_bytes(run, false);
      run.clear();
      bytes += *it->second;
    }
    bytes += run_bytes(run, false);
  }
  return utf8_replace_invalid(bytes);
}

int64_t Tokenizer::vocab_size() const {
  int64_t n = sp_ ? sp_vocab_size(*sp_) : bpe_ ? bpe_vocab_size(*bpe_) : 0;
  for (const auto& [text, id] : special_.by_text) n = std::max(n, id + 1);
  return n;
}

std::optional<int64_t> Tokenizer::token_id(std::string_view text) const {
  auto it = special_.by_text.find(std::string(text));
  if (it != special_.by_text.end()) return it->second;
  const int64_t id = sp_ ? sp_piece_id(*sp_, text) : bpe_ ? bpe_token_id(*bpe_, text) : -1;
  if (id < 0) return std::nullopt;
  return id;
}

std::string Tokenizer::kind() const { return sp_ ? "sentencepiece" : bpe_ ? "bpe" : ""; }

}  // namespace mt
