// The export of a finished run: final/ as a Hugging Face model directory (weights in
// output.export_dtype, config, generation config, tokenizer files) plus the alignment scorer when
// one was trained, published through a temporary folder and a rename.
#pragma once
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "models/checkpoint_dir.h"
#include "models/transformer.h"
#include "trainer/engine/alignment.h"

namespace mt {

// Writes RUN/final and returns its path; an earlier final/ is replaced. Filesystem errors are an
// mt::Error naming final/. `scorer` is saved beside the weights when defined.
std::filesystem::path export_final(const std::filesystem::path& run_dir, const Transformer& master,
                                   const GenerationDefaults& generation, at::ScalarType dtype,
                                   const std::filesystem::path& tokenizer_path, int64_t max_shard_bytes,
                                   const AlignmentScorer& scorer);

// output.export_dtype: a dtype name, or "auto" (the model config's torch_dtype / dtype, else fp32).
at::ScalarType export_dtype(const std::string& option, const ModelConfig& config);

}  // namespace mt
