// The export of a finished run: final/ as a Hugging Face model directory (weights in
// output.export_dtype, config, generation config, tokenizer files with the chat template the run
// trained with) plus the alignment scorer when one was trained, published through a temporary
// folder and a rename. Served as is (transformers, vLLM), it renders prompts as training did and
// stops at the template's end of turn.
#pragma once
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "models/checkpoint_dir.h"
#include "models/tokenizer.h"
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

// Writes RUN/exports/step_NNNNNNN (output.export_every) as export_final writes final/; an earlier
// export of the same step (a resumed run repeating it) is replaced.
std::filesystem::path export_step(const std::filesystem::path& run_dir, int64_t step, const Transformer& master,
                                  const GenerationDefaults& generation, at::ScalarType dtype,
                                  const std::filesystem::path& tokenizer_path, const std::string& chat_template,
                                  int64_t max_shard_bytes, const AlignmentScorer& scorer);

// `maintune export --checkpoint`: a run's checkpoint folder as a HF model directory `out_dir` (which
// must not exist or be empty), the same files final/ has: the checkpoint's weights (and alignment
// scorer) with the run's model config, generation defaults, tokenizer and chat template, all taken
// from the config.yaml the checkpoint saved; in `dtype`, else output.export_dtype. Returns the
// absolute path written. Errors name the checkpoint or the output.
std::filesystem::path export_checkpoint(const std::filesystem::path& checkpoint_dir,
                                        const std::filesystem::path& out_dir, std::optional<at::ScalarType> dtype);

// The generation defaults final/ carries: with a template, eos_token_id lists its end of turn, the
// model's eos ids and the tokenizer's EOS (chat_stop_ids), written as one id or a list; a source
// without generation_config.json gets a minimal one. Without a template, `generation` as is.
GenerationDefaults export_generation(const GenerationDefaults& generation, const ModelConfig& config,
                                     const Tokenizer& tok, const std::string& chat_template);

// output.export_dtype: a dtype name, or "auto" (the model config's torch_dtype / dtype, else fp32).
at::ScalarType export_dtype(const std::string& option, const ModelConfig& config);

}  // namespace mt
