// JSONL input: one JSON object per line, blank lines skipped; every problem is reported as
// "FILE:LINE: ..." so a bad record in a million-line file is found at once.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace mt {

// Calls fn(object, line_number) for each non-blank line. Throws mt::Error naming file and line for
// unreadable files, invalid JSON and non-object lines (and lets fn's mt::Error pass through).
void for_each_jsonl(const std::filesystem::path& file,
                    const std::function<void(const nlohmann::json&, int64_t line)>& fn);

// The list of integer token ids under `key`; `where` ("FILE:LINE") prefixes errors. Missing keys
// are an error when `required`, else give an empty list.
std::vector<int64_t> json_token_ids(const nlohmann::json& obj, const char* key, const std::string& where,
                                    bool required = true);

}  // namespace mt
