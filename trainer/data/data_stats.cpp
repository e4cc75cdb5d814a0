// DataStats (see data_formats.h): what happened to the records of one or more sources, merged
// across sources, kept with the token cache as JSON, and printed as the one-line log summary.
#include "trainer/data/data_formats.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace mt {

using json = nlohmann::json;

void DataStats::merge(const DataStats& o) {
  read += o.read;
  conversations += o.conversations;
  skipped_malformed += o.skipped_malformed;
  dropped_empty += o.dropped_empty;
  dropped_short += o.dropped_short;
  prompts_only += o.prompts_only;
  examples += o.examples;
  truncated += o.truncated;
  dropped_too_long += o.dropped_too_long;
  tokens += o.tokens;
  target_tokens += o.target_tokens;
  max_tokens = std::max(max_tokens, o.max_tokens);
  for (const auto& m : o.skipped_messages)
    if (skipped_messages.size() < 10) skipped_messages.push_back(m);
  shapes.insert(shapes.end(), o.shapes.begin(), o.shapes.end());
}

std::string RecordShape::report() const {
  std::vector<std::string> parts;
  if (trained) parts.push_back(fmt::format("{} used for training", trained));
  if (prompts_only)
    parts.push_back(fmt::format("{} not used for training (prompts-only: no response)", prompts_only));
  if (empty) parts.push_back(fmt::format("{} dropped (empty)", empty));
  if (malformed) parts.push_back(fmt::format("{} skipped (malformed)", malformed));
  return fmt::format("{}{}: {} of {} records have keys {}: read as {}: {}", all_trained() ? "" : "warning: ", file,
                     records, file_records, keys, format, fmt::join(parts, ", "));
}

namespace {

json shape_json(const RecordShape& s) {
  return json{{"file", s.file},       {"format", s.format},   {"keys", s.keys},
              {"records", s.records}, {"trained", s.trained}, {"prompts_only", s.prompts_only},
              {"empty", s.empty},     {"malformed", s.malformed}, {"file_records", s.file_records}};
}

RecordShape shape_from_json(const json& j) {
  RecordShape s;
  auto str = [&](const char* k, std::string& v) {
    if (j.contains(k) && j[k].is_string()) v = j[k].get<std::string>();
  };
  auto num = [&](const char* k, int64_t& v) {
    if (j.contains(k) && j[k].is_number_integer()) v = j[k].get<int64_t>();
  };
  str("file", s.file);
  str("format", s.format);
  str("keys", s.keys);
  num("records", s.records);
  num("trained", s.trained);
  num("prompts_only", s.prompts_only);
  num("empty", s.empty);
  num("malformed", s.malformed);
  num("file_records", s.file_records);
  return s;
}

}  // namespace

json DataStats::to_json() const {
  json shapes_json = json::array();
  for (const auto& sh : shapes) shapes_json.push_back(shape_json(sh));
  return json{{"read", read},
              {"conversations", conversations},
              {"skipped_malformed", skipped_malformed},
              {"dropped_empty", dropped_empty},
              {"dropped_short", dropped_short},
              {"prompts_only", prompts_only},
              {"examples", examples},
              {"truncated", truncated},
              {"dropped_too_long", dropped_too_long},
              {"tokens", tokens},
              {"target_tokens", target_tokens},
              {"max_tokens", max_tokens},
              {"skipped_messages", skipped_messages},
              {"shapes", shapes_json}};
}

DataStats DataStats::from_json(const json& j) {
  DataStats s;
  auto get = [&](const char* k, int64_t& v) {
    if (j.contains(k) && j[k].is_number_integer()) v = j[k].get<int64_t>();
  };
  get("read", s.read);
  get("conversations", s.conversations);
  get("skipped_malformed", s.skipped_malformed);
  get("dropped_empty", s.dropped_empty);
  get("dropped_short", s.dropped_short);
  get("prompts_only", s.prompts_only);
  get("examples", s.examples);
  get("truncated", s.truncated);
  get("dropped_too_long", s.dropped_too_long);
  get("tokens", s.tokens);
  get("target_tokens", s.target_tokens);
  get("max_tokens", s.max_tokens);
  if (j.contains("skipped_messages") && j["skipped_messages"].is_array())
    for (const auto& m : j["skipped_messages"])
      if (m.is_string()) s.skipped_messages.push_back(m.get<std::string>());
  if (j.contains("shapes") && j["shapes"].is_array())
    for (const auto& sh : j["shapes"])
      if (sh.is_object()) s.shapes.push_back(shape_from_json(sh));
  return s;
}

std::string DataStats::summary() const {
  std::string s = fmt::format("read {}, {} conversations/segments", read, conversations);
  if (examples > 0 || tokens > 0)
    s += fmt::format(", {} examples ({} tokens, {} targets, longest {})", examples, tokens, target_tokens, max_tokens);
  if (skipped_malformed) s += fmt::format(", skipped {} malformed", skipped_malformed);
  if (dropped_empty) s += fmt::format(", dropped {} empty", dropped_empty);
  if (dropped_short) s += fmt::format(", dropped {} short", dropped_short);
  if (prompts_only) s += fmt::format(", {} prompts-only", prompts_only);
  if (truncated) s += fmt::format(", truncated {}", truncated);
  if (dropped_too_long) s += fmt::format(", dropped {} too long", dropped_too_long);
  return s;
}

}  // namespace mt
