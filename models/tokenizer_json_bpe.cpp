// Loading a HF tokenizer.json byte-level BPE model into the BPE tables: its vocabulary and merges
// written in GPT-2's byte-to-unicode alphabet, its added tokens, and a check that the normalizer,
// pre-tokenizer and decoder are exactly LLaMA-3's (a clear error rather than a guess otherwise).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "models/bpe_vocab.h"
#include "models/error.h"
#include "models/json_read.h"

namespace mt {

using namespace bpe_detail;

namespace {

using nlohmann::json;
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

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

bool opt_bool(const std::string& src, const json& obj, const char* key, const std::string& path, bool dflt) {
  if (!obj.contains(key) || obj[key].is_null()) return dflt;
  if (!obj[key].is_boolean()) fail_at(src, path + "." + key, "must be true or false");
  return obj[key].get<bool>();
}

// The top level and `model`: a byte-level BPE without subword affixes, dropout or byte fallback,
// with a vocab and a merges list. Returns the model.
const json& check_model(Tok* t, const json& j) {
  const std::string& src = t->source;
  if (!j.is_object()) fail_at(src, "top level", "must be a JSON object");
  if (!j.contains("model") || !j["model"].is_object()) fail_at(src, "model", "missing or not an object");
  const json& model = j["model"];
  if (!model.contains("type") || !model["type"].is_string())
    fail_at(src, "model.type", "missing (expected \"BPE\")");
  if (model["type"] != "BPE")
    fail_at(src, "model.type", fmt::format("unsupported model type {} (only byte-level \"BPE\")", model["type"].dump()));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null() && model[key] != "")
      fail_at(src, fmt::format("model.{}", key), "unsupported (byte-level BPE has none)");
  }
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0))
    fail_at(src, "model.dropout", "unsupported (BPE dropout is for training)");
  if (opt_bool(src, model, "byte_fallback", "model", false)) fail_at(src, "model.byte_fallback", "unsupported for byte-level BPE");
  t->ignore_merges = opt_bool(src, model, "ignore_merges", "model", false);
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail_at(src, "model.vocab", "missing or not an object");
  if (!model.contains("merges") || !model["merges"].is_array()) fail_at(src, "model.merges", "missing or not a list");
  return model;
}

// added_tokens into t->added (read first: vocabulary strings outside the byte-level alphabet are
// allowed only for them). Returns the index in t->added of each content.
std::map<std::string, size_t> read_added_tokens(Tok* t, const json& j) {
  const std::string& src = t->source;
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
      tok.special = opt_bool(src, a, "special", path, false);
      tok.lstrip = opt_bool(src, a, "lstrip", path, false);
      tok.rstrip = opt_bool(src, a, "rstrip", path, false);
      tok.normalized = opt_bool(src, a, "normalized", path, !tok.special);
      if (opt_bool(src, a, "single_word", path, false)) fail_at(src, path + ".single_word", "true is not supported");
      if (added_by_content.count(tok.content)) fail_at(src, path + ".content", fmt::format("duplicate added token {}", shown(tok.content)));
      if (added_by_id.count(tok.id)) fail_at(src, path + ".id", fmt::format("duplicate added token id {}", tok.id));
      added_by_content[tok.content] = t->added.size();
      added_by_id[tok.id] = t->added.size();
      t->added.push_back(tok);
    }
  }
  return added_by_content;
}

// model.vocab as regular tokens (their byte-level strings decoded to bytes) and the lookup table
// over them; model.unk_token.
void read_vocab(Tok* t, const json& model, const std::map<std::string, size_t>& added_by_content) {
  const std::string& src = t->source;
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
}

// merges: "a b" strings or ["a", "b"] pairs; rank = index (a later duplicate wins, as in HF).
void read_merges(Tok* t, const json& model) {
  const std::string& src = t->source;
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
}

// normalizer / pre-tokenizer / decoder: exactly LLaMA-3's, or a clear error rather than a guess.
void check_llama3_pipeline(const std::string& src, const json& j) {
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
  if (opt_bool(src, bl, "use_regex", "pre_tokenizer.pretokenizers[1]", true))
    fail_at(src, "pre_tokenizer.pretokenizers[1].use_regex", "unsupported: true adds GPT-2's regex split");
  if (opt_bool(src, bl, "add_prefix_space", "pre_tokenizer.pretokenizers[1]", false))
    fail_at(src, "pre_tokenizer.pretokenizers[1].add_prefix_space", "unsupported: true");
  if (!j.contains("decoder") || !j["decoder"].is_object() || j["decoder"].value("type", "") != "ByteLevel")
    fail_at(src, "decoder", "unsupported decoder (expected ByteLevel)");
}

// Added tokens decode as HF does: through the byte-level alphabet when all of their characters are
// in it, else as their UTF-8 text.
void add_added_token_ids(Tok* t) {
  std::string bytes;
  for (const Tok::Added& a : t->added) {
    const std::string_view out = byte_level_decode(a.content, &bytes) ? std::string_view(bytes) : std::string_view(a.content);
    set_id(*t, a.id, out, a.special ? Tok::kSpecial : Tok::kAddedPlain);
    if (a.special) t->specials[a.content] = a.id;
  }
}

void parse_tokenizer_json(Tok* t, const json& j) {
  const json& model = check_model(t, j);
  read_vocab(t, model, read_added_tokens(t, j));
  read_merges(t, model);
  check_llama3_pipeline(t->source, j);
  add_added_token_ids(t);
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

}  // namespace mt
