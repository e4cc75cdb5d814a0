// The first host of a SLURM host list (see slurm_hosts.h). Only the first name is expanded: that is
// the host rank 0 runs on (SLURM gives task 0 to the first node of the step).
#include "trainer/dist/slurm_hosts.h"

#include <fmt/format.h>

#include <cctype>

#include "models/error.h"

namespace mt {

std::string first_slurm_host(const std::string& hostlist, const std::string& what) {
  auto bad = [&](const std::string& why) {
    return Error(fmt::format("{}='{}' is not a SLURM host list: {}", what, hostlist, why));
  };
  if (hostlist.empty()) throw bad("it is empty");
  std::string host;
  size_t i = 0;
  while (i < hostlist.size() && hostlist[i] != ',') {
    const char c = hostlist[i];
    if (c == ']') throw bad(fmt::format("']' without '[' at character {}", i + 1));
    if (c != '[') {
      if (std::isspace(static_cast<unsigned char>(c))) throw bad(fmt::format("a space at character {}", i + 1));
      host += c;
      ++i;
      continue;
    }
    const size_t close = hostlist.find(']', i);
    if (close == std::string::npos) throw bad(fmt::format("'[' at character {} is not closed", i + 1));
    // The group's first item: "01-04,07" -> "01" (a range starts at its first number).
    const std::string group = hostlist.substr(i + 1, close - i - 1);
    const std::string item = group.substr(0, group.find(','));
    const size_t dash = item.find('-');
    const std::string start = item.substr(0, dash);
    const std::string end = dash == std::string::npos ? start : item.substr(dash + 1);
    auto digits = [](const std::string& s) {
      if (s.empty()) return false;
      for (char d : s)
        if (!std::isdigit(static_cast<unsigned char>(d))) return false;
      return true;
    };
    if (!digits(start) || !digits(end) || start.size() > 18 || end.size() > 18 || std::stoll(start) > std::stoll(end))
      throw bad(fmt::format("'[{}]' is not a list of numbers and ranges (e.g. [01-04,07])", group));
    host += start;
    i = close + 1;
  }
  if (host.empty()) throw bad("its first host name is empty");
  return host;
}

}  // namespace mt
