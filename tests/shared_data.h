// Where the tokenizer tests find the real vocabularies and datasets (../shared/data beside the
// checkout, or $MT_SHARED_DIR), and a HF model directory assembled at test time from a real
// tokenizer.model (linked, never copied into the repo) and committed config files.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace mt::test {

inline std::filesystem::path shared_data() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("MT_SHARED_DIR"); env != nullptr && *env != '\0') {
    const fs::path p(env);
    return fs::exists(p / "data") ? p / "data" : p;  // the shared dir, or its data dir itself
  }
  return fs::path(MT_SOURCE_DIR) / ".." / "shared" / "data";
}

inline std::filesystem::path vocab_file(const std::string& name) {  // "llama2", "mistral-v3", ...
  return shared_data() / "tokenizers" / name / "tokenizer.model";
}

inline std::filesystem::path tokenizer_fixture(const std::string& name) {
  return fixture("tokenizer") / name;
}

inline nlohmann::json read_json(const std::filesystem::path& path) { return nlohmann::json::parse(read_file(path)); }

// A temp HF model dir: tokenizer.model linked to the shared vocabulary `model` (a path relative to
// shared_data()), plus the files of tests/fixtures/tokenizer/hf_dirs/<config_dir> ("" = none).
inline std::filesystem::path make_hf_dir(const std::string& model, const std::string& config_dir) {
  namespace fs = std::filesystem;
  const fs::path dir = temp_dir("hf_tok");
  fs::create_symlink(fs::absolute(shared_data() / model), dir / fs::path(model).filename());
  if (!config_dir.empty())
    for (const auto& e : fs::directory_iterator(tokenizer_fixture("hf_dirs") / config_dir))
      fs::copy_file(e.path(), dir / e.path().filename());
  return dir;
}

}  // namespace mt::test
