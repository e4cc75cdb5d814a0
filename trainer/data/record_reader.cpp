// Records of a data file (see record_reader.h): the whole-file read, the malformed-record policy,
// the scan of a JSON array into its top-level elements, and the record loop over JSONL or arrays.
#include "trainer/data/record_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "models/json_read.h"
#include "trainer/base/jsonl.h"
#include "trainer/data/record_fields.h"
#include "trainer/data/text_chars.h"

namespace mt {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string read_whole_file(const fs::path& file, int64_t max_bytes) {
  check_input_file(file);
  std::error_code ec;
  const auto size = static_cast<int64_t>(fs::file_size(file, ec));
  if (size > max_bytes)
    throw Error(fmt::format("{}: {} bytes is over max_file_bytes ({}); use JSONL for large sets", file.string(), size,
                            max_bytes));
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot open for reading", file.string()));
  std::string data(static_cast<size_t>(size), '\0');
  if (std::fread(data.data(), 1, data.size(), f.get()) != data.size())
    throw Error(fmt::format("{}: read error", file.string()));
  if (data.compare(0, 3, "\xEF\xBB\xBF") == 0) data.erase(0, 3);  // UTF-8 byte-order mark
  return data;
}

Policy::Policy(const DataSourceConfig& c, DataStats* s) : stats(s) {
  if (c.on_malformed == "skip")
    skip = true;
  else if (c.on_malformed != "fail")
    throw Error(fmt::format("{}: on_malformed must be \"fail\" or \"skip\", got \"{}\"", c.path.string(),
                            c.on_malformed));
}

void Policy::malformed(const std::string& message) const {
  if (!skip) throw Error(message);
  ++stats->skipped_malformed;
  if (stats->skipped_messages.size() < 10) stats->skipped_messages.push_back(message);
}

ArrayScan array_elements(const std::string& t, const std::string& file) {
  ArrayScan out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < t.size() && is_space(t[i])) ++i;
  };
  skip_ws();
  if (i >= t.size() || t[i] != '[') throw Error(fmt::format("{}: expected a JSON array", file));
  ++i;
  skip_ws();
  if (i < t.size() && t[i] == ']') {
    out.truncated = false;
    ++i;
  }
  while (out.truncated && i < t.size()) {
    skip_ws();
    const size_t begin = i;
    int depth = 0;
    bool in_string = false, escape = false, closed = false;
    for (; i < t.size(); ++i) {
      const char c = t[i];
      if (in_string) {
        if (escape)
          escape = false;
        else if (c == '\\')
          escape = true;
        else if (c == '"')
          in_string = false;
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) {
          closed = c == ']';
          break;
        }
        --depth;
      } else if (c == ',' && depth == 0) {
        break;
      }
    }
    if (i >= t.size()) {  // the text ends inside this element
      if (!is_blank(std::string_view(t).substr(begin))) {
        out.spans.push_back({begin, t.size()});
        out.last_partial = true;
      }
      return out;
    }
    size_t end = i;
    while (end > begin && is_space(t[end - 1])) --end;
    out.spans.push_back({begin, end});
    ++i;  // past ',' or ']'
    if (closed) out.truncated = false;
  }
  if (!out.truncated) {
    skip_ws();
    if (i < t.size()) throw Error(fmt::format("{}: unexpected text after the closing ']' of the array", file));
  }
  return out;
}

char first_byte(const fs::path& file) {
  check_input_file(file);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot open for reading", file.string()));
  unsigned char bom[3] = {0, 0, 0};
  const size_t got = std::fread(bom, 1, 3, f.get());
  if (!(got == 3 && bom[0] == 0xEF && bom[1] == 0xBB && bom[2] == 0xBF))  // not a UTF-8 byte-order mark
    for (size_t k = 0; k < got; ++k)
      if (!is_space(static_cast<char>(bom[k]))) return static_cast<char>(bom[k]);
  int c;
  while ((c = std::fgetc(f.get())) != EOF)
    if (!is_space(static_cast<char>(c))) return static_cast<char>(c);
  return '\0';
}

namespace {

// The elements of a JSON-array file, each "FILE:LINE [element K]" (LINE: where the element starts).
void for_each_array_record(const fs::path& file, const DataSourceConfig& c, const Policy& policy, DataStats& stats,
                           const RecordFn& fn) {
  const std::string name = file.string();
  const std::string text = read_whole_file(file, c.max_file_bytes);
  const ArrayScan scan = array_elements(text, name);
  const std::vector<Span>& spans = scan.spans;
  int64_t line = 1;
  size_t counted = 0;
  for (size_t k = 0; k < spans.size(); ++k) {
    line += std::count(text.begin() + static_cast<std::ptrdiff_t>(counted),
                       text.begin() + static_cast<std::ptrdiff_t>(spans[k].begin), '\n');
    counted = spans[k].begin;
    const std::string where = fmt::format("{}:{} [element {}]", name, line, k);
    ++stats.read;
    if (scan.last_partial && k + 1 == spans.size()) {
      policy.malformed(fmt::format("{}: the file ends inside this element (truncated JSON?)", where));
      break;
    }
    policy.guard([&] {
      const json obj = parse_json(std::string_view(text).substr(spans[k].begin, spans[k].end - spans[k].begin), where);
      if (!obj.is_object()) throw Error(fmt::format("{}: expected a JSON object, got {}", where, json_type(obj)));
      fn(obj, where);
    });
  }
  if (scan.truncated && !scan.last_partial)
    policy.malformed(fmt::format("{}: the file ends before the array's closing ']' (truncated JSON?)", name));
}

// The non-blank lines of a JSONL file, each "FILE:LINE".
void for_each_jsonl_record(const fs::path& file, const DataSourceConfig& c, const Policy& policy, DataStats& stats,
                           const RecordFn& fn) {
  const std::string name = file.string();
  for_each_line(file, c.max_line_bytes, [&](const std::string& line, int64_t line_no, bool too_long) {
    if (!too_long && is_blank(line)) return;
    ++stats.read;
    const std::string where = fmt::format("{}:{}", name, line_no);
    policy.guard([&] {
      if (too_long)
        throw Error(fmt::format("{}: line longer than max_line_bytes ({} bytes)", where, c.max_line_bytes));
      const json obj = parse_json(line, where);
      if (!obj.is_object()) throw Error(fmt::format("{}: expected a JSON object, got {}", where, json_type(obj)));
      fn(obj, where);
    });
  });
}

}  // namespace

void for_each_record(const fs::path& file, const DataSourceConfig& c, const Policy& policy, DataStats& stats,
                     const RecordFn& fn) {
  const char first = first_byte(file);
  if (first == '\0') throw Error(fmt::format("{}: no records (the file is blank)", file.string()));
  if (first == '[')
    for_each_array_record(file, c, policy, stats, fn);
  else
    for_each_jsonl_record(file, c, policy, stats, fn);
}

}  // namespace mt
