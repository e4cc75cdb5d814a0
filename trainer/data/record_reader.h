// Records of a data file: JSONL lines or the elements of one top-level JSON array (told apart by
// the first non-blank byte), each with its "FILE:LINE" / "FILE:LINE [element N]" place, under the
// fail/skip policy for malformed records; and the whole-file read the array and text readers use.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "models/error.h"
#include "trainer/data/data_formats.h"

namespace mt {

// The file's bytes without a UTF-8 byte-order mark; over max_bytes (max_file_bytes) is an error.
std::string read_whole_file(const std::filesystem::path& file, int64_t max_bytes);

// First non-whitespace byte of a file ('\0' if none), to tell a JSON array from JSONL.
char first_byte(const std::filesystem::path& file);

// Runs record-level work under the policy: "fail" lets mt::Error through, "skip" counts it.
struct Policy {
  bool skip = false;
  DataStats* stats = nullptr;

  Policy(const DataSourceConfig& c, DataStats* s);
  void malformed(const std::string& message) const;
  template <typename Fn>
  void guard(Fn&& fn) const {
    try {
      fn();
    } catch (const Error& e) {
      malformed(e.what());
    }
  }
};

// The top-level elements of a JSON array text, as byte ranges. Strings and nesting are tracked so
// commas inside values do not split; a text that ends before the closing ']' is `truncated`, and
// `last_partial` when it ends inside the last element.
struct Span {
  size_t begin, end;
};
struct ArrayScan {
  std::vector<Span> spans;
  bool truncated = true, last_partial = false;
};
ArrayScan array_elements(const std::string& t, const std::string& file);

using RecordFn = std::function<void(const nlohmann::json&, const std::string& where)>;

// Every record (JSON object) of a JSONL file or a JSON-array file, with its place, under the policy;
// each record read is counted in stats.read.
void for_each_record(const std::filesystem::path& file, const DataSourceConfig& c, const Policy& policy,
                     DataStats& stats, const RecordFn& fn);

}  // namespace mt
