// Whole-file reads with errors naming the file (see read_file.h), and the file variant of the
// bounded JSON parse (json_read.h; here because json_read.cpp stays free of fmt and torch).
#include "models/read_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "models/error.h"
#include "models/json_read.h"

namespace mt {

std::string read_file(const std::filesystem::path& file, const std::string& what, uint64_t max_bytes) {
  const std::string role = what.empty() ? "" : " " + what;
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    throw Error(fmt::format("{}: cannot read{}: it is a directory", file.string(), role));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot open{}: {}", file.string(), role, std::strerror(errno)));
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    text.append(buf, n);
    if (text.size() > max_bytes)
      throw Error(fmt::format("{}: cannot read{}: larger than {} MiB, which no{} is", file.string(), role,
                              max_bytes >> 20, what.empty() ? " such file" : role));
  }
  if (std::ferror(f.get())) throw Error(fmt::format("{}: cannot read{}: {}", file.string(), role, std::strerror(errno)));
  return text;
}

nlohmann::json read_json_file(const std::filesystem::path& file, const std::string& what, const JsonLimits& limits) {
  return parse_json(read_file(file, what, limits.max_bytes), file.string(), limits);
}

}  // namespace mt
