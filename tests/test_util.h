// Helpers shared by the tests: fixture paths, fresh temp dirs (and removing them), reading and
// writing files, running the maintune binary, reading JSON lines, and a "throws mt::Error whose
// message contains X" check that works on Catch2 v2 and v3.
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
#include "models/read_file.h"
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

// Removes a directory tree by hand. std::filesystem::remove_all must not be used here: libtorch.so
// (2.11 wheel) exports its own copy, built against a newer libstdc++, whose recursive path calls a
// symbol GCC 12's libstdc++ lacks (a null weak reference: SIGSEGV on any non-empty directory).
inline void remove_tree(const std::filesystem::path& p) {
  std::error_code ec;
  if (std::filesystem::is_directory(std::filesystem::symlink_status(p, ec)))
    for (const auto& e : std::filesystem::directory_iterator(p, ec)) remove_tree(e.path());
  std::filesystem::remove(p, ec);
}

// A fresh temp_dir, removed with everything in it when the test's scope ends.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) : path(temp_dir(tag)) {}
  ~TempDir() { remove_tree(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

// Writes `text` as the whole of `path`; the test stops if that fails.
inline void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  REQUIRE(f.good());
}

// The bytes of a file (models/read_file.h: a missing or unreadable file is an mt::Error).
using mt::read_file;

// The bytes of a file, or "" while it does not exist yet (for polling a file another process writes).
inline std::string read_file_if_exists(const std::filesystem::path& path) {
  return std::filesystem::exists(path) ? read_file(path) : std::string();
}

// Copies the files directly in `from` into `to` (created if missing).
inline void copy_files(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::create_directories(to);
  for (const auto& e : std::filesystem::directory_iterator(from))
    std::filesystem::copy_file(e.path(), to / e.path().filename());
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

// `maintune ARGS`; `env` ("NAME=value ...", "" = none) is set for this command only.
inline CommandResult run_maintune(const std::string& args, const std::string& env = "") {
  return run_command((env.empty() ? "" : env + " ") + "'" + MT_MAINTUNE_EXE + "' " + args);
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

// How many times `what` occurs in `text`, not overlapping.
inline size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

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
