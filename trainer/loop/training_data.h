// The data of a training run: the tokenized (cached) training sources, the eval set (its own
// sources or data.eval_fraction split off the training examples), the token ids checked against
// the model's vocabulary, and the training loader at the checkpoint's cursor when resuming.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "models/hf_config.h"
#include "trainer/config/config.h"
#include "trainer/data/data_loader.h"
#include "trainer/data/examples.h"
#include "trainer/data/token_cache.h"
#include "trainer/dist/distributed.h"
#include "trainer/engine/checkpoint.h"

namespace mt {

// The views point into the caches or the splits held here (moving keeps them valid: the mappings
// and vector buffers move with it; a copy would not, so there is none).
struct TrainingData {
  std::filesystem::path tokenizer_path;  // model.tokenizer, else model.path
  TokenCache train_cache, eval_cache;
  TokenizedDataset train_split, eval_split;  // with data.eval_fraction
  DatasetView train_view, eval_view;
  std::string dataset_key;  // the training cache's key (+ the eval fraction), saved with the cursor
  std::string chat_template;  // the template the examples are rendered with (data.template resolved; "" = none)
  bool has_eval = false;
  LoaderOptions loader_options;  // this rank's; evaluation uses them unshuffled

  TrainingData() = default;
  TrainingData(TrainingData&&) = default;
  TrainingData(const TrainingData&) = delete;
  TrainingData& operator=(const TrainingData&) = delete;
};

// Tokenizes or opens the caches of data.sources and data.eval_sources (under data.cache_dir, else
// RUN/cache). A token id outside the model's vocabulary is an mt::Error naming the tokenizer.
// The chat template a run renders its examples with: data.template, the one detected from the
// tokenizer for "auto" ("" when none can be told), the tokenizer's own for "from_model" (an
// mt::Error when it is none of ours: resolve_chat_template).
std::string run_chat_template(const TrainConfig& config, const std::filesystem::path& tokenizer_path);

// Where the token caches go: a run's (data.cache_dir, else RUN/cache), or only a configured
// data.cache_dir with no run directory made (else tokenized in memory: `maintune data preview`).
enum class CachePlace { kRun, kConfiguredOnly };
TrainingData load_training_data(const TrainConfig& config, const ModelConfig& mc, const DistEnv& dist,
                                const LogFn& log, CachePlace cache = CachePlace::kRun);

// The training loader, restored to the checkpoint's data cursor when resuming. An mt::Error when
// this rank gets no batch.
DataLoader open_train_loader(const TrainingData& data, const std::optional<LoadedCheckpoint>& ckpt);

}  // namespace mt
