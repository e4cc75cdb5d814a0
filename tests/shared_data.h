// A HF tokenizer directory assembled at test time for the tokenizer tests: a real tokenizer.model
// from ../shared/data (linked, never copied into the repo; see shared_data() in test_util.h) plus
// committed config files.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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

}  // namespace mt::test
