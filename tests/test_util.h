// Helpers shared by the tests: fixture paths, fresh temp dirs, running the maintune binary, and a
// "throws mt::Error whose message contains X" check that works on Catch2 v2 and v3.
#pragma once
#include <array>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>
#include <string>

#include "models/error.h"
#include "test_paths.h"
#include "tests/catch_compat.h"

namespace mt::test {

inline std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(MT_SOURCE_DIR) / "tests" / "fixtures" / name;
}

// ../shared/data beside the checkout (or $MT_SHARED_DIR, the shared dir or its data dir): the real
// vocabularies and datasets, which are read from there and never copied into the repo.
inline std::filesystem::path shared_data() {
  if (const char* env = std::getenv("MT_SHARED_DIR"); env != nullptr && *env != '\0') {
    const std::filesystem::path p(env);
    return std::filesystem::exists(p / "data") ? p / "data" : p;
  }
  return std::filesystem::path(MT_SOURCE_DIR) / ".." / "shared" / "data";
}

// A real tokenizer.model from ../shared/data/tokenizers/<name> ("llama2", "llama3", "mistral-v3", ...).
inline std::filesystem::path vocab_file(const std::string& name) {
  return shared_data() / "tokenizers" / name / "tokenizer.model";
}

inline std::filesystem::path tokenizer_fixture(const std::string& name) { return fixture("tokenizer") / name; }

// A new empty directory under the system temp dir, unique per call.
inline std::filesystem::path temp_dir(const std::string& tag) {
  static std::mt19937_64 rng(std::random_device{}());
  auto dir = std::filesystem::temp_directory_path() / ("maintune_test_" + tag + "_" + std::to_string(rng()));
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline nlohmann::json read_json(const std::filesystem::path& path) { return nlohmann::json::parse(read_file(path)); }

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing its combined output.
inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline CommandResult run_maintune(const std::string& args) {
  return run_command(std::string("'") + MT_MAINTUNE_EXE + "' " + args);
}

// The JSON objects among a command's output lines (other lines, e.g. logs, are ignored).
inline std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] == '{') lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// A path single-quoted for the shell.
inline std::string quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// Runs fn, requiring it to throw mt::Error whose message contains every one of `parts`.
template <typename Fn>
void require_error(Fn&& fn, std::initializer_list<std::string> parts) {
  std::string message;
  bool thrown = false;
  try {
    fn();
  } catch (const mt::Error& e) {
    thrown = true;
    message = e.what();
  }
  INFO("error message: " << message);
  REQUIRE(thrown);
  for (const auto& p : parts) {
    INFO("expected to contain: " << p);
    CHECK(message.find(p) != std::string::npos);
  }
}

}  // namespace mt::test
