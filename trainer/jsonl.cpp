// JSONL reading with file:line errors (see jsonl.h).
#include "trainer/jsonl.h"

#include <fmt/format.h>

#include <fstream>

#include "models/error.h"

namespace mt {

void for_each_jsonl(const std::filesystem::path& file,
                    const std::function<void(const nlohmann::json&, int64_t line)>& fn) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open for reading", file.string()));
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(fmt::format("{}:{}: invalid JSON at column {}: {}", file.string(), line_no, e.byte, e.what()));
    }
    if (!obj.is_object()) throw Error(fmt::format("{}:{}: expected a JSON object", file.string(), line_no));
    fn(obj, line_no);
  }
  if (in.bad()) throw Error(fmt::format("{}: read error after line {}", file.string(), line_no));
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

}  // namespace mt
