// The weights a training run trains, on its device: the model in the master dtype (fp32, or bf16
// with model.pure_bf16) from the model directory, a random init or the checkpoint, and the
// alignment scorer when alignment.lambda_align / lambda_cons > 0 (checkpoint, model dir, or new).
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <string>

#include "models/checkpoint_dir.h"
#include "models/transformer.h"
#include "trainer/config/config.h"
#include "trainer/engine/alignment.h"
#include "trainer/engine/checkpoint.h"

namespace mt {

struct TrainedWeights {
  at::Device device = at::kCPU;               // model.device resolved (this rank's GPU on CUDA)
  at::ScalarType compute_dtype = at::kFloat;  // model.dtype
  Transformer master;                         // trainable
  GenerationDefaults generation;              // of the model directory (load_generation_defaults)
  AlignmentScorer scorer;                     // undefined when the alignment terms are off
  std::string scorer_origin;                  // for the log: "new", "from the checkpoint", "from FILE"
};

// Seeds torch's global RNG with training.seed first, before any weight is made. Settings that
// cannot work together (pure bf16 without a bfloat16 compute dtype, alignment terms without
// instruction/response pairs to contrast) are an mt::Error. The weights go to `device`.
TrainedWeights load_trained_weights(const TrainConfig& config, const std::optional<LoadedCheckpoint>& ckpt,
                                    at::Device device);

}  // namespace mt
