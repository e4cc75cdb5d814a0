// Fields of a JSON record, read with the record's place ("FILE:LINE ...") in every error: string
// and list fields, and the type names those errors use.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace mt {

// "null", "a boolean", "a string", "a list", "an object" or "a number", for "got ..." errors.
const char* json_type(const nlohmann::json& v);

// A string field. Missing or null: an error when required, else nullopt. Any other type: an error.
std::optional<std::string> get_string(const nlohmann::json& obj, const std::string& key, const std::string& where,
                                      bool required);

// A list field; missing, null or another type is an error.
const nlohmann::json& get_array(const nlohmann::json& obj, const std::string& key, const std::string& where);

}  // namespace mt
