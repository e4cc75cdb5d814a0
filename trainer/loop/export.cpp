// final/ of a training run (see export.h).
#include "trainer/loop/export.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <vector>

#include "models/atomic_file.h"
#include "models/error.h"
#include "models/read_file.h"

namespace mt {
namespace fs = std::filesystem;

fs::path export_final(const fs::path& run_dir, const Transformer& master, const GenerationDefaults& generation,
                      at::ScalarType dtype, const fs::path& tokenizer_path, int64_t max_shard_bytes,
                      const AlignmentScorer& scorer) {
  const fs::path final_dir = run_dir / "final";
  const fs::path tmp = run_dir / fmt::format(".final.tmp-{}", ::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    c10::NoGradGuard no_grad;
    std::map<std::string, at::Tensor> weights;
    for (const auto& [name, t] : master.params) weights[name] = t.detach().to(dtype);
    Transformer exported = build_transformer(master.config, std::move(weights), "export");
    save_model_dir(exported, generation, tmp, static_cast<uint64_t>(max_shard_bytes));
    if (scorer.defined()) save_alignment_scorer(scorer, tmp);
    const fs::path tok_dir = fs::is_directory(tokenizer_path) ? tokenizer_path : tokenizer_path.parent_path();
    const std::vector<std::string> tok_files = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                                "special_tokens_map.json"};
    for (const std::string& f : tok_files) {
      const fs::path src = fs::is_directory(tokenizer_path) ? tok_dir / f : tokenizer_path;
      if (!fs::is_regular_file(src) || src.filename() != f) continue;
      write_text_file_atomically(tmp / f, read_file(src, "tokenizer file"));
    }
    publish_directory(tmp, final_dir, IfPublished::kReplace);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error(fmt::format("{}: export failed: {}", final_dir.string(), e.what()));
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return final_dir;
}

at::ScalarType export_dtype(const std::string& option, const ModelConfig& config) {
  if (option != "auto") return dtype_from_name(option);
  for (const char* key : {"torch_dtype", "dtype"})
    if (config.raw.contains(key) && config.raw[key].is_string()) return dtype_from_name(config.raw[key].get<std::string>());
  return at::kFloat;
}

}  // namespace mt
