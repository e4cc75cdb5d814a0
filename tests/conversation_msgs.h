// A conversation's messages as (role, content) pairs, the form the data-format tests compare.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "trainer/data/data_formats.h"

namespace mt::test {

using Msgs = std::vector<std::pair<std::string, std::string>>;

inline Msgs msgs(const Conversation& c) {
  Msgs out;
  for (const auto& m : c.messages) out.push_back({m.role, m.content});
  return out;
}

}  // namespace mt::test
