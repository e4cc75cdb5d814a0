// The one entry point for every JSON document maintune reads (configs, tokenizer files, safetensors
// headers and indexes, data records, run state): a bounded parse that never recurses on the input's
// nesting, refuses duplicate keys, and reports every problem as mt::Error "WHERE: ..." with the byte
// offset and, where it helps, the key path. No torch here, so the fuzz targets can link it alone.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mt {

struct JsonLimits {
  // Deeper nesting is refused before the deep value is built: nlohmann parses iteratively, but
  // copying, dumping or comparing a value recurses once per level.
  size_t max_depth = 512;
  size_t max_bytes = size_t{1} << 30;  // 1 GiB: over ten times the largest tokenizer.json
  // Values under these key paths are parsed (checked) but left out of the result, e.g.
  // {"model", "vocab"} for a caller that only needs a tokenizer.json's type fields.
  std::vector<std::vector<std::string>> skip;
  // The message for a duplicate key, given the key path (object keys, array indexes as decimals)
  // ending in the repeated key; unset: "duplicate key 'K' (at /A/B/K)". Untrusted text: quote it.
  std::function<std::string(const std::vector<std::string>& path)> describe_duplicate;
};

// Parses `text` (all of it: trailing non-space text is an error). `where` names the input in
// errors ("FILE" or "FILE:LINE"). Throws mt::Error for invalid JSON, numbers out of double range
// (1e400), nesting over max_depth, text over max_bytes and duplicate keys in any object.
nlohmann::json parse_json(std::string_view text, const std::string& where, const JsonLimits& limits = {});

// The same, or a discarded value (is_discarded()) instead of any error: for inputs where a bad
// document means "absent" (a torn last line, an optional record).
nlohmann::json parse_json_or_discarded(std::string_view text, const JsonLimits& limits = {});

// parse_json of a whole file, named by its path; `what` names its role if it cannot be read
// (see read_file). A UTF-8 byte-order mark is skipped.
nlohmann::json read_json_file(const std::filesystem::path& file, const std::string& what = "",
                              const JsonLimits& limits = {});

}  // namespace mt
