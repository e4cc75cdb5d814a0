// Fields of a JSON record (see record_fields.h): typed access whose errors name the record's place,
// the field and the type found.
#include "trainer/data/record_fields.h"

#include <fmt/format.h>

#include "models/error.h"

namespace mt {

using json = nlohmann::json;

const char* json_type(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    default: return "a number";
  }
}

std::optional<std::string> get_string(const json& obj, const std::string& key, const std::string& where,
                                      bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) throw Error(fmt::format("{}: missing field '{}'", where, key));
    return std::nullopt;
  }
  if (!it->is_string())
    throw Error(fmt::format("{}: field '{}' must be a string, got {}", where, key, json_type(*it)));
  return it->get<std::string>();
}

const json& get_array(const json& obj, const std::string& key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) throw Error(fmt::format("{}: missing field '{}'", where, key));
  if (!it->is_array()) throw Error(fmt::format("{}: field '{}' must be a list, got {}", where, key, json_type(*it)));
  return *it;
}

}  // namespace mt
