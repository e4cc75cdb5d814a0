// A HF tokenizer directory assembled at test time for the tokenizer tests: a real tokenizer.model
// from ../shared/data (linked, never copied into the repo; see shared_data() in test_util.h) plus
// committed config files; the tokenizer a chat fixture names; ids as text for failure messages.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/tokenizer.h"
#include "tests/test_util.h"

namespace mt::test {

// A temp HF model dir: tokenizer.model linked to the shared vocabulary `model` (a path relative to
// shared_data()), plus the files of tests/fixtures/tokenizer/hf_dirs/<config_dir> ("" = none).
inline std::filesystem::path make_hf_dir(const std::string& model, const std::string& config_dir) {
  namespace fs = std::filesystem;
  const fs::path dir = temp_dir("hf_tok");
  fs::create_symlink(fs::absolute(shared_data() / model), dir / fs::path(model).filename());
  if (!config_dir.empty()) copy_files(tokenizer_fixture("hf_dirs") / config_dir, dir);
  return dir;
}

// Loads a chat fixture's tokenizer ({"model": ..., "hf_dir": ...}): the shared vocabulary, with the
// committed HF config dir if named (its temp dir is appended to `cleanup`).
inline Tokenizer fixture_tokenizer(const nlohmann::json& spec, std::vector<std::filesystem::path>& cleanup) {
  const std::string model = spec.at("model").get<std::string>();
  if (spec.contains("hf_dir")) {
    cleanup.push_back(make_hf_dir(model, spec.at("hf_dir").get<std::string>()));
    return Tokenizer::load(cleanup.back());
  }
  return Tokenizer::load(shared_data() / model);
}

inline std::string show_ids(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s;
}

}  // namespace mt::test
