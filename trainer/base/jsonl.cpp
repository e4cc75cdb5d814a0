// Line and JSONL reading with file:line errors (see jsonl.h). Lines are read in 1 MiB chunks so a
// huge line costs at most max_line_bytes of memory.
#include "trainer/base/jsonl.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "models/error.h"
#include "models/json_read.h"
#include "models/read_file.h"

namespace mt {
namespace fs = std::filesystem;

void check_input_file(const fs::path& file) {
  std::error_code ec;
  const auto st = fs::status(file, ec);
  if (ec || !fs::exists(st)) throw Error(fmt::format("{}: no such file", file.string()));
  check_regular_file(file, "data file");  // a directory or a FIFO said as it is, as for every file read
  const auto size = fs::file_size(file, ec);
  if (ec) throw Error(fmt::format("{}: cannot read size: {}", file.string(), ec.message()));
  if (size == 0) throw Error(fmt::format("{}: empty file (0 bytes), no records", file.string()));
}


// Calls fn(line, line_no, too_long) for every line of a file, reading in chunks so that a huge
// line costs no more than max_line_bytes of memory; '\r' before '\n' is dropped.
std::string input_name(const fs::path& file) { return file == "-" ? std::string("stdin") : file.string(); }

void for_each_line(const fs::path& file, int64_t max_line_bytes,
                   const std::function<void(const std::string&, int64_t, bool)>& fn) {
  const bool from_stdin = file == "-";
  if (!from_stdin) check_input_file(file);
  std::unique_ptr<FILE, int (*)(FILE*)> f(from_stdin ? stdin : std::fopen(file.c_str(), "rb"),
                                          from_stdin ? +[](FILE*) { return 0; } : &std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot open for reading", file.string()));
  std::vector<char> buf(1 << 20);
  std::string line;
  bool too_long = false, any = false;
  int64_t line_no = 1;
  auto emit = [&] {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    fn(line, line_no, too_long);
    line.clear();
    too_long = false;
    any = false;
    ++line_no;
  };
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) {
    size_t start = 0;
    while (start < n) {
      const char* nl = static_cast<const char*>(std::memchr(buf.data() + start, '\n', n - start));
      const size_t end = nl ? static_cast<size_t>(nl - buf.data()) : n;
      any = true;
      if (!too_long) {
        line.append(buf.data() + start, end - start);
        if (static_cast<int64_t>(line.size()) > max_line_bytes) {
          too_long = true;
          line.clear();
        }
      }
      if (!nl) break;
      emit();
      start = end + 1;
    }
  }
  if (std::ferror(f.get())) throw Error(fmt::format("{}: read error after line {}", input_name(file), line_no - 1));
  if (any) emit();
  if (from_stdin && line_no == 1) throw Error("stdin: no input, no records");
}

void for_each_jsonl(const std::filesystem::path& file,
                    const std::function<void(const nlohmann::json&, int64_t line)>& fn, int64_t max_line_bytes) {
  for_each_line(file, max_line_bytes, [&](const std::string& line, int64_t line_no, bool too_long) {
    if (too_long)
      throw Error(fmt::format("{}:{}: line longer than {} bytes", input_name(file), line_no, max_line_bytes));
    if (line.find_first_not_of(" \t") == std::string::npos) return;
    const nlohmann::json obj = parse_json(line, fmt::format("{}:{}", input_name(file), line_no));
    if (!obj.is_object()) throw Error(fmt::format("{}:{}: expected a JSON object", input_name(file), line_no));
    fn(obj, line_no);
  });
}

std::vector<int64_t> json_token_ids(const nlohmann::json& obj, const char* key, const std::string& where,
                                    bool required) {
  std::vector<int64_t> ids;
  if (!obj.contains(key)) {
    if (required) throw Error(fmt::format("{}: missing field '{}'", where, key));
    return ids;
  }
  const auto& v = obj[key];
  if (!v.is_array()) throw Error(fmt::format("{}: field '{}' must be a list of token ids", where, key));
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer())
      throw Error(fmt::format("{}: field '{}'[{}] must be an integer token id, got {}", where, key, i, v[i].dump()));
    ids.push_back(v[i].get<int64_t>());
  }
  return ids;
}

nlohmann::json read_json_or_null(const std::filesystem::path& file) {
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error&) {
    return nlohmann::json();
  }
  nlohmann::json j = parse_json_or_discarded(text);
  return j.is_discarded() ? nlohmann::json() : j;
}

}  // namespace mt
