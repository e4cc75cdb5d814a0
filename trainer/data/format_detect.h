// The data format names and "auto": which names exist (check_format_name) and the config with its
// format resolved; detect_format and is_unlabeled_format are public, in data_formats.h. Also the
// record types that are not supervised fine-tuning data, which detection and the readers refuse.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "trainer/data/data_formats.h"

namespace mt {

// Throws mt::Error naming the file unless c.format is a conversation or unlabeled format name.
void check_format_name(const DataSourceConfig& c);

// A copy of the config with format "auto" replaced by detect_format's guess, and the name checked.
DataSourceConfig with_format_resolved(const DataSourceConfig& config);

// A record's top-level keys, sorted and printable: "{a, b, c}" (the record's shape).
std::string record_keys(const nlohmann::json& obj);

// What the record is when it is TRL preference, unpaired preference or stepwise-supervision data
// (with why it is not read as pairs), else nullopt. Keys the config names as fields are read on
// purpose and do not count.
std::optional<std::string> non_sft_kind(const nlohmann::json& obj, const DataSourceConfig& c);

}  // namespace mt
