// The data format names and "auto": which names exist (check_format_name) and the config with its
// format resolved; detect_format and is_unlabeled_format are public, in data_formats.h.
#pragma once
#include "trainer/data/data_formats.h"

namespace mt {

// Throws mt::Error naming the file unless c.format is a conversation or unlabeled format name.
void check_format_name(const DataSourceConfig& c);

// A copy of the config with format "auto" replaced by detect_format's guess, and the name checked.
DataSourceConfig with_format_resolved(const DataSourceConfig& config);

}  // namespace mt
