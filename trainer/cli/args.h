// A small command-line option parser for the subcommands: `--name value` and `--flag`, every
// option declared up front so a typo is an error rather than silently ignored, and bare `key=value`
// arguments for the one option that takes them (--set, as torchtune's overrides); and the prologue
// every subcommand starts with (parse, or print the help).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace mt::cli {

struct OptionSpec {
  std::string name;      // without the leading "--"
  bool takes_value = true;
  std::string help;
  std::string default_value;  // shown in help; "" = none
  // A bare argument with '=' (not starting with '-') is a value of this option, in command-line
  // order with its --NAME values; at most one option of a command has it.
  bool bare_key_value = false;
};

struct Args {
  std::map<std::string, std::string> values;              // the last value of each option
  std::map<std::string, std::vector<std::string>> all_values;  // every value, for repeatable options
  std::set<std::string> flags;
  bool help = false;

  bool has(const std::string& name) const { return values.count(name) > 0 || flags.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  std::string require(const std::string& name) const;  // throws UsageError when absent
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  std::vector<int64_t> get_int_list(const std::string& name) const;  // "1,2,3"
  std::vector<std::string> get_all(const std::string& name) const;   // --set a=1 --set b=2
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Args parse_args(int argc, char** argv, const std::vector<OptionSpec>& spec);
std::string format_help(const std::string& usage, const std::vector<OptionSpec>& spec);

// Every subcommand's prologue: parses argv against `spec` (misuse throws UsageError); after -h or
// --help prints the help (`usage`, then the options) to stdout and returns nullopt: the command
// then returns 0.
std::optional<Args> parse_command_line(int argc, char** argv, const std::vector<OptionSpec>& spec,
                                       const std::string& usage);

}  // namespace mt::cli
