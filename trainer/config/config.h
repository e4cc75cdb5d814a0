// The run configuration: one schema table (every key typed, defaulted and documented in one place,
// schema_keys.cpp), strict YAML parsing with file:line errors and "did you mean" suggestions, `--set
// a.b=value` overrides, the resolved config written back as YAML, and the resume-compatibility rule
// (which keys may change when a run is resumed).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "trainer/data/data_formats.h"
#include "trainer/dist/dist_options.h"

namespace mt {

struct ModelSection {
  std::string path;                    // HF model dir (config.json + weights, or config.json only with init: random)
  std::string tokenizer;               // tokenizer dir or file; "" = model.path
  std::string init = "pretrained";     // "pretrained" (load weights) | "random" (init_transformer from config.json)
  std::string dtype = "bfloat16";      // compute dtype: "bfloat16" | "float32"
  bool pure_bf16 = false;              // bf16 weights and optimizer state (no fp32 master copy)
  bool activation_checkpointing = false;  // recompute each decoder layer in the backward pass
  std::string device = "auto";         // "auto" (cuda when available) | "cpu" | "cuda"
};

struct DataSection {
  std::vector<DataSourceConfig> sources;       // training sources (at least one)
  std::vector<DataSourceConfig> eval_sources;  // held-out sources; when empty, eval_fraction of the training data
  double eval_fraction = 0.0;                  // fraction of training examples held out (0 = no eval)
  std::string template_name = "auto";          // YAML key "template": llama3 | llama2 | mistral | chatml | alpaca | auto
  int64_t max_len = 2048;                      // packed row length (tokens)
  std::string packing = "first_fit";           // "first_fit" | "sequential" | "none"
  bool train_on_prompt = false;
  std::string too_long = "truncate";           // "truncate" | "drop"
  std::string on_malformed = "fail";           // default for every source: "fail" | "skip"
  bool shuffle = true;
  std::string cache_dir;                       // token cache dir; "" = <run_dir>/cache
};

struct OptimizerSection {
  double lr = 2e-5;
  double beta1 = 0.9, beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled; never applied to norms and biases
  bool fused = true;          // ATen's fused AdamW kernel (CPU and CUDA); false = the foreach reference
};

struct ScheduleSection {
  std::string type = "cosine";  // "constant" | "linear" | "cosine"
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.0;    // final lr = lr * min_lr_ratio (linear, cosine)
};

struct TrainingSection {
  int64_t max_steps = 0;            // optimizer steps; 0 = from epochs
  double epochs = 1.0;              // used when max_steps = 0
  int64_t micro_batch_size = 1;     // rows per forward pass
  int64_t grad_accum_steps = 1;     // micro-batches per optimizer step
  double max_grad_norm = 1.0;       // global-norm clipping; 0 = off
  int64_t seed = 0;
  int64_t eval_every = 0;           // optimizer steps between evaluations; 0 = only at the end (if eval data)
  int64_t eval_max_batches = 0;     // 0 = the whole eval split
  int64_t checkpoint_every = 0;     // optimizer steps between checkpoints; 0 = only at the end
  int64_t max_consecutive_nonfinite = 5;  // stop after this many skipped (NaN/Inf) steps in a row
  int64_t loss_chunk_tokens = 4096; // rows of the chunked linear + cross-entropy
  // The MAIN method's alpha: loss = alpha * mean CE(synthetic-source targets) + (1 - alpha) * mean
  // CE(real targets) over the window; -1 = off (the plain token mean). -1 or in [0, 1].
  double synthetic_weight = -1.0;
};

// The differentiable alignment scorer (trainer/engine/alignment.h, docs/method.md): projection heads on the
// model's pooled hidden states, trained with L = L_sft + lambda_align * L_infonce + lambda_cons *
// L_consistency. Both weights 0 (the default): no scorer, exactly plain SFT.
struct AlignmentSection {
  double lambda_align = 0.0;      // weight of the symmetric InfoNCE term
  double lambda_cons = 0.0;       // weight of the consistency term
  std::string signal = "pmi";     // consistency target: "pmi" | "forward" (per-pair likelihood signal)
  std::string pooling = "mean";   // "mean" | "last": how a document's final hidden states become one vector
  int64_t dim = 128;              // embedding dimension of the projection heads
  double temperature = 0.07;      // initial (learned) or fixed temperature of the cosine scores
  bool learn_temperature = true;
  std::vector<std::string> stages = {"final"};  // pipeline trainings that get the terms: seed | rounds | final
};

struct OutputSection {
  std::string run_dir;          // required (or --run-dir)
  int64_t keep_last = 3;        // checkpoints kept (0 = all)
  bool export_final = true;     // YAML key "export": write final/ as a HF model dir
  int64_t export_every = 0;     // optimizer steps between RUN/exports/step_N model dirs; 0 = none
  std::string export_dtype = "auto";  // "auto" (the base checkpoint's dtype) | "bfloat16" | "float32" | "float16"
  int64_t max_shard_bytes = 5000000000;
};

struct LoggingSection {
  int64_t log_every = 10;        // plain log lines every N steps when not a TTY
  std::string progress = "auto"; // "auto" (bar on a TTY, lines otherwise) | "bar" | "lines" | "none"
  bool tensorboard = true;
};

// The MAIN pipeline (`maintune pipeline`, trainer/method/pipeline.h; docs/method.md). Every stage trains
// with the sections above as its base (model, data.template/max_len, optimizer, schedule, training);
// data.sources are the seed pairs and data.eval_sources the held-out pairs.
struct PipelineSection {
  std::vector<DataSourceConfig> unlabeled;  // unlabeled responses (text / text_jsonl, or pairs whose responses are used)
  std::string reverse_template =            // the reverse model's user turn; {response} is replaced
      "Write the instruction that this response answers.\n\nResponse:\n{response}";
  int64_t seed_steps = 200;       // optimizer steps of each seed model (stage 1)
  int64_t batch_size = 32;        // sequences per generation / scoring batch
  int64_t chunk_size = 256;       // records per progress chunk of generation and scoring
  std::string checker = "none";   // "none" | "demo_tasks": ground truth for precision and accuracy
  int64_t eval_max_new_tokens = 64;  // greedy decoding of the held-out instructions (accuracy)
};

struct RoundsSection {
  int64_t count = 1;                      // K mutual alignment rounds; 0 = none
  int64_t steps = 100;                    // optimizer steps per model per round
  std::string init = "continue";          // "continue" (previous round's weights) | "restart" (the base)
  std::string alpha_schedule = "linear";  // "constant" | "linear" | "adaptive"
  double alpha = 0.5;                     // constant: alpha_k; adaptive: its upper bound
  double alpha_start = 0.2, alpha_end = 0.5;  // linear: alpha_1 .. alpha_K
  double temperature = 0.7, top_p = 0.9;  // sampling of the synthetic halves
  int64_t max_new_tokens = 64;
};

struct SynthesisSection {
  int64_t candidates = 1;       // instructions written per unlabeled response
  double temperature = 0.7, top_p = 0.9;
  int64_t top_k = 0;
  int64_t max_new_tokens = 64;
};

struct FilterSection {
  std::string rule = "mutual";    // the rule whose kept pairs are stage 4's output
  std::vector<std::string> compare = {"none", "forward", "reverse", "mutual"};  // rules also scored on the same candidates
  std::string keep = "quantile";  // "all" | "threshold" | "top_k" | "quantile"
  double threshold = 0.0;         // keep: threshold (on the rule's score; higher is better)
  int64_t top_k = 0;              // keep: top_k
  double quantile = 0.5;          // keep: quantile (the best fraction kept)
  double forward_weight = 1.0, reverse_weight = 1.0;  // mutual: weights of the two directions
  double alignment_weight = 0.0;  // mutual: weight of the alignment scorer's z-score (0 = not used)
  std::string normalize = "zscore";  // mutual: "zscore" | "none" (raw mean NLLs)
  bool dedupe = true;             // drop repeats of an earlier candidate's (instruction, response)
  bool drop_seed_pairs = false;   // also drop candidates equal to a seed pair
  std::string self_curation_template =
      "Rate how well the response answers the instruction, from 1 (not at all) to 5 (perfectly).\n\n"
      "Instruction:\n{instruction}\n\nResponse:\n{response}\n\nScore:";
};

struct FinalSection {
  std::vector<std::string> models = {"mutual"};  // filter rules whose kept pairs train a final model
  int64_t steps = 300;
  double alpha = 0.5;             // synthetic-pair weight of the final loss; -1 = one mean over all pairs
  bool source_tags = false;       // mark the two sources with a system sentence
  std::string seed_tag = "Answer as a careful human expert.";
  std::string synthetic_tag = "Answer in the style of the synthetic examples.";
};

struct DemoSection {
  bool enabled = false;           // generate the demo task suite and its tokenizer in stage0_demo/
  int64_t seed = 0;
  int64_t seed_pairs = 300, unlabeled = 3000, eval_pairs = 200;
  double noise_fraction = 0.2;
};

struct TrainConfig {
  ModelSection model;
  DataSection data;
  OptimizerSection optimizer;
  ScheduleSection schedule;
  TrainingSection training;
  AlignmentSection alignment;
  OutputSection output;
  LoggingSection logging;
  DistributedOptions distributed;  // under torchrun (trainer/dist/dist_options.h)
};

// The pipeline's config: what each stage training reads (the TrainConfig part, which is what
// run_training takes, so "train ignores the pipeline sections" is a fact of the types) and the
// pipeline's own sections. A struct extension rather than a member so that the stage code reads
// config.model and config.filter alike and a stage training gets its TrainConfig by slicing.
struct PipelineConfig : TrainConfig {
  PipelineSection pipeline;
  RoundsSection rounds;
  SynthesisSection synthesis;
  FilterSection filter;
  FinalSection final_tuning;  // YAML section "final"
  DemoSection demo;
};

// The rules stage 4 scores and selects by: filter.rule first (unless filter.compare lists it), then
// filter.compare in its order.
std::vector<std::string> compared_filter_rules(const FilterSection& filter);
bool filter_rule_used(const FilterSection& filter, const std::string& rule);

// One schema entry, for `maintune config --schema` and docs/config.md.
struct ConfigKeyDoc {
  std::string path;           // "training.micro_batch_size"; list entries as "data.sources[].path"
  std::string type;           // "int" | "float" | "bool" | "string" | "enum(a|b)" | "list" | ...
  std::string default_value;  // as YAML
  std::string doc;
  bool resume_safe = false;   // may change when resuming
  bool read_by_train = false; // a TrainConfig key: `maintune train` reads it (else a pipeline section)
  // The pipeline stage that first reads it (trainer/method/stage_keys.h): "" (none), demo, seed,
  // rounds, synthesis, filter, final, or "alignment.stages" (the trainings that list names).
  std::string first_stage;
  bool read_by_demo_stage = false;  // with demo.enabled, stage 0 reads it too
};
const std::vector<ConfigKeyDoc>& config_schema();

// " (did you mean 'x'?)" for the candidate closest to `typed` when it is near enough to be a typo
// of it (edit distance at most max(2, |typed| / 3)); "" otherwise. The config loader's own hint.
std::string did_you_mean_hint(const std::string& typed, const std::vector<std::string>& candidates);
std::string format_config_schema();  // the table `maintune config --schema` prints

// Loads a YAML file, applies overrides ("a.b=value", value parsed as YAML scalar or flow sequence /
// map), checks every key, type and value, resolves relative paths (config file's folder for keys
// from the file, the current directory for overrides), and returns the typed config. Errors are
// mt::Error "FILE:LINE:COL: key path: what is wrong" (overrides: "--set a.b=v: ...") with a
// "did you mean 'x'?" for unknown keys. An empty `path` means defaults + overrides only. Required
// keys are not checked here (the CLI may still set output.run_dir): see check_train_config_complete.
// `overrides_dir`: the folder relative paths in overrides are resolved against ("" = the current
// directory; a sweep file's folder for its settings).
PipelineConfig load_pipeline_config(const std::filesystem::path& path, const std::vector<std::string>& overrides = {},
                                    const std::filesystem::path& overrides_dir = {});
// The same, keeping what train reads. The pipeline's sections are still checked (one config file
// serves both commands), then dropped.
TrainConfig load_train_config(const std::filesystem::path& path, const std::vector<std::string>& overrides = {},
                              const std::filesystem::path& overrides_dir = {});

// Throws mt::Error naming every required key that is unset (model.path, output.run_dir, a
// data.sources entry) and how to set it.
void check_train_config_complete(const TrainConfig& config);

// Throws mt::Error naming every inconsistency between the pipeline's sections (rules that are not
// compared, templates without their placeholders, a weight out of range, ...) and every required
// key that is unset.
void check_pipeline_config(const PipelineConfig& config);

// The fully resolved config as YAML (every key it holds, defaults included): a train config's
// sections only, a pipeline config's all. Loading this text gives back the same config.
std::string train_config_to_yaml(const TrainConfig& config);
std::string pipeline_config_to_yaml(const PipelineConfig& config);

// Keys whose values differ between two configs and are not resume_safe, as "key: old -> new"
// lines; empty when `resumed` may continue a run started with `saved`. A train run compares the
// keys train reads, so a run directory whose config.yaml also holds pipeline sections resumes.
std::vector<std::string> resume_incompatibilities(const TrainConfig& saved, const TrainConfig& resumed);
std::vector<std::string> resume_incompatibilities(const PipelineConfig& saved, const PipelineConfig& resumed);
// The rule of `maintune train`, whose world size may change on resume (docs/distributed.md):
// training.micro_batch_size and training.grad_accum_steps may change as long as the global batch
// (micro_batch_size x grad_accum_steps x ranks: the rows of one optimizer step) does not, so that an
// optimizer step, and the lr schedule over steps, mean the same data; a changed global batch is one
// line naming the three factors before and after.
std::vector<std::string> resume_incompatibilities(const TrainConfig& saved, const TrainConfig& resumed,
                                                  int64_t saved_world_size, int64_t world_size);

}  // namespace mt
