// Option parsing for the maintune subcommands (see args.h).
#include "trainer/cli/args.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include "trainer/cli/output.h"

namespace mt::cli {

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values.find(name);
  return it == values.end() ? fallback : it->second;
}

std::string Args::require(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) throw UsageError(fmt::format("missing required option --{}", name));
  return it->second;
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  auto it = values.find(name);
  if (it == values.end()) return fallback;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (errno != 0 || end == it->second.c_str() || *end != '\0')
    throw UsageError(fmt::format("option --{} needs an integer, got '{}'", name, it->second));
  return v;
}

double Args::get_double(const std::string& name, double fallback) const {
  auto it = values.find(name);
  if (it == values.end()) return fallback;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (errno != 0 || end == it->second.c_str() || *end != '\0')
    throw UsageError(fmt::format("option --{} needs a number, got '{}'", name, it->second));
  return v;
}

std::vector<int64_t> Args::get_int_list(const std::string& name) const {
  std::vector<int64_t> out;
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return out;
  size_t start = 0;
  const std::string& s = it->second;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    const std::string part = s.substr(start, comma - start);
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || errno != 0 || *end != '\0')
      throw UsageError(fmt::format("option --{} needs comma-separated integers, got '{}'", name, s));
    out.push_back(v);
    start = comma + 1;
  }
  return out;
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  auto it = all_values.find(name);
  return it == all_values.end() ? std::vector<std::string>{} : it->second;
}

Args parse_args(int argc, char** argv, const std::vector<OptionSpec>& spec) {
  Args args;
  const OptionSpec* bare = nullptr;
  for (const auto& o : spec)
    if (o.bare_key_value) bare = &o;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      args.help = true;
      continue;
    }
    if (bare != nullptr && a.rfind('-', 0) != 0 && a.find('=') != std::string::npos) {
      args.values[bare->name] = a;
      args.all_values[bare->name].push_back(a);
      continue;
    }
    if (a.rfind("--", 0) != 0) throw UsageError(fmt::format("unexpected argument '{}'", a));
    std::string name = a.substr(2), value;
    bool has_inline = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    const OptionSpec* opt = nullptr;
    for (const auto& o : spec)
      if (o.name == name) opt = &o;
    if (opt == nullptr) throw UsageError(fmt::format("unknown option --{}", name));
    if (!opt->takes_value) {
      if (has_inline) throw UsageError(fmt::format("option --{} takes no value", name));
      args.flags.insert(name);
      continue;
    }
    if (!has_inline) {
      if (i + 1 >= argc) throw UsageError(fmt::format("option --{} needs a value", name));
      value = argv[++i];
    }
    args.values[name] = value;
    args.all_values[name].push_back(value);
  }
  return args;
}

std::string format_help(const std::string& usage, const std::vector<OptionSpec>& spec) {
  std::string out = usage + "\n\nOptions:\n";
  for (const auto& o : spec) {
    std::string left = "  --" + o.name + (o.takes_value ? " VALUE" : "");
    out += fmt::format("{:<28} {}{}\n", left, o.help,
                       o.default_value.empty() ? "" : fmt::format(" (default: {})", o.default_value));
  }
  out += fmt::format("{:<28} {}\n", "  -h, --help", "show this help");
  return out;
}

std::optional<Args> parse_command_line(int argc, char** argv, const std::vector<OptionSpec>& spec,
                                       const std::string& usage) {
  Args args = parse_args(argc, argv, spec);
  if (!args.help) return args;
  out().write(format_help(usage, spec));
  return std::nullopt;
}

}  // namespace mt::cli
