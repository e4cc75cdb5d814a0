// DataStats (see data_formats.h): what happened to the records of one or more sources, merged
// across sources, kept with the token cache as JSON, and printed as the one-line log summary.
#include "trainer/data/data_formats.h"

#include <fmt/format.h>

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
}

json DataStats::to_json() const {
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
              {"skipped_messages", skipped_messages}};
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
