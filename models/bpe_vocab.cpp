// The byte-level BPE vocabulary tables, built the same way for both file formats: regular tokens
// into the arena and the open-addressing bytes -> id table, added-token matchers, per-id decode
// info; plus the message helpers both loaders use.
#include "models/bpe_vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "models/error.h"

namespace mt::bpe_detail {

size_t table_capacity(size_t count) {
  size_t cap = 1024;
  while (cap < 2 * count) cap <<= 1;
  return cap;
}

std::string shown(std::string_view s, size_t max) {
  using nlohmann::json;
  std::string q = json(std::string(s.substr(0, max))).dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > max ? q + "..." : q;
}

void add_regular(Tok& t, int32_t id, std::string_view bytes) {
  if (bytes.size() > 0xFFFF) throw Error(fmt::format("{}: token id {} is longer than 65535 bytes", t.source, id));
  if (t.regular.size() <= static_cast<size_t>(id)) t.regular.resize(static_cast<size_t>(id) + 1);
  t.regular[id] = {static_cast<uint32_t>(t.arena.size()), static_cast<uint32_t>(bytes.size())};
  t.arena.append(bytes);
  t.max_token_len = std::max(t.max_token_len, bytes.size());
}

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

void finish_ids(Tok& t) {
  if (t.ids.size() < t.regular.size()) t.ids.resize(t.regular.size());
  for (size_t id = 0; id < t.regular.size(); ++id) {
    const Tok::Bytes b = t.regular[id];
    if (b.len > 0 && t.ids[id].kind == Tok::kAbsent) t.ids[id] = {b.off, b.len, Tok::kRegular};
  }
}

[[noreturn]] void fail_at(const std::string& file, const std::string& place, const std::string& msg) {
  throw Error(fmt::format("{}: {}: {}", file, place, msg));
}

}  // namespace mt::bpe_detail
