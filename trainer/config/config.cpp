// The run configuration (trainer/config/config.h): one table of keys drives YAML parsing, `--set`
// overrides, the schema listing, the YAML written back and the resume rule. Defaults are the
// struct initializers of config.h and data_formats.h; the table renders them, so they exist once.
#include "trainer/config/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/depthguard.h>  // YAML::DeepRecursion (not in yaml.h)
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include "models/chat_template.h"
#include "models/read_file.h"
#include "trainer/method/mutual_filter.h"
#include "models/error.h"

namespace mt {
namespace {

namespace fs = std::filesystem;

// A config is a few KB; anything near this is not one, and reading it whole would be wasteful.
constexpr size_t kMaxConfigBytes = size_t{16} << 20;
constexpr size_t kMaxShownChars = 60;  // longer values and keys are cut in error messages

// ---------------------------------------------------------------------------------------------
// Values and how a key's value is checked
// ---------------------------------------------------------------------------------------------

using Value = std::variant<bool, int64_t, double, std::string, std::vector<DataSourceConfig>, std::vector<std::string>>;

enum class Kind { Bool, Int, Float, String, Path, Enum, Sources, EnumList };

struct Bounds {
  std::optional<double> min, max;
  bool min_exclusive = false, max_exclusive = false;
  std::optional<double> sentinel;  // one more value accepted outside the range ("-1 = off")

  bool holds(double v) const {
    if (sentinel && v == *sentinel) return true;
    if (min && (min_exclusive ? !(v > *min) : !(v >= *min))) return false;
    if (max && (max_exclusive ? !(v < *max) : !(v <= *max))) return false;
    return true;
  }
  std::string text() const {  // "> 0", ">= 1", "in [0, 1)", "-1 or in [0, 1]"; "" when unbounded
    const std::string or_sentinel = sentinel ? fmt::format("{} or ", *sentinel) : "";
    if (min && max)
      return fmt::format("{}in {}{}, {}{}", or_sentinel, min_exclusive ? '(' : '[', *min, *max,
                         max_exclusive ? ')' : ']');
    if (min) return fmt::format("{}{} {}", or_sentinel, min_exclusive ? ">" : ">=", *min);
    if (max) return fmt::format("{}{} {}", or_sentinel, max_exclusive ? "<" : "<=", *max);
    return "";
  }
};

struct ValueSpec {
  std::optional<Kind> kind;  // unset: from the field's C++ type
  Bounds bounds;             // Int, Float
  std::vector<std::string> choices;                           // Enum, EnumList
  std::vector<std::pair<std::string, std::string>> aliases;   // Enum: accepted spelling -> stored name
  bool non_empty = false;    // String, Path
};

ValueSpec any_value() { return {}; }
ValueSpec at_least(double min) { ValueSpec s; s.bounds.min = min; return s; }
ValueSpec above(double min) { ValueSpec s; s.bounds.min = min; s.bounds.min_exclusive = true; return s; }
ValueSpec in_range(double min, double max, bool max_exclusive) {
  ValueSpec s;
  s.bounds.min = min;
  s.bounds.max = max;
  s.bounds.max_exclusive = max_exclusive;
  return s;
}
ValueSpec off_or_in_range(double off, double min, double max) {
  ValueSpec s = in_range(min, max, false);
  s.bounds.sentinel = off;
  return s;
}
ValueSpec path_value(bool non_empty = false) { ValueSpec s; s.kind = Kind::Path; s.non_empty = non_empty; return s; }
ValueSpec field_name() { ValueSpec s; s.non_empty = true; return s; }
ValueSpec list_of(std::vector<std::string> choices) {
  ValueSpec s;
  s.kind = Kind::EnumList;
  s.choices = std::move(choices);
  return s;
}
std::vector<std::string> with_auto(std::vector<std::string> names) {
  names.insert(names.begin(), "auto");
  return names;
}

ValueSpec one_of(std::vector<std::string> choices, std::vector<std::pair<std::string, std::string>> aliases = {}) {
  ValueSpec s;
  s.kind = Kind::Enum;
  s.choices = std::move(choices);
  s.aliases = std::move(aliases);
  return s;
}

// ---------------------------------------------------------------------------------------------
// The key table
// ---------------------------------------------------------------------------------------------

// One key: its YAML path, how its value is checked, its doc, whether it may change on resume, and
// an accessor pair into the object it configures (TrainConfig, or DataSourceConfig for source keys).
template <typename Obj>
struct KeyDef {
  std::string path;  // "training.seed"; source keys: "format" (relative to their entry)
  Kind kind = Kind::String;
  ValueSpec spec;
  std::string doc;
  bool resume_safe = false;
  std::string default_text;  // shown instead of the rendered default ("" = render it)
  std::function<Value(const Obj&)> get;
  std::function<void(Obj&, const Value&)> set;

  std::string section() const { return path.substr(0, path.find('.')); }
  std::string leaf() const { return path.substr(path.find('.') + 1); }
};

Value to_value(bool v) { return v; }
Value to_value(int64_t v) { return v; }
Value to_value(double v) { return v; }
Value to_value(const std::string& v) { return v; }
Value to_value(const fs::path& v) { return v.string(); }
Value to_value(const std::vector<DataSourceConfig>& v) { return v; }
Value to_value(const std::vector<std::string>& v) { return v; }

template <typename T>
void assign(T& field, const Value& v) { field = std::get<T>(v); }
void assign(fs::path& field, const Value& v) { field = std::get<std::string>(v); }

template <typename T>
constexpr Kind natural_kind() {
  if constexpr (std::is_same_v<T, bool>) return Kind::Bool;
  else if constexpr (std::is_same_v<T, int64_t>) return Kind::Int;
  else if constexpr (std::is_same_v<T, double>) return Kind::Float;
  else if constexpr (std::is_same_v<T, std::string>) return Kind::String;
  else if constexpr (std::is_same_v<T, fs::path>) return Kind::Path;
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) return Kind::EnumList;
  else {
    static_assert(std::is_same_v<T, std::vector<DataSourceConfig>>, "no config value kind for this field type");
    return Kind::Sources;
  }
}

template <typename Obj, typename Access>
KeyDef<Obj> make_key(std::string path, Access access, ValueSpec spec, std::string doc, bool resume_safe,
                     std::string default_text = "") {
  using Field = std::remove_cv_t<std::remove_reference_t<decltype(access(std::declval<Obj&>()))>>;
  constexpr Kind natural = natural_kind<Field>();
  const Kind kind = spec.kind.value_or(natural);
  const bool stringish = natural == Kind::String || natural == Kind::Path;
  const bool fits = kind == natural || ((kind == Kind::Path || kind == Kind::Enum) && stringish);
  if (!fits) throw std::logic_error("config key " + path + ": value kind does not match its field");
  KeyDef<Obj> k;
  k.path = std::move(path);
  k.kind = kind;
  k.spec = std::move(spec);
  k.doc = std::move(doc);
  k.resume_safe = resume_safe;
  k.default_text = std::move(default_text);
  k.get = [access](const Obj& o) -> Value { return to_value(access(o)); };
  k.set = [access](Obj& o, const Value& v) { assign(access(o), v); };
  return k;
}

constexpr bool kResumeSafe = true;   // may differ between a run and its resumption
constexpr bool kFixed = false;       // must stay as the run started

// The YAML key and the struct field, written once: "section.field" and an accessor for it.
#define MT_KEY(section, field) #section "." #field, [](auto& c) -> auto& { return c.section.field; }
#define MT_SOURCE_KEY(field) #field, [](auto& s) -> auto& { return s.field; }

// Keys of one data.sources / data.eval_sources entry (all fixed: eval_sources is safe as a whole).
const std::vector<KeyDef<DataSourceConfig>>& source_keys() {
  auto key = [](auto&&... args) { return make_key<DataSourceConfig>(std::forward<decltype(args)>(args)...); };
  static const std::vector<KeyDef<DataSourceConfig>> keys = {
      key(MT_SOURCE_KEY(path), path_value(true),
          "The data file (JSON array, JSONL or plain text). An entry may also be just this path.", kFixed,
          "(required)"),
      key(MT_SOURCE_KEY(format),
          one_of({"auto", "alpaca", "alpaca_seed", "messages", "prompt_response", "prompts", "mt_bench",
                  "text_jsonl", "text"}),
          "The reader (docs/data.md); auto = detected from the first record.", kFixed),
      key(MT_SOURCE_KEY(instruction_field), field_name(), "alpaca, alpaca_seed: the instruction field.", kFixed),
      key(MT_SOURCE_KEY(input_field), field_name(), "alpaca, alpaca_seed: the optional input field.", kFixed),
      key(MT_SOURCE_KEY(output_field), field_name(), "alpaca, alpaca_seed: the response field.", kFixed),
      key(MT_SOURCE_KEY(prompt_field), field_name(), "prompt_response, prompts: the prompt field.", kFixed),
      key(MT_SOURCE_KEY(response_field), field_name(), "prompt_response: the response field.", kFixed),
      key(MT_SOURCE_KEY(messages_field), field_name(), "messages (OpenAI): the list of {role, content} turns.",
          kFixed),
      key(MT_SOURCE_KEY(role_field), field_name(), "messages (OpenAI): a turn's role field.", kFixed),
      key(MT_SOURCE_KEY(content_field), field_name(), "messages (OpenAI): a turn's content field.", kFixed),
      key(MT_SOURCE_KEY(sharegpt_field), field_name(), "messages (ShareGPT): the list of {from, value} turns.",
          kFixed),
      key(MT_SOURCE_KEY(sharegpt_role_field), field_name(), "messages (ShareGPT): a turn's role field.", kFixed),
      key(MT_SOURCE_KEY(sharegpt_content_field), field_name(), "messages (ShareGPT): a turn's text field.",
          kFixed),
      key(MT_SOURCE_KEY(system_field), field_name(),
          "The optional per-record system prompt field (every conversation format but mt_bench).", kFixed),
      key(MT_SOURCE_KEY(turns_field), field_name(), "mt_bench: the list of user turns.", kFixed),
      key(MT_SOURCE_KEY(instances_field), field_name(), "alpaca_seed: the list of {input, output} instances.",
          kFixed),
      key(MT_SOURCE_KEY(text_field), field_name(), "text_jsonl: the text field.", kFixed),
      key(MT_SOURCE_KEY(system_prompt), any_value(),
          "System prompt added to conversations that have none; \"\" = none.", kFixed),
      key(MT_SOURCE_KEY(answers_path), path_value(),
          "mt_bench: a FastChat answers JSONL joined by question_id, making full conversations; \"\" = "
          "prompts only.",
          kFixed),
      key(MT_SOURCE_KEY(min_chars), at_least(0),
          "text, text_jsonl: shorter segments are dropped (Unicode characters).", kFixed),
      key(MT_SOURCE_KEY(max_chars), at_least(1),
          "text, text_jsonl: the longest segment (Unicode characters); at least min_chars.", kFixed),
      key(MT_SOURCE_KEY(synthetic), any_value(),
          "Examples of this source are synthetic: with training.synthetic_weight they form the synthetic term of "
          "the loss.",
          kFixed),
      key(MT_SOURCE_KEY(on_malformed), one_of({"fail", "skip"}),
          "Bad records of this source: fail (stop, naming FILE:LINE) or skip (and count them).", kFixed,
          "data.on_malformed"),
      key(MT_SOURCE_KEY(max_line_bytes), at_least(1), "Longer JSONL / text lines are malformed records.",
          kFixed),
      key(MT_SOURCE_KEY(max_file_bytes), at_least(1),
          "The largest JSON array or plain-text file (these are read whole), in bytes.", kFixed),
  };
  return keys;
}

const std::vector<KeyDef<TrainConfig>>& train_keys() {
  auto key = [](auto&&... args) { return make_key<TrainConfig>(std::forward<decltype(args)>(args)...); };
  static const std::vector<KeyDef<TrainConfig>> keys = {
      // model
      key(MT_KEY(model, path), path_value(),
          "The base model: a Hugging Face model dir (config.json and safetensors weights; config.json alone "
          "with init: random). Required.",
          kFixed),
      key(MT_KEY(model, tokenizer), path_value(), "Tokenizer dir or file; \"\" = model.path.", kFixed),
      key(MT_KEY(model, init), one_of({"pretrained", "random"}),
          "pretrained loads the weights; random initializes them from config.json.", kFixed),
      key(MT_KEY(model, dtype), one_of({"bfloat16", "float32"}, {{"bf16", "bfloat16"}, {"fp32", "float32"}}),
          "Compute dtype.", kFixed),
      key(MT_KEY(model, pure_bf16), any_value(),
          "Weights and optimizer state in bf16, with no fp32 master copy (less memory, coarser updates).",
          kFixed),
      key(MT_KEY(model, activation_checkpointing), any_value(),
          "Recompute each decoder layer in the backward pass instead of keeping its activations.", kFixed),
      key(MT_KEY(model, device), one_of({"auto", "cpu", "cuda"}), "auto = cuda when available.", kResumeSafe),
      // data
      key(MT_KEY(data, sources), any_value(),
          "Training data: a list of entries, each a path or a map of the data.sources[] keys below. At least "
          "one (checked when the run starts).",
          kFixed),
      key(MT_KEY(data, eval_sources), any_value(),
          "Held-out eval data: entries as in data.sources. Exclusive with data.eval_fraction.", kResumeSafe),
      key(MT_KEY(data, eval_fraction), in_range(0, 1, true),
          "Fraction of the training examples held out for eval when data.eval_sources is empty; 0 = no eval.",
          kFixed),
      key("data.template", [](auto& c) -> auto& { return c.data.template_name; },
          one_of(with_auto(chat_template_names())),
          "Chat template; auto = detected from the tokenizer.", kFixed),
      key(MT_KEY(data, max_len), at_least(2), "Packed row length in tokens; no example is longer.", kFixed),
      key(MT_KEY(data, packing), one_of({"first_fit", "sequential", "none"}),
          "Examples into rows: first_fit (densest), sequential (in order), none (one example per row).",
          kFixed),
      key(MT_KEY(data, train_on_prompt), any_value(), "Train on every token but BOS, not only the assistant turns.",
          kFixed),
      key(MT_KEY(data, too_long), one_of({"truncate", "drop"}),
          "An example over max_len: truncate keeps its first max_len tokens (and drops it when no response "
          "token survives); drop always drops it.",
          kFixed),
      key(MT_KEY(data, on_malformed), one_of({"fail", "skip"}),
          "Bad records: fail (stop, naming FILE:LINE) or skip (and count them). The default of every "
          "source's on_malformed.",
          kFixed),
      key(MT_KEY(data, shuffle), any_value(), "Shuffle the examples every epoch (a function of training.seed).",
          kFixed),
      key(MT_KEY(data, cache_dir), path_value(), "Token cache dir; \"\" = <run_dir>/cache.", kResumeSafe),
      // optimizer
      key(MT_KEY(optimizer, lr), above(0), "Peak learning rate (AdamW).", kFixed),
      key(MT_KEY(optimizer, beta1), in_range(0, 1, true), "AdamW first-moment decay.", kFixed),
      key(MT_KEY(optimizer, beta2), in_range(0, 1, true), "AdamW second-moment decay.", kFixed),
      key(MT_KEY(optimizer, eps), above(0), "AdamW denominator epsilon.", kFixed),
      key(MT_KEY(optimizer, weight_decay), at_least(0), "Decoupled weight decay; never applied to norms and biases.",
          kFixed),
      key(MT_KEY(optimizer, fused), any_value(), "ATen's fused AdamW kernel; false = the foreach reference.", kFixed),
      // schedule
      key(MT_KEY(schedule, type), one_of({"constant", "linear", "cosine"}),
          "Learning-rate decay after warmup.", kFixed),
      key(MT_KEY(schedule, warmup_steps), at_least(0), "Linear warmup over this many optimizer steps.", kFixed),
      key(MT_KEY(schedule, min_lr_ratio), in_range(0, 1, false),
          "Final lr = optimizer.lr * min_lr_ratio (linear and cosine).", kFixed),
      // training
      key(MT_KEY(training, max_steps), at_least(0), "Optimizer steps; 0 = from training.epochs.", kFixed),
      key(MT_KEY(training, epochs), above(0),
          "Passes over the training data when max_steps is 0 (fractions allowed).", kFixed),
      key(MT_KEY(training, micro_batch_size), at_least(1), "Rows per forward pass.", kFixed),
      key(MT_KEY(training, grad_accum_steps), at_least(1), "Micro-batches per optimizer step.", kFixed),
      key(MT_KEY(training, max_grad_norm), at_least(0), "Global gradient-norm clipping; 0 = off.", kFixed),
      key(MT_KEY(training, seed), any_value(), "Seed of initialization, shuffling and the eval split.", kFixed),
      key(MT_KEY(training, eval_every), at_least(0),
          "Optimizer steps between evaluations; 0 = only at the end (when there is eval data).", kResumeSafe),
      key(MT_KEY(training, eval_max_batches), at_least(0), "Batches per evaluation; 0 = the whole eval split.",
          kResumeSafe),
      key(MT_KEY(training, checkpoint_every), at_least(0),
          "Optimizer steps between checkpoints; 0 = only at the end.", kResumeSafe),
      key(MT_KEY(training, max_consecutive_nonfinite), at_least(1),
          "Stop after this many skipped (NaN/Inf) steps in a row.", kResumeSafe),
      key(MT_KEY(training, loss_chunk_tokens), at_least(1),
          "Tokens per chunk of the chunked linear + cross-entropy (bounds the memory of the logits).", kFixed),
      key(MT_KEY(training, synthetic_weight), off_or_in_range(-1, 0, 1),
          "alpha: loss = alpha * mean CE of synthetic-source targets + (1 - alpha) * mean CE of real targets of "
          "the window; -1 = off (one token mean over all targets). A window with targets of only one kind gives "
          "that kind weight 1.",
          kFixed),
      // output
      // alignment
      key(MT_KEY(alignment, lambda_align), at_least(0),
          "Weight of the symmetric InfoNCE term of the alignment scorer (in-batch negatives); 0 = off.", kFixed),
      key(MT_KEY(alignment, lambda_cons), at_least(0),
          "Weight of the consistency term: the scorer's pair scores against the pairs' forward log-likelihood "
          "(standardized), plus the agreement of the two InfoNCE directions; 0 = off. Both weights 0: plain SFT.",
          kFixed),
      key(MT_KEY(alignment, signal), one_of({"pmi", "forward"}),
          "The likelihood signal the consistency term ranks pairs by (detached): pmi = (log p(R|I) - log p(R)) per "
          "response token, which by Bayes' rule also ranks pairs as the model's reverse likelihood log p(I|R) - "
          "log p(I) does; forward = the mean log p(R|I).",
          kFixed),
      key(MT_KEY(alignment, pooling), one_of({"mean", "last"}),
          "How the final hidden states of an instruction or a response (each encoded alone) become one vector: "
          "mean over its tokens, or its last token.",
          kFixed),
      key(MT_KEY(alignment, dim), at_least(1), "Embedding dimension of the two projection heads.", kFixed),
      key(MT_KEY(alignment, temperature), above(0),
          "Temperature of the cosine scores (score = cosine / temperature): the initial value when learned.", kFixed),
      key(MT_KEY(alignment, learn_temperature), any_value(),
          "Learn the temperature (as log(1/temperature), capped at 1/temperature = 100) with the heads.", kFixed),
      key(MT_KEY(alignment, stages), list_of({"seed", "rounds", "final"}),
          "maintune pipeline: the trainings that get the alignment terms (stage-1 seed models, stage-2 rounds, "
          "stage-5 final models).",
          kFixed),
      key(MT_KEY(output, run_dir), path_value(),
          "The run's folder: checkpoints, logs, the final model. Required (or --run-dir).", kResumeSafe),
      key(MT_KEY(output, keep_last), at_least(0), "Checkpoints kept; 0 = all.", kResumeSafe),
      key("output.export", [](auto& c) -> auto& { return c.output.export_final; }, any_value(),
          "Write final/ as a Hugging Face model dir at the end.", kResumeSafe),
      key(MT_KEY(output, export_dtype), one_of({"auto", "bfloat16", "float32", "float16"}),
          "dtype of the exported weights; auto = the base checkpoint's.", kResumeSafe),
      key(MT_KEY(output, max_shard_bytes), at_least(1), "Largest safetensors shard of the export, in bytes.",
          kResumeSafe),
      // logging
      key(MT_KEY(logging, log_every), at_least(1), "Optimizer steps between plain log lines.", kResumeSafe),
      key(MT_KEY(logging, progress), one_of({"auto", "bar", "lines", "none"}),
          "auto = a bar on a TTY, log lines otherwise.", kResumeSafe),
      key(MT_KEY(logging, tensorboard), any_value(), "Write TensorBoard event files into the run dir.", kResumeSafe),
      // pipeline (maintune pipeline; docs/method.md)
      key(MT_KEY(pipeline, unlabeled), any_value(),
          "Unlabeled responses for synthesis (stage 3): entries as in data.sources (text, text_jsonl, or pair "
          "formats whose responses are used). data.sources are the seed pairs, data.eval_sources the held-out "
          "pairs.",
          kFixed),
      key(MT_KEY(pipeline, reverse_template), field_name(),
          "The reverse model's user turn: {response} is replaced by the response; the assistant turn is the "
          "instruction.",
          kFixed),
      key(MT_KEY(pipeline, seed_steps), at_least(1), "Optimizer steps of each seed model (stage 1).", kFixed),
      key(MT_KEY(pipeline, batch_size), at_least(1),
          "Sequences per generation and scoring batch (sampling seeds are per batch, so it is fixed for a run).",
          kFixed),
      key(MT_KEY(pipeline, chunk_size), at_least(1),
          "Records per progress chunk of generation and scoring: a kill loses at most one chunk.", kFixed),
      key(MT_KEY(pipeline, checker), one_of({"none", "demo_tasks"}),
          "Ground truth for alignment precision and exact-match accuracy: demo_tasks checks pairs of the demo "
          "task suite; none reports neither.",
          kFixed),
      key(MT_KEY(pipeline, eval_max_new_tokens), at_least(1),
          "Greedy decoding length for the held-out instructions (accuracy).", kFixed),
      // rounds
      key(MT_KEY(rounds, count), at_least(0), "Mutual alignment rounds K (stage 2); 0 = none.", kFixed),
      key(MT_KEY(rounds, steps), at_least(1), "Optimizer steps per model per round.", kFixed),
      key(MT_KEY(rounds, init), one_of({"continue", "restart"}),
          "Each round trains from the previous round's weights (continue) or from the base model (restart).",
          kFixed),
      key(MT_KEY(rounds, alpha_schedule), one_of({"constant", "linear", "adaptive"}),
          "alpha_k, the weight of the synthetic pairs: constant (rounds.alpha), linear (alpha_start to "
          "alpha_end over the rounds) or adaptive (from the held-out losses of the two sources; docs/method.md).",
          kFixed),
      key(MT_KEY(rounds, alpha), in_range(0, 1, false), "constant: alpha_k; adaptive: its upper bound.", kFixed),
      key(MT_KEY(rounds, alpha_start), in_range(0, 1, false), "linear: alpha_1.", kFixed),
      key(MT_KEY(rounds, alpha_end), in_range(0, 1, false), "linear: alpha_K.", kFixed),
      key(MT_KEY(rounds, temperature), above(0), "Sampling temperature of the synthetic halves.", kFixed),
      key(MT_KEY(rounds, top_p), in_range(0, 1, false), "Nucleus mass of the synthetic halves; 1 = off.", kFixed),
      key(MT_KEY(rounds, max_new_tokens), at_least(1), "Longest synthetic instruction or response.", kFixed),
      // synthesis
      key(MT_KEY(synthesis, candidates), at_least(1), "Instructions written per unlabeled response (stage 3).",
          kFixed),
      key(MT_KEY(synthesis, temperature), above(0), "Sampling temperature.", kFixed),
      key(MT_KEY(synthesis, top_p), in_range(0, 1, false), "Nucleus mass; 1 = off.", kFixed),
      key(MT_KEY(synthesis, top_k), at_least(0), "Keep the k most likely tokens; 0 = off.", kFixed),
      key(MT_KEY(synthesis, max_new_tokens), at_least(1), "Longest instruction written.", kFixed),
      // filter
      key(MT_KEY(filter, rule),
          one_of(filter_rule_names()),
          "The rule whose kept pairs stage 4 outputs: none (every candidate), forward (forward likelihood of the "
          "response), reverse (reverse likelihood of the instruction), mutual (both, plus the alignment scorer with "
          "filter.alignment_weight), self_curation (the seed forward model rates each pair 1-5), alignment (the "
          "learned alignment scorer of the last forward model: needs alignment.stages to train it).",
          kFixed),
      key(MT_KEY(filter, compare), list_of(filter_rule_names()),
          "Rules also applied to the same candidates with the same number of kept pairs as filter.rule, for the "
          "report.",
          kFixed),
      key(MT_KEY(filter, keep), one_of({"all", "threshold", "top_k", "quantile"}),
          "How many candidates filter.rule keeps: all, those scoring at least filter.threshold, the best "
          "filter.top_k, or the best filter.quantile fraction.",
          kFixed),
      key(MT_KEY(filter, threshold), any_value(), "keep: threshold: the lowest kept score (higher is better).",
          kFixed),
      key(MT_KEY(filter, top_k), at_least(0), "keep: top_k: pairs kept.", kFixed),
      key(MT_KEY(filter, quantile), in_range(0, 1, false), "keep: quantile: the fraction kept.", kFixed),
      key(MT_KEY(filter, forward_weight), at_least(0), "mutual: weight of the forward direction.", kFixed),
      key(MT_KEY(filter, reverse_weight), at_least(0), "mutual: weight of the reverse direction.", kFixed),
      key(MT_KEY(filter, alignment_weight), at_least(0),
          "mutual: weight of the alignment scorer's z-score (the last forward model's learned scorer; needs "
          "alignment.stages to train it); 0 = not used.",
          kFixed),
      key(MT_KEY(filter, normalize), one_of({"zscore", "none"}),
          "mutual: each direction's mean NLL as a z-score over the candidates, or raw.", kFixed),
      key(MT_KEY(filter, dedupe), any_value(),
          "Drop a candidate whose (instruction, response) repeats an earlier candidate's (whitespace runs "
          "collapsed).",
          kFixed),
      key(MT_KEY(filter, drop_seed_pairs), any_value(),
          "Also drop candidates equal to a seed pair (they add no new pair; kept by default so precision counts "
          "every correct instruction).",
          kFixed),
      key(MT_KEY(filter, self_curation_template), field_name(),
          "self_curation: the rating prompt; {instruction} and {response} are replaced.", kFixed),
      // final
      key("final.models", [](auto& c) -> auto& { return c.final_tuning.models; },
          list_of(filter_rule_names()),
          "Filter rules whose kept pairs (with the seed pairs) train a final model each (stage 5); each must be "
          "filter.rule or in filter.compare.",
          kFixed),
      key("final.steps", [](auto& c) -> auto& { return c.final_tuning.steps; }, at_least(1),
          "Optimizer steps of each final model.", kFixed),
      key("final.alpha", [](auto& c) -> auto& { return c.final_tuning.alpha; }, any_value(),
          "Weight of the synthetic pairs in the final loss (training.synthetic_weight); -1 = one token mean over "
          "all pairs.",
          kFixed),
      key("final.source_tags", [](auto& c) -> auto& { return c.final_tuning.source_tags; }, any_value(),
          "Mark seed and synthetic pairs with a system sentence (final.seed_tag, final.synthetic_tag).", kFixed),
      key("final.seed_tag", [](auto& c) -> auto& { return c.final_tuning.seed_tag; }, field_name(),
          "source_tags: the system sentence of seed pairs (and of the accuracy evaluation).", kFixed),
      key("final.synthetic_tag", [](auto& c) -> auto& { return c.final_tuning.synthetic_tag; }, field_name(),
          "source_tags: the system sentence of synthetic pairs.", kFixed),
      // demo
      key(MT_KEY(demo, enabled), any_value(),
          "Generate the demo task suite (seed, unlabeled and held-out pairs) and train its SentencePiece "
          "tokenizer in stage0_demo/; data.sources, data.eval_sources, pipeline.unlabeled and model.tokenizer "
          "are then set by the pipeline.",
          kFixed),
      key(MT_KEY(demo, seed), any_value(), "Seed of the demo suite.", kFixed),
      key(MT_KEY(demo, seed_pairs), at_least(1), "Labeled seed pairs.", kFixed),
      key(MT_KEY(demo, unlabeled), at_least(1), "Unlabeled responses.", kFixed),
      key(MT_KEY(demo, eval_pairs), at_least(1), "Held-out pairs (accuracy).", kFixed),
      key(MT_KEY(demo, noise_fraction), in_range(0, 1, false),
          "Fraction of unlabeled responses that no instruction of the suite yields.", kFixed),
  };
  return keys;
}

#undef MT_KEY
#undef MT_SOURCE_KEY

const std::vector<std::string>& section_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& k : train_keys())
      if (std::find(out.begin(), out.end(), k.section()) == out.end()) out.push_back(k.section());
    return out;
  }();
  return names;
}

const KeyDef<TrainConfig>* find_train_key(const std::string& path) {
  for (const auto& k : train_keys())
    if (k.path == path) return &k;
  return nullptr;
}

const KeyDef<DataSourceConfig>* find_source_key(const std::string& name) {
  for (const auto& k : source_keys())
    if (k.path == name) return &k;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Rendering values as YAML
// ---------------------------------------------------------------------------------------------

// Shortest text that reads back as the same double, always recognizable as a float.
std::string format_float(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

void emit_value(YAML::Emitter& out, const Value& value) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, double>) {
          out << format_float(v);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          out << YAML::Flow << YAML::BeginSeq;
          for (const auto& item : v) out << item;
          out << YAML::EndSeq;
        } else if constexpr (std::is_same_v<T, std::vector<DataSourceConfig>>) {
          if (v.empty()) {
            out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
            return;
          }
          out << YAML::BeginSeq;
          for (const auto& source : v) {
            out << YAML::BeginMap;
            for (const auto& k : source_keys()) {
              out << YAML::Key << k.path << YAML::Value;
              emit_value(out, k.get(source));
            }
            out << YAML::EndMap;
          }
          out << YAML::EndSeq;
        } else {
          out << v;
        }
      },
      value);
}

// One value as one line of YAML ("2048", "\"\"", "[{path: a, ...}]").
std::string render(const Value& value) {
  YAML::Emitter out;
  out.SetSeqFormat(YAML::Flow);
  out.SetMapFormat(YAML::Flow);
  emit_value(out, value);
  return out.c_str();
}

// ---------------------------------------------------------------------------------------------
// Where a value came from, and error messages
// ---------------------------------------------------------------------------------------------

std::string shorten(const std::string& s) {
  if (s.size() <= kMaxShownChars) return s;
  size_t cut = kMaxShownChars;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return s.substr(0, cut) + fmt::format("... ({} bytes)", s.size());
}

// A config file (errors as FILE:LINE:COL, relative paths against its folder) or one --set
// override (errors prefixed with it, relative paths against the current directory).
struct Origin {
  std::string file;          // the config file as given
  std::string override_arg;  // "a.b=v"
  fs::path base_dir;         // absolute

  bool is_override() const { return !override_arg.empty(); }
  std::string at(const YAML::Mark& mark) const {
    if (is_override()) return "--set " + shorten(override_arg);
    if (mark.is_null() || mark.line < 0) return file;
    return fmt::format("{}:{}:{}", file, mark.line + 1, mark.column + 1);
  }
  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& what) const {
    throw Error(at(mark) + ": " + what);
  }
};

// The key whose value is being read: errors name it, at the value or (for a missing value) the key.
struct Place {
  const Origin& origin;
  YAML::Mark key_mark;
  std::string key;  // "training.seed", "data.sources[0].path"

  [[noreturn]] void fail(const YAML::Node& value, const std::string& what) const {
    const YAML::Mark mark = value.IsNull() || value.Mark().is_null() ? key_mark : value.Mark();
    origin.fail(mark, key + ": " + what);
  }
};

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Scalar:
      // A quoted scalar has the non-specific tag "!": it is a string even when it looks like a number.
      return node.Tag() == "!" ? fmt::format("the quoted string '{}'", shorten(node.Scalar()))
                               : fmt::format("'{}'", shorten(node.Scalar()));
    default: return "an undefined value";
  }
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The candidate closest to `typed`, when it is close enough to be a typo of it; "" otherwise.
std::string closest(const std::string& typed, const std::vector<std::string>& candidates) {
  if (typed.size() > 2 * kMaxShownChars) return "";  // no key is that long; spare the quadratic work
  const size_t limit = std::max<size_t>(2, typed.size() / 3);
  std::string best;
  size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(typed, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(const std::string& suggestion) {
  return suggestion.empty() ? "" : fmt::format(" (did you mean '{}'?)", suggestion);
}

// A key of `section` that `leaf` is probably meant to be: a near sibling, else the same name in
// another section (lr under training is optimizer.lr).
std::string suggest_train_key(const std::string& section, const std::string& leaf) {
  std::vector<std::string> siblings;
  for (const auto& k : train_keys())
    if (k.section() == section) siblings.push_back(k.leaf());
  if (const std::string near = closest(leaf, siblings); !near.empty()) return section + "." + near;
  for (const auto& k : train_keys())
    if (k.leaf() == leaf) return k.path;
  return "";
}

// `shown`: the key as written ("training.micro_bach_size", "data.sourcs[0].path"); `leaf`: the
// part after the section that names the key, for the suggestion.
[[noreturn]] void fail_unknown_key(const Origin& origin, const YAML::Mark& mark, const std::string& shown,
                                   const std::string& section, const std::string& leaf) {
  origin.fail(mark, fmt::format("unknown key '{}'{}", shorten(shown), did_you_mean(suggest_train_key(section, leaf))));
}

[[noreturn]] void fail_unknown_section(const Origin& origin, const YAML::Mark& mark, const std::string& name) {
  std::string suggestion = closest(name, section_names());
  if (suggestion.empty())  // a key written at the top level (lr: instead of optimizer: {lr: })
    for (const auto& k : train_keys())
      if (k.leaf() == name || k.path == name) suggestion = k.path;
  std::string hint;
  if (!suggestion.empty() && suggestion.find('.') != std::string::npos)
    hint = fmt::format(" (did you mean '{}'? keys go inside their section)", suggestion);
  else
    hint = did_you_mean(suggestion);
  origin.fail(mark, fmt::format("unknown section '{}'{}; the sections are {}", shorten(name), hint,
                                fmt::join(section_names(), ", ")));
}

// ---------------------------------------------------------------------------------------------
// Reading values
// ---------------------------------------------------------------------------------------------

// Calls fn(name, key node, value node) for every entry of a map, after checking that the key is a
// name and is not repeated (yaml-cpp keeps both entries of a repeated key; we refuse it).
template <typename Fn>
void for_each_entry(const YAML::Node& map, const Origin& origin, const std::string& prefix, Fn&& fn) {
  std::map<std::string, int> first_line;
  for (const auto& entry : map) {
    const YAML::Node key = entry.first;  // copies: yaml-cpp's iterator hands out temporaries
    if (!key.IsScalar()) origin.fail(key.Mark(), fmt::format("{}a key must be a name, got {}", prefix, describe(key)));
    const std::string name = key.Scalar();
    const auto [first, inserted] = first_line.emplace(name, key.Mark().line + 1);
    if (!inserted) {
      const std::string first_at = origin.is_override() ? "" : fmt::format(" (first at line {})", first->second);
      origin.fail(key.Mark(), fmt::format("duplicate key '{}{}'{}", prefix, shorten(name), first_at));
    }
    const YAML::Node value = entry.second;
    fn(name, key, value);
  }
}

// Typed values are plain YAML scalars: a quoted "5" is a string, not an integer.
const std::string& typed_scalar(const YAML::Node& node, const Place& place, const char* expected) {
  if (!node.IsScalar() || node.Tag() == "!") place.fail(node, fmt::format("{}, got {}", expected, describe(node)));
  return node.Scalar();
}

int64_t parse_int(const YAML::Node& node, const Place& place) {
  const std::string& text = typed_scalar(node, place, "expected an integer");
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin != end && *begin == '+') ++begin;
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec == std::errc::result_out_of_range)
    place.fail(node, fmt::format("integer out of range, got {}", describe(node)));
  if (ec != std::errc() || ptr != end || begin == end)
    place.fail(node, fmt::format("expected an integer, got {}", describe(node)));
  return v;
}

double parse_float(const YAML::Node& node, const Place& place) {
  const std::string& text = typed_scalar(node, place, "expected a number");
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin != end && *begin == '+') ++begin;
  double v = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, v, std::chars_format::general);
  if (ec != std::errc() || ptr != end || begin == end || !std::isfinite(v))
    place.fail(node, fmt::format("expected a finite number, got {}", describe(node)));
  return v;
}

bool parse_bool(const YAML::Node& node, const Place& place) {
  typed_scalar(node, place, "expected true or false");
  bool v = false;
  if (!YAML::convert<bool>::decode(node, v))
    place.fail(node, fmt::format("expected true or false, got {}", describe(node)));
  return v;
}

// A string value; `key:` with nothing is "". Control characters (tab and newline aside) are
// refused: they are never meant, and yaml-cpp 0.7 writes some of them back wrongly.
std::string parse_string(const YAML::Node& node, const Place& place, bool non_empty) {
  if (node.IsNull()) {
    if (non_empty) place.fail(node, "must not be empty");
    return "";
  }
  if (!node.IsScalar()) place.fail(node, fmt::format("expected a string, got {}", describe(node)));
  const std::string& s = node.Scalar();
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\n') || u == 0x7f)
      place.fail(node, fmt::format("contains the control character U+{:04X}", u));
  }
  if (non_empty && s.empty()) place.fail(node, "must not be empty");
  return s;
}

// Relative paths resolve against the origin's folder; stored absolute and lexically normal.
std::string resolve_path(const std::string& text, const YAML::Node& node, const Place& place) {
  if (text.empty()) return text;
  if (text == "~" || text.rfind("~/", 0) == 0)
    place.fail(node, fmt::format("'~' is not expanded; write the full path, got {}", describe(node)));
  fs::path p(text);
  if (p.is_relative()) p = place.origin.base_dir / p;
  p = p.lexically_normal();
  if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();  // "runs/a/" -> "runs/a"
  return p.string();
}

std::string parse_enum(const ValueSpec& spec, const YAML::Node& node, const Place& place) {
  std::string expected = fmt::format("expected one of {}", fmt::join(spec.choices, "|"));
  if (!spec.aliases.empty()) {
    std::vector<std::string> alias_names;
    for (const auto& [alias, name] : spec.aliases) alias_names.push_back(alias);
    expected += fmt::format(" (or {})", fmt::join(alias_names, "|"));
  }
  if (!node.IsScalar()) place.fail(node, fmt::format("{}, got {}", expected, describe(node)));
  const std::string& s = node.Scalar();
  if (std::find(spec.choices.begin(), spec.choices.end(), s) != spec.choices.end()) return s;
  for (const auto& [alias, name] : spec.aliases)
    if (s == alias) return name;
  place.fail(node, fmt::format("{}, got {}", expected, describe(node)));
}

std::vector<DataSourceConfig> parse_sources(const YAML::Node& node, const Place& place);
DataSourceConfig parse_source(const YAML::Node& node, const Place& place);

template <typename Obj>
Value parse_value(const KeyDef<Obj>& key, const YAML::Node& node, const Place& place) {
  const ValueSpec& spec = key.spec;
  auto check_bounds = [&](double v) {
    if (!spec.bounds.holds(v))
      place.fail(node, fmt::format("must be {}, got {}", spec.bounds.text(), shorten(node.Scalar())));
  };
  switch (key.kind) {
    case Kind::Bool: return parse_bool(node, place);
    case Kind::Int: {
      const int64_t v = parse_int(node, place);
      check_bounds(static_cast<double>(v));
      return v;
    }
    case Kind::Float: {
      const double v = parse_float(node, place);
      check_bounds(v);
      return v;
    }
    case Kind::String: return parse_string(node, place, spec.non_empty);
    case Kind::Path: return resolve_path(parse_string(node, place, spec.non_empty), node, place);
    case Kind::Enum: return parse_enum(spec, node, place);
    case Kind::Sources: return parse_sources(node, place);
    case Kind::EnumList: {
      if (!node.IsSequence())
        place.fail(node, fmt::format("expected a list of {}, got {}{}", fmt::join(spec.choices, "|"), describe(node),
                                     node.IsScalar() ? fmt::format(" (one item: [{}])", shorten(node.Scalar())) : ""));
      std::vector<std::string> items;
      for (size_t i = 0; i < node.size(); ++i) {
        const YAML::Node item = node[i];
        const std::string name = parse_enum(spec, item, Place{place.origin, item.Mark(), fmt::format("{}[{}]", place.key, i)});
        if (std::find(items.begin(), items.end(), name) != items.end())
          place.fail(item, fmt::format("'{}' is listed twice", name));
        items.push_back(name);
      }
      return items;
    }
  }
  throw std::logic_error("unhandled config value kind");
}

// The value of data.sources[N].on_malformed until the end of loading: "not given", so that it
// takes data.on_malformed, wherever that is set (later in the file, or by --set).
const std::string kOnMalformedUnset;

void set_source_key(DataSourceConfig& source, const std::string& name, const YAML::Node& key_node,
                    const YAML::Node& value, const Place& entry) {
  const KeyDef<DataSourceConfig>* key = find_source_key(name);
  if (key == nullptr) {
    std::vector<std::string> names;
    for (const auto& k : source_keys()) names.push_back(k.path);
    const std::string suggestion = closest(name, names);
    entry.origin.fail(key_node.Mark(),
                      fmt::format("unknown key '{}.{}'{}", entry.key, shorten(name),
                                  did_you_mean(suggestion.empty() ? "" : entry.key + "." + suggestion)));
  }
  const Place place{entry.origin, key_node.Mark(), entry.key + "." + name};
  key->set(source, parse_value(*key, value, place));
}

// One list entry: a path, or a map of source keys with at least `path`.
DataSourceConfig parse_source(const YAML::Node& node, const Place& entry) {
  DataSourceConfig source;
  source.on_malformed = kOnMalformedUnset;
  const KeyDef<DataSourceConfig>& path_key = *find_source_key("path");
  if (node.IsScalar()) {
    path_key.set(source, parse_value(path_key, node, Place{entry.origin, node.Mark(), entry.key + ".path"}));
    return source;
  }
  if (!node.IsMap())
    entry.fail(node, fmt::format("expected a source (a path, or a map with a 'path' key), got {}", describe(node)));
  for_each_entry(node, entry.origin, entry.key + ".",
                 [&](const std::string& name, const YAML::Node& key_node, const YAML::Node& value) {
                   set_source_key(source, name, key_node, value, entry);
                 });
  if (source.path.empty()) entry.origin.fail(node.Mark(), entry.key + ": 'path' is missing");
  return source;
}

std::vector<DataSourceConfig> parse_sources(const YAML::Node& node, const Place& place) {
  if (!node.IsSequence())
    place.fail(node, fmt::format("expected a list of sources, got {}{}", describe(node),
                                 node.IsScalar() ? fmt::format(" (one file: [{}])", shorten(node.Scalar())) : ""));
  std::vector<DataSourceConfig> sources;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node entry = node[i];
    sources.push_back(parse_source(entry, Place{place.origin, entry.Mark(), fmt::format("{}[{}]", place.key, i)}));
  }
  return sources;
}

// ---------------------------------------------------------------------------------------------
// Applying a file's sections and --set overrides
// ---------------------------------------------------------------------------------------------

void set_train_key(TrainConfig& config, const KeyDef<TrainConfig>& key, const YAML::Node& key_node,
                   const YAML::Node& value, const Origin& origin) {
  key.set(config, parse_value(key, value, Place{origin, key_node.Mark(), key.path}));
}

void apply_section(TrainConfig& config, const std::string& section, const YAML::Node& key_node,
                   const YAML::Node& node, const Origin& origin) {
  if (node.IsNull()) return;  // "training:" with no keys under it
  if (!node.IsMap()) {
    const YAML::Mark mark = node.Mark().is_null() ? key_node.Mark() : node.Mark();
    origin.fail(mark, fmt::format("{}: expected a map of keys, got {}", section, describe(node)));
  }
  for_each_entry(node, origin, section + ".",
                 [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
                   const KeyDef<TrainConfig>* def = find_train_key(section + "." + name);
                   if (def == nullptr) fail_unknown_key(origin, key.Mark(), section + "." + name, section, name);
                   set_train_key(config, *def, key, value, origin);
                 });
}

void apply_root(TrainConfig& config, const YAML::Node& root, const Origin& origin) {
  if (root.IsNull()) return;  // empty file, or comments only: all defaults
  if (!root.IsMap())
    origin.fail(root.Mark(), fmt::format("expected a map of sections ({}), got {}",
                                         fmt::join(section_names(), ", "), describe(root)));
  for_each_entry(root, origin, "", [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
    if (std::find(section_names().begin(), section_names().end(), name) == section_names().end())
      fail_unknown_section(origin, key.Mark(), name);
    apply_section(config, name, key, value, origin);
  });
}

// The 0-based line and column (as yaml-cpp counts them) of a byte offset.
YAML::Mark mark_of_offset(const std::string& text, size_t offset) {
  const auto before = text.begin() + static_cast<std::ptrdiff_t>(offset);
  const auto line_start = std::find(std::make_reverse_iterator(before), text.rend(), '\n').base();
  YAML::Mark mark;
  mark.pos = static_cast<int>(offset);
  mark.line = static_cast<int>(std::count(text.begin(), before, '\n'));
  mark.column = static_cast<int>(before - line_start);
  return mark;
}

// The one YAML document of a config (Null for an empty file). Binary junk is refused before
// yaml-cpp sees it (NUL bytes would also make it guess a UTF-16/32 encoding).
YAML::Node parse_config_document(const std::string& text, const Origin& origin) {
  if (const size_t nul = text.find('\0'); nul != std::string::npos)
    origin.fail(mark_of_offset(text, nul), "not a text file (NUL byte)");
  if (const int64_t bad = find_invalid_utf8(text); bad >= 0)
    origin.fail(mark_of_offset(text, static_cast<size_t>(bad)), "not UTF-8 text");
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::DeepRecursion& e) {
    origin.fail(e.mark, "invalid YAML: nested too deeply");
  } catch (const YAML::Exception& e) {
    origin.fail(e.mark, "invalid YAML: " + e.msg);
  }
  if (documents.size() > 1)
    origin.fail(documents[1].Mark(), "a second YAML document; a config is one document");
  return documents.empty() ? YAML::Node() : documents[0];
}

struct KeySegment {
  std::string name;
  std::optional<size_t> index;  // "sources[2]"
};

// "data.sources[0].format" -> {data}, {sources, 0}, {format}; nullopt when not of that shape.
std::optional<std::vector<KeySegment>> split_key_path(const std::string& key) {
  std::vector<KeySegment> segments;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    KeySegment seg;
    const size_t bracket = part.find('[');
    seg.name = part.substr(0, bracket);
    if (seg.name.empty()) return std::nullopt;
    for (const char c : seg.name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return std::nullopt;
    if (bracket != std::string::npos) {
      if (part.back() != ']' || part.size() < bracket + 3) return std::nullopt;
      const char* begin = part.data() + bracket + 1;
      const char* end = part.data() + part.size() - 1;
      size_t index = 0;
      const auto [ptr, ec] = std::from_chars(begin, end, index);
      if (ec != std::errc() || ptr != end) return std::nullopt;
      seg.index = index;
    }
    segments.push_back(std::move(seg));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return segments;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// "--set KEY=VALUE": KEY is section.key, data.sources[N] or data.sources[N].key (N an existing
// entry), or a whole section; VALUE is YAML.
void apply_override(TrainConfig& config, const std::string& arg, const fs::path& cwd) {
  const Origin origin{"", arg.empty() ? "''" : arg, cwd};
  const YAML::Mark nowhere = YAML::Mark::null_mark();
  if (find_invalid_utf8(arg) >= 0) origin.fail(nowhere, "not UTF-8 text");
  const size_t eq = arg.find('=');
  if (eq == std::string::npos) origin.fail(nowhere, "expected KEY=VALUE (e.g. training.lr=3e-4)");
  const std::string key = trim(arg.substr(0, eq));
  const auto segments = split_key_path(key);
  if (!segments)
    origin.fail(nowhere, fmt::format("'{}' is not a key (expected section.key, e.g. training.lr, or "
                                     "data.sources[N].key)", shorten(key)));
  YAML::Node value;
  try {
    value = YAML::Load(arg.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    origin.fail(nowhere, "invalid YAML value: " + e.msg);
  }
  const auto& segs = *segments;
  const std::string& section = segs[0].name;
  if (std::find(section_names().begin(), section_names().end(), section) == section_names().end())
    fail_unknown_section(origin, nowhere, section);
  if (segs[0].index) origin.fail(nowhere, fmt::format("'{}' is a section, not a list", section));
  if (segs.size() == 1) {
    apply_section(config, section, YAML::Node(), value, origin);
    return;
  }
  const std::string path = section + "." + segs[1].name;
  const KeyDef<TrainConfig>* def = find_train_key(path);
  if (def == nullptr) fail_unknown_key(origin, nowhere, key, section, segs[1].name);
  if (!segs[1].index) {
    if (segs.size() > 2) {
      if (def->kind == Kind::Sources)
        origin.fail(nowhere, fmt::format("{} is a list: name an entry, e.g. {}[0].{}", path, path, segs[2].name));
      fail_unknown_key(origin, nowhere, key, section, key.substr(section.size() + 1));
    }
    set_train_key(config, *def, YAML::Node(), value, origin);
    return;
  }
  if (def->kind != Kind::Sources) origin.fail(nowhere, fmt::format("{} is not a list", path));
  if (segs.size() > 3) fail_unknown_key(origin, nowhere, key, section, key.substr(section.size() + 1));
  auto sources = std::get<std::vector<DataSourceConfig>>(def->get(config));
  const size_t index = *segs[1].index;
  const std::string entry_key = fmt::format("{}[{}]", path, index);
  if (index >= sources.size())
    origin.fail(nowhere, fmt::format("{}: no such entry ({} has {} entr{})", entry_key, path, sources.size(),
                                     sources.size() == 1 ? "y" : "ies"));
  const Place entry{origin, nowhere, entry_key};
  if (segs.size() == 2)
    sources[index] = parse_source(value, entry);
  else
    set_source_key(sources[index], segs[2].name, YAML::Node(), value, entry);
  def->set(config, sources);
}

// Rules that involve more than one key, once the file and every override are in.
void finish_config(TrainConfig& config, const std::string& where) {
  auto finish_sources = [&](std::vector<DataSourceConfig>& sources, const char* list) {
    for (size_t i = 0; i < sources.size(); ++i) {
      auto& s = sources[i];
      if (s.on_malformed == kOnMalformedUnset) s.on_malformed = config.data.on_malformed;
      if (s.min_chars > s.max_chars)
        throw Error(fmt::format("{}: {}[{}]: min_chars ({}) is above max_chars ({})", where, list, i, s.min_chars,
                                s.max_chars));
    }
  };
  finish_sources(config.data.sources, "data.sources");
  finish_sources(config.data.eval_sources, "data.eval_sources");
  finish_sources(config.pipeline.unlabeled, "pipeline.unlabeled");
  if (config.data.eval_fraction > 0 && !config.data.eval_sources.empty())
    throw Error(fmt::format("{}: data.eval_fraction ({}) and data.eval_sources are both set; hold out eval "
                            "data one way",
                            where, format_float(config.data.eval_fraction)));
}

// Greedy word wrap of `text` into lines of at most `width` characters, each prefixed by `indent`.
// A comparison sign stays on the line of its number (">= 1").
std::string wrap(const std::string& text, const std::string& indent, size_t width) {
  std::string out, line;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t space = text.find(' ', pos);
    const std::string first = text.substr(pos, space == std::string::npos ? std::string::npos : space - pos);
    if ((first == ">" || first == ">=" || first == "<" || first == "<=") && space != std::string::npos)
      space = text.find(' ', space + 1);
    const std::string word = text.substr(pos, space == std::string::npos ? std::string::npos : space - pos);
    pos = space == std::string::npos ? text.size() : space + 1;
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > width) {
      out += indent + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += indent + line + "\n";
  return out;
}

std::string type_name(Kind kind, const ValueSpec& spec) {
  switch (kind) {
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "string";
    case Kind::Path: return "path";
    case Kind::Enum: return fmt::format("enum({})", fmt::join(spec.choices, "|"));
    case Kind::Sources: return "list of sources";
    case Kind::EnumList: return fmt::format("list of ({})", fmt::join(spec.choices, "|"));
  }
  return "";
}

// The doc string plus what the table knows about the value: its range, aliases, non-emptiness.
std::string full_doc(const std::string& doc, const ValueSpec& spec) {
  std::string out = doc;
  if (const std::string range = spec.bounds.text(); !range.empty()) out += fmt::format(" Must be {}.", range);
  std::vector<std::string> aliases;
  for (const auto& [alias, name] : spec.aliases) aliases.push_back(fmt::format("{} for {}", alias, name));
  if (!aliases.empty()) out += fmt::format(" Accepts {}.", fmt::join(aliases, ", "));
  if (spec.non_empty && spec.kind != Kind::Path) out += " Not empty.";
  return out;
}

template <typename Obj>
ConfigKeyDoc key_doc(const KeyDef<Obj>& key, const std::string& path, bool resume_safe) {
  ConfigKeyDoc doc;
  doc.path = path;
  doc.type = type_name(key.kind, key.spec);
  doc.default_value = key.default_text.empty() ? render(key.get(Obj{})) : key.default_text;
  doc.doc = full_doc(key.doc, key.spec);
  doc.resume_safe = resume_safe;
  return doc;
}

}  // namespace

const std::vector<ConfigKeyDoc>& config_schema() {
  static const std::vector<ConfigKeyDoc> schema = [] {
    std::vector<ConfigKeyDoc> out;
    for (const auto& key : train_keys()) {
      out.push_back(key_doc(key, key.path, key.resume_safe));
      if (key.path == "data.sources")
        for (const auto& source_key : source_keys())
          out.push_back(key_doc(source_key, "data.sources[]." + source_key.path, source_key.resume_safe));
    }
    return out;
  }();
  return schema;
}

std::string format_config_schema() {
  std::string out =
      "Config keys, as `key  type = default`, then what the key does. [resume-safe] marks the keys that may\n"
      "change when a run is resumed. data.eval_sources entries take the same keys as data.sources[].\n";
  std::string section;
  for (const auto& key : config_schema()) {
    const std::string key_section = key.path.substr(0, key.path.find('.'));
    if (key_section != section) {
      section = key_section;
      out += "\n";
    }
    out += fmt::format("{}  {} = {}{}\n", key.path, key.type, key.default_value,
                       key.resume_safe ? "  [resume-safe]" : "");
    out += wrap(key.doc, "    ", 100);
  }
  return out;
}

TrainConfig load_train_config(const fs::path& path, const std::vector<std::string>& overrides,
                              const fs::path& overrides_dir) {
  TrainConfig config;
  if (!path.empty()) {
    const Origin origin{path.string(), "", fs::absolute(path).lexically_normal().parent_path()};
    const std::string text = read_file(path, "config", kMaxConfigBytes);
    apply_root(config, parse_config_document(text, origin), origin);
  }
  const fs::path cwd = overrides_dir.empty() ? fs::current_path() : fs::absolute(overrides_dir).lexically_normal();
  for (const auto& arg : overrides) apply_override(config, arg, cwd);
  finish_config(config, path.empty() ? std::string("--set") : path.string());
  return config;
}

void check_train_config_complete(const TrainConfig& config) {
  std::vector<std::string> missing;
  if (config.model.path.empty())
    missing.push_back("model.path is not set (the base model dir: 'path:' under 'model:', or --set model.path=DIR)");
  if (config.output.run_dir.empty())
    missing.push_back("output.run_dir is not set ('run_dir:' under 'output:', or --run-dir DIR)");
  if (config.data.sources.empty())
    missing.push_back("data.sources is empty (list the training files under 'data: sources:', or --set "
                      "data.sources=[FILE])");
  if (!missing.empty()) throw Error(fmt::format("incomplete config: {}", fmt::join(missing, "; ")));
}

std::string train_config_to_yaml(const TrainConfig& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string section;
  for (const auto& key : train_keys()) {
    if (key.section() != section) {
      if (!section.empty()) out << YAML::EndMap;
      section = key.section();
      out << YAML::Key << section << YAML::Value << YAML::BeginMap;
    }
    out << YAML::Key << key.leaf() << YAML::Value;
    emit_value(out, key.get(config));
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> resume_incompatibilities(const TrainConfig& saved, const TrainConfig& resumed) {
  std::vector<std::string> lines;
  for (const auto& key : train_keys()) {
    if (key.resume_safe) continue;
    const Value before = key.get(saved), after = key.get(resumed);
    if (key.kind != Kind::Sources) {
      if (render(before) != render(after))
        lines.push_back(fmt::format("{}: {} -> {}", key.path, render(before), render(after)));
      continue;
    }
    // Lists of sources: entry by entry, so the line names the field that changed.
    const auto& a = std::get<std::vector<DataSourceConfig>>(before);
    const auto& b = std::get<std::vector<DataSourceConfig>>(after);
    if (a.size() != b.size()) {
      auto entries = [](size_t n) { return fmt::format("{} entr{}", n, n == 1 ? "y" : "ies"); };
      lines.push_back(fmt::format("{}: {} -> {}", key.path, entries(a.size()), entries(b.size())));
      continue;
    }
    for (size_t i = 0; i < a.size(); ++i)
      for (const auto& source_key : source_keys()) {
        if (source_key.resume_safe) continue;
        const std::string x = render(source_key.get(a[i])), y = render(source_key.get(b[i]));
        if (x != y) lines.push_back(fmt::format("{}[{}].{}: {} -> {}", key.path, i, source_key.path, x, y));
      }
  }
  return lines;
}

std::string did_you_mean_hint(const std::string& typed, const std::vector<std::string>& candidates) {
  return did_you_mean(closest(typed, candidates));
}

std::vector<std::string> compared_filter_rules(const FilterSection& filter) {
  std::vector<std::string> rules = filter.compare;
  if (std::find(rules.begin(), rules.end(), filter.rule) == rules.end()) rules.insert(rules.begin(), filter.rule);
  return rules;
}

bool filter_rule_used(const FilterSection& filter, const std::string& rule) {
  const auto rules = compared_filter_rules(filter);
  return std::find(rules.begin(), rules.end(), rule) != rules.end();
}

}  // namespace mt
