// The data and the training loader of a run (see training_data.h).
#include "trainer/loop/training_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

#include "models/chat_template.h"
#include "models/error.h"
#include "models/tokenizer.h"
#include "trainer/loop/evaluation.h"

namespace mt {
namespace fs = std::filesystem;

std::string run_chat_template(const TrainConfig& config, const fs::path& tokenizer_path) {
  const std::string& name = config.data.template_name;
  if (name != "auto" && name != "from_model") return name;
  return resolve_chat_template(Tokenizer::load(tokenizer_path), name);
}

namespace {

// data.max_len capped at the model's positions (as the pipeline does), said once: rows longer than the
// model was trained for would run silently, and a huge max_len would size the loader's buffers.
int64_t run_max_len(const TrainConfig& config, const ModelConfig& mc, const LogFn& log) {
  const int64_t max_len = config.data.max_len;
  if (mc.max_position_embeddings <= 0 || max_len <= mc.max_position_embeddings) return max_len;
  if (log)
    log(fmt::format("warning: data.max_len {} exceeds the model's max_position_embeddings {} ({}/config.json): rows are "
                    "capped at {} tokens",
                    max_len, mc.max_position_embeddings, config.model.path, mc.max_position_embeddings));
  return mc.max_position_embeddings;
}

ExampleOptions example_options(const TrainConfig& config, const fs::path& tokenizer_path, int64_t max_len) {
  ExampleOptions ex;
  ex.template_name = run_chat_template(config, tokenizer_path);
  ex.max_len = max_len;
  ex.train_on_prompt = config.data.train_on_prompt;
  ex.too_long = config.data.too_long;
  ex.on_malformed = config.data.on_malformed;
  return ex;
}

// Token ids must fit the model (a tokenizer from another family would index out of range).
void check_token_ids(const TokenCache& train_cache, const ModelConfig& mc, const fs::path& tokenizer_path) {
  const DatasetView v = train_cache.view();
  const uint32_t max_id = v.num_tokens() ? *std::max_element(v.tokens, v.tokens + v.num_tokens()) : 0;
  if (static_cast<int64_t>(max_id) >= mc.vocab_size)
    throw Error(fmt::format("{}: token id {} from the tokenizer is outside the model's vocabulary of {}",
                            tokenizer_path.string(), max_id, mc.vocab_size));
}

LoaderOptions train_loader_options(const TrainConfig& config, const DistEnv& dist, int64_t max_len) {
  const TrainingSection& tc = config.training;
  LoaderOptions lo;
  lo.seq_len = max_len;
  lo.batch_size = tc.micro_batch_size;
  lo.seed = static_cast<uint64_t>(tc.seed);
  lo.shuffle = config.data.shuffle;
  lo.packing = config.data.packing;
  lo.rank = dist.rank;
  lo.world_size = dist.world_size;
  return lo;
}

}  // namespace

TrainingData load_training_data(const TrainConfig& config, const ModelConfig& mc, const DistEnv& dist,
                                const LogFn& log, CachePlace cache) {
  const TrainingSection& tc = config.training;
  const fs::path run_dir = config.output.run_dir;
  const fs::path model_path = config.model.path;
  TrainingData d;
  const fs::path tokenizer_path = config.model.tokenizer.empty() ? model_path : fs::path(config.model.tokenizer);
  d.tokenizer_path = tokenizer_path;
  const int64_t max_len = run_max_len(config, mc, log);
  const ExampleOptions ex = example_options(config, tokenizer_path, max_len);
  d.chat_template = ex.template_name;
  const fs::path cache_dir = !config.data.cache_dir.empty() ? fs::path(config.data.cache_dir)
                             : cache == CachePlace::kRun  ? run_dir / "cache"
                                                          : fs::path();  // in memory
  DatasetSpec spec{config.data.sources, tokenizer_path, ex, cache_dir};
  d.train_cache = load_tokenized_dataset(spec, log);
  check_token_ids(d.train_cache, mc, tokenizer_path);
  d.train_view = d.train_cache.view();
  d.dataset_key = d.train_cache.key;
  if (!config.data.eval_sources.empty()) {
    DatasetSpec eval_spec{config.data.eval_sources, tokenizer_path, ex, cache_dir};
    d.eval_cache = load_tokenized_dataset(eval_spec, log);
    d.eval_view = d.eval_cache.view();
  } else if (config.data.eval_fraction > 0) {
    std::tie(d.train_split, d.eval_split) = split_eval(d.train_cache.view(), config.data.eval_fraction,
                                                       static_cast<uint64_t>(tc.seed));
    if (d.train_split.size() == 0) throw Error("data.eval_fraction leaves no training example");
    d.train_view = d.train_split.view();
    d.eval_view = d.eval_split.view();
    d.dataset_key += fmt::format("-eval{}", config.data.eval_fraction);
  }
  d.has_eval = d.eval_view.num_examples > 0;
  d.loader_options = train_loader_options(config, dist, max_len);
  return d;
}

DataLoader open_train_loader(const TrainingData& data, const std::optional<LoadedCheckpoint>& ckpt) {
  DataLoader loader(data.train_view, data.loader_options, data.dataset_key);
  if (ckpt) {
    try {
      loader.restore(ckpt->state.data_cursor);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", (ckpt->dir / "trainer_state.json").string(), e.what()));
    }
  }
  if (loader.steps_per_epoch() == 0) throw Error("the training data gives no batch for this rank (too few examples?)");
  return loader;
}

}  // namespace mt
