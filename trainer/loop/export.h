// The export of a finished run: final/ as a Hugging Face model directory (weights in
// output.export_dtype, config, generation config, tokenizer files with the chat template the run
// trained with) plus the alignment scorer when one was trained, published through a temporary
// folder and a rename. Served as is (transformers, vLLM), it renders prompts as training did and
// stops at the template's end of turn.
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
// mt::Error naming final/. `chat_template`: the template name the run trained with ("" = none: the
// tokenizer files as the source has them). `scorer` is saved beside the weights when defined.
std::filesystem::path export_final(const std::filesystem::path& run_dir, const Transformer& master,
                                   const GenerationDefaults& generation, at::ScalarType dtype,
                                   const std::filesystem::path& tokenizer_path, const std::string& chat_template,
                                   int64_t max_shard_bytes, const AlignmentScorer& scorer);

// The generation defaults final/ carries: with a template, eos_token_id lists its end of turn, the
// model's eos ids and the tokenizer's EOS (chat_stop_ids), written as one id or a list; a source
// without generation_config.json gets a minimal one. Without a template, `generation` as is.
GenerationDefaults export_generation(const GenerationDefaults& generation, const ModelConfig& config,
                                     const std::filesystem::path& tokenizer_path, const std::string& chat_template);

// output.export_dtype: a dtype name, or "auto" (the model config's torch_dtype / dtype, else fp32).
at::ScalarType export_dtype(const std::string& option, const ModelConfig& config);

}  // namespace mt
