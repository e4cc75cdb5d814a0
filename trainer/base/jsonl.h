// Line-oriented input: bounded-memory line reading and JSONL (one JSON object per line, blank lines
// skipped); every problem is reported as "FILE:LINE: ..." so a bad record in a million-line file is
// found at once.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace mt {

// The JSON value of a file, or null when it is missing, unreadable or not valid JSON: for
// optional records (a stage's stage.json, a run's summary.json) whose absence is an answer.
nlohmann::json read_json_or_null(const std::filesystem::path& file);

// An input file must exist, be a regular file and be non-empty; else mt::Error naming it.
void check_input_file(const std::filesystem::path& file);

// Calls fn(line, line_no, too_long) for every line of a file, reading in chunks so that a huge
// line costs no more than max_line_bytes of memory (a too-long line comes with too_long = true and
// empty text); '\r' before '\n' and a UTF-8 BOM on line 1 are dropped.
// The file "-" is standard input (named "stdin" in errors; no input at all is an error).
void for_each_line(const std::filesystem::path& file, int64_t max_line_bytes,
                   const std::function<void(const std::string&, int64_t, bool)>& fn);

constexpr int64_t kMaxJsonlLineBytes = 256ll << 20;

// How errors name an input path: "stdin" for "-", else the path.
std::string input_name(const std::filesystem::path& file);

// Calls fn(object, line_number) for each non-blank line ("-": standard input). Throws mt::Error
// naming file and line for missing/empty files, lines over max_line_bytes, invalid JSON and
// non-object lines (and lets fn's mt::Error pass through).
void for_each_jsonl(const std::filesystem::path& file,
                    const std::function<void(const nlohmann::json&, int64_t line)>& fn,
                    int64_t max_line_bytes = kMaxJsonlLineBytes);

// The list of integer token ids under `key`; `where` ("FILE:LINE") prefixes errors. Missing keys
// are an error when `required`, else give an empty list.
std::vector<int64_t> json_token_ids(const nlohmann::json& obj, const char* key, const std::string& where,
                                    bool required = true);

}  // namespace mt
