// The run configuration (trainer/config/config.h): defaults, a full file, file-relative paths, every kind
// of error with its FILE:LINE:COL and "did you mean", ranges and enums, --set overrides, the YAML
// round trip, the schema against the written YAML and docs/config.md, the resume rule, and
// hostile files (deep nesting, binary junk, huge scalars) that must give an mt::Error, not a crash.
#include <yaml-cpp/yaml.h>

#include <set>

#include "trainer/config/config.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using mt::test::require_error;

namespace {

// A config file written into its own temp dir; load() reads it with overrides.
struct ConfigFile {
  fs::path dir = mt::test::temp_dir("config");
  fs::path path = dir / "run.yaml";

  explicit ConfigFile(const std::string& text) { mt::test::write_file(path, text); }
  ~ConfigFile() { fs::remove_all(dir); }
  mt::PipelineConfig load(const std::vector<std::string>& overrides = {}) const {
    return mt::load_pipeline_config(path, overrides);
  }
};

mt::PipelineConfig load_text(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return ConfigFile(text).load(overrides);
}

// Requires loading `text` to fail with a message holding every one of `parts`.
void require_text_error(const std::string& text, std::initializer_list<std::string> parts,
                        const std::vector<std::string>& overrides = {}) {
  INFO("config text:\n" << text);
  require_error([&] { load_text(text, overrides); }, parts);
}

// Two configs are equal when they print the same (pipeline_config_to_yaml prints every key).
bool same_config(const mt::PipelineConfig& a, const mt::PipelineConfig& b) {
  return mt::pipeline_config_to_yaml(a) == mt::pipeline_config_to_yaml(b);
}

// Every key path of a YAML tree: "a.b" for map entries, "a[]" then "a[].c" for list entries.
void collect_paths(const YAML::Node& node, const std::string& path, std::set<std::string>& out) {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string child = path.empty() ? it->first.Scalar() : path + "." + it->first.Scalar();
      out.insert(child);
      collect_paths(it->second, child, out);
    }
  } else if (node.IsSequence()) {
    for (const auto& entry : node) collect_paths(entry, path + "[]", out);
  }
}

const char* kFullConfig = R"(# every section, no default left
model:
  path: /models/llama
  tokenizer: /models/tok
  init: random
  dtype: fp32
  pure_bf16: true
  activation_checkpointing: yes
  device: cpu
data:
  sources:
    - /data/a.jsonl
    - path: /data/b.json
      format: alpaca
      instruction_field: q
      system_prompt: "Be brief: always."
      min_chars: 10
      max_chars: 500
      on_malformed: fail
  eval_sources: [{path: /data/eval.jsonl, format: prompt_response, prompt_field: instruction}]
  template: chatml
  max_len: 1024
  packing: sequential
  train_on_prompt: true
  too_long: drop
  on_malformed: skip
  shuffle: false
  cache_dir: /cache
optimizer:
  lr: 3e-4
  beta1: 0.8
  beta2: 0.99
  eps: 1e-6
  weight_decay: 0.1
  fused: false
schedule:
  type: linear
  warmup_steps: 100
  min_lr_ratio: 0.1
training:
  max_steps: 1000
  epochs: 2.5
  micro_batch_size: 8
  grad_accum_steps: 4
  max_grad_norm: 0.5
  seed: 42
  eval_every: 50
  eval_max_batches: 10
  checkpoint_every: 200
  max_consecutive_nonfinite: 3
  loss_chunk_tokens: 1024
output:
  run_dir: /runs/x
  keep_last: 0
  export: false
  export_dtype: float16
  max_shard_bytes: 1000000
logging:
  log_every: 5
  progress: lines
  tensorboard: false
)";

}  // namespace

TEST_CASE("config: no file and an empty file give the defaults", "[config]") {
  const mt::PipelineConfig defaults;
  const auto c = mt::load_pipeline_config("");
  CHECK(same_config(c, defaults));
  CHECK(c.model.init == "pretrained");
  CHECK(c.model.dtype == "bfloat16");
  CHECK(c.data.template_name == "auto");
  CHECK(c.data.max_len == 2048);
  CHECK(c.optimizer.lr == 2e-5);
  CHECK(c.schedule.type == "cosine");
  CHECK(c.training.loss_chunk_tokens == 4096);
  CHECK(c.output.export_final);
  CHECK(c.output.max_shard_bytes == 5000000000);
  CHECK(c.logging.progress == "auto");
  CHECK(same_config(load_text(""), defaults));
  CHECK(same_config(load_text("# nothing but a comment\n\n"), defaults));
  CHECK(same_config(load_text("training:\n"), defaults));  // a section with no keys
}

TEST_CASE("config: the required keys are checked apart from loading", "[config]") {
  const auto c = mt::load_pipeline_config("");  // loading alone does not require them
  require_error([&] { mt::check_train_config_complete(c); },
                {"model.path is not set", "--set model.path=", "output.run_dir is not set", "--run-dir",
                 "data.sources is empty", "data.sources=[FILE]"});
  auto complete = load_text("model: {path: /m}\ndata: {sources: [/d.jsonl]}\n", {"output.run_dir=/runs/a"});
  mt::check_train_config_complete(complete);
  complete.output.run_dir.clear();
  require_error([&] { mt::check_train_config_complete(complete); }, {"output.run_dir is not set"});
}

TEST_CASE("config: a full file sets every section", "[config]") {
  const auto c = load_text(kFullConfig);
  CHECK(c.model.path == "/models/llama");
  CHECK(c.model.tokenizer == "/models/tok");
  CHECK(c.model.init == "random");
  CHECK(c.model.dtype == "float32");  // the alias is stored as the long name
  CHECK(c.model.pure_bf16);
  CHECK(c.model.activation_checkpointing);
  CHECK(c.model.device == "cpu");
  REQUIRE(c.data.sources.size() == 2);
  CHECK(c.data.sources[0].path == "/data/a.jsonl");
  CHECK(c.data.sources[0].format == "auto");
  CHECK(c.data.sources[0].on_malformed == "skip");  // from data.on_malformed, given after the list
  CHECK(c.data.sources[1].format == "alpaca");
  CHECK(c.data.sources[1].instruction_field == "q");
  CHECK(c.data.sources[1].input_field == "input");
  CHECK(c.data.sources[1].system_prompt == "Be brief: always.");
  CHECK(c.data.sources[1].min_chars == 10);
  CHECK(c.data.sources[1].max_chars == 500);
  CHECK(c.data.sources[1].on_malformed == "fail");  // its own
  REQUIRE(c.data.eval_sources.size() == 1);
  CHECK(c.data.eval_sources[0].format == "prompt_response");
  CHECK(c.data.eval_sources[0].prompt_field == "instruction");
  CHECK(c.data.eval_sources[0].on_malformed == "skip");
  CHECK(c.data.template_name == "chatml");
  CHECK(c.data.max_len == 1024);
  CHECK(c.data.packing == "sequential");
  CHECK(c.data.train_on_prompt);
  CHECK(c.data.too_long == "drop");
  CHECK(c.data.on_malformed == "skip");
  CHECK_FALSE(c.data.shuffle);
  CHECK(c.data.cache_dir == "/cache");
  CHECK(c.optimizer.lr == 3e-4);
  CHECK(c.optimizer.beta1 == 0.8);
  CHECK(c.optimizer.beta2 == 0.99);
  CHECK(c.optimizer.eps == 1e-6);
  CHECK(c.optimizer.weight_decay == 0.1);
  CHECK_FALSE(c.optimizer.fused);
  CHECK(c.schedule.type == "linear");
  CHECK(c.schedule.warmup_steps == 100);
  CHECK(c.schedule.min_lr_ratio == 0.1);
  CHECK(c.training.max_steps == 1000);
  CHECK(c.training.epochs == 2.5);
  CHECK(c.training.micro_batch_size == 8);
  CHECK(c.training.grad_accum_steps == 4);
  CHECK(c.training.max_grad_norm == 0.5);
  CHECK(c.training.seed == 42);
  CHECK(c.training.eval_every == 50);
  CHECK(c.training.eval_max_batches == 10);
  CHECK(c.training.checkpoint_every == 200);
  CHECK(c.training.max_consecutive_nonfinite == 3);
  CHECK(c.training.loss_chunk_tokens == 1024);
  CHECK(c.output.run_dir == "/runs/x");
  CHECK(c.output.keep_last == 0);
  CHECK_FALSE(c.output.export_final);
  CHECK(c.output.export_dtype == "float16");
  CHECK(c.output.max_shard_bytes == 1000000);
  CHECK(c.logging.log_every == 5);
  CHECK(c.logging.progress == "lines");
  CHECK_FALSE(c.logging.tensorboard);
  mt::check_train_config_complete(c);

  // Floats take integers; bools take YAML's yes/no spellings; CRLF files read the same.
  const auto d = load_text("optimizer:\n  lr: 1\nmodel:\n  pure_bf16: No\n");
  CHECK(d.optimizer.lr == 1.0);
  CHECK_FALSE(d.model.pure_bf16);
  std::string crlf = kFullConfig;
  for (size_t pos = 0; (pos = crlf.find('\n', pos)) != std::string::npos; pos += 2) crlf.replace(pos, 1, "\r\n");
  CHECK(same_config(load_text(crlf), c));
}

TEST_CASE("config: relative paths resolve against the config's folder, --set ones against the cwd", "[config]") {
  const fs::path root = mt::test::temp_dir("config_paths");
  fs::create_directories(root / "conf" / "sub");
  const fs::path file = root / "conf" / "sub" / "run.yaml";
  mt::test::write_file(file, R"(model:
  path: ../../models/llama
  tokenizer: ""
data:
  sources:
    - train.jsonl
    - {path: ./more/../b.jsonl, answers_path: answers.jsonl}
  cache_dir: cache/
output:
  run_dir: /abs/runs/../x
)");
  const fs::path base = (root / "conf" / "sub").lexically_normal();
  auto c = mt::load_pipeline_config(file);
  CHECK(c.model.path == (root / "models" / "llama").lexically_normal().string());
  CHECK(c.model.tokenizer.empty());  // "" stays "" (= model.path)
  CHECK(c.data.sources[0].path == base / "train.jsonl");
  CHECK(c.data.sources[1].path == base / "b.jsonl");
  CHECK(c.data.sources[1].answers_path == base / "answers.jsonl");
  CHECK(c.data.sources[0].answers_path.empty());
  CHECK(c.data.cache_dir == (base / "cache").string());  // no trailing separator
  CHECK(c.output.run_dir == "/abs/x");

  // A relative config path: the folder is still found (made absolute against the cwd).
  const fs::path relative = fs::relative(file, fs::current_path());
  CHECK(same_config(mt::load_pipeline_config(relative), c));

  const fs::path cwd = fs::current_path();
  c = mt::load_pipeline_config(file, {"output.run_dir=runs/a", "data.sources[1].path=b2.jsonl", "model.tokenizer=/t"});
  CHECK(c.output.run_dir == (cwd / "runs" / "a").lexically_normal().string());
  CHECK(c.data.sources[1].path == (cwd / "b2.jsonl").lexically_normal());
  CHECK(c.data.sources[1].answers_path == base / "answers.jsonl");  // from the file, unchanged
  CHECK(c.model.tokenizer == "/t");
  require_error([&] { mt::load_pipeline_config(file, {"model.path=~/models/x"}); },
                {"--set model.path=~/models/x: model.path: '~' is not expanded"});
  fs::remove_all(root);
}

TEST_CASE("config: errors name FILE:LINE:COL, the key and what is wrong", "[config]") {
  // Wrong types.
  require_text_error("training:\n  micro_batch_size: abc\n",
                     {"run.yaml:2:21: training.micro_batch_size: expected an integer, got 'abc'"});
  require_text_error("training:\n  seed: 1.5\n", {"run.yaml:2:9: training.seed: expected an integer, got '1.5'"});
  require_text_error("training:\n  seed: 1e3\n", {"training.seed: expected an integer, got '1e3'"});
  require_text_error("training:\n  seed: '7'\n", {"training.seed: expected an integer, got the quoted string '7'"});
  require_text_error("training:\n  seed: 99999999999999999999\n", {"training.seed: integer out of range"});
  require_text_error("optimizer:\n  lr: fast\n", {"run.yaml:2:7: optimizer.lr: expected a finite number, got 'fast'"});
  require_text_error("optimizer:\n  lr: .inf\n", {"optimizer.lr: expected a finite number, got '.inf'"});
  require_text_error("model:\n  pure_bf16: maybe\n",
                     {"run.yaml:2:14: model.pure_bf16: expected true or false, got 'maybe'"});
  require_text_error("model:\n  pure_bf16: 1\n", {"model.pure_bf16: expected true or false, got '1'"});
  // Wrong node kinds: a list or map where a scalar goes, a list where a map goes, a scalar for a list.
  require_text_error("training:\n  seed: [1, 2]\n", {"run.yaml:2:9: training.seed: expected an integer, got a list"});
  require_text_error("model:\n  path: {a: 1}\n", {"run.yaml:2:9: model.path: expected a string, got a map"});
  require_text_error("training: [1, 2]\n", {"run.yaml:1:11: training: expected a map of keys, got a list"});
  require_text_error("training: 5\n", {"run.yaml:1:11: training: expected a map of keys, got '5'"});
  require_text_error("- model\n- data\n", {"run.yaml:1:1: expected a map of sections (model, data,", "got a list"});
  require_text_error("just text\n", {"run.yaml:1:1: expected a map of sections", "got 'just text'"});
  require_text_error("data:\n  sources: a.jsonl\n",
                     {"run.yaml:2:12: data.sources: expected a list of sources, got 'a.jsonl' (one file: [a.jsonl])"});
  require_text_error("data:\n  sources: [[a]]\n",
                     {"run.yaml:2:13: data.sources[0]: expected a source (a path, or a map with a 'path' key), got "
                      "a list"});
  require_text_error("data:\n  sources:\n    - format: alpaca\n", {"run.yaml:3:7: data.sources[0]: 'path' is missing"});
  require_text_error("data:\n  sources:\n    - path: ''\n", {"run.yaml:3:13: data.sources[0].path: must not be empty"});
  require_text_error("data:\n  sources:\n    - {path: a, text_field: ''}\n",
                     {"data.sources[0].text_field: must not be empty"});
  require_text_error("? [1, 2]\n: 3\n", {"run.yaml:1:3: a key must be a name, got a list"});
  // Null values: an error for every non-string key, "" for strings.
  require_text_error("training:\n  seed:\n", {"run.yaml:2:3: training.seed: expected an integer, got nothing"});
  require_text_error("model:\n  dtype:\n", {"model.dtype: expected one of bfloat16|float32", "got nothing"});
  require_text_error("data:\n  sources:\n", {"data.sources: expected a list of sources, got nothing"});
  CHECK(load_text("model:\n  path:\ndata:\n  sources: [{path: a, system_prompt: }]\n").model.path.empty());
  CHECK(load_text("data:\n  sources: [{path: a, system_prompt: ~}]\n").data.sources[0].system_prompt.empty());
  // Control characters are refused in strings; tab and newline are fine.
  require_text_error("data:\n  sources: [{path: a, system_prompt: \"x\\x01y\"}]\n",
                     {"data.sources[0].system_prompt: contains the control character U+0001"});
  CHECK(load_text("data:\n  sources: [{path: a, system_prompt: \"a\\tb\\nc\"}]\n").data.sources[0].system_prompt ==
        "a\tb\nc");
  // Repeated keys (yaml-cpp keeps both; a config must not).
  require_text_error("training:\n  seed: 1\n  seed: 2\n",
                     {"run.yaml:3:3: duplicate key 'training.seed' (first at line 2)"});
  require_text_error("training: {}\nmodel: {}\ntraining: {}\n",
                     {"run.yaml:3:1: duplicate key 'training' (first at line 1)"});
  require_text_error("data:\n  sources: [{path: a, path: b}]\n", {"duplicate key 'data.sources[0].path'"});
  // Not YAML, or not one document.
  require_text_error("training:\n  seed: [1, 2\n", {"run.yaml:3:1: invalid YAML: end of sequence flow not found"});
  require_text_error("training:\n\tseed: 1\n", {"run.yaml:", "invalid YAML"});
  require_text_error("training: {seed: 1}\n---\nmodel: {}\n", {"run.yaml:2:1: a second YAML document"});  // at its "---"
  // Cross-key rules.
  require_text_error("data:\n  eval_fraction: 0.1\n  eval_sources: [e.jsonl]\n",
                     {"run.yaml: data.eval_fraction (0.1) and data.eval_sources are both set"});
  require_text_error("data:\n  sources: [{path: a, min_chars: 50, max_chars: 10}]\n",
                     {"run.yaml: data.sources[0]: min_chars (50) is above max_chars (10)"});
  // The file itself.
  const fs::path dir = mt::test::temp_dir("config_missing");
  require_error([&] { mt::load_pipeline_config(dir / "nope.yaml"); },
                {"nope.yaml: cannot open config: No such file"});
  require_error([&] { mt::load_pipeline_config(dir); }, {": cannot read config: it is a directory"});
  fs::remove_all(dir);
}

TEST_CASE("config: unknown keys and sections suggest the close name", "[config]") {
  require_text_error("training:\n  micro_bach_size: 2\n",
                     {"run.yaml:2:3: unknown key 'training.micro_bach_size' (did you mean "
                      "'training.micro_batch_size'?)"});
  require_text_error("trainig:\n  seed: 2\n",
                     {"run.yaml:1:1: unknown section 'trainig' (did you mean 'training'?)",
                      "the sections are model, data"});
  require_text_error("data:\n  sources:\n    - path: a\n      fromat: alpaca\n",
                     {"run.yaml:4:7: unknown key 'data.sources[0].fromat' (did you mean 'data.sources[0].format'?)"});
  // A key in the wrong section, or at the top level: its real place.
  require_text_error("training:\n  lr: 1e-4\n", {"unknown key 'training.lr' (did you mean 'optimizer.lr'?)"});
  require_text_error("max_len: 512\n", {"unknown section 'max_len' (did you mean 'data.max_len'? keys go inside"});
  // Nothing close: no suggestion.
  std::string message;
  try {
    load_text("training:\n  zzzzzzzzzz: 1\nmodel: {}\n");
  } catch (const mt::Error& e) {
    message = e.what();
  }
  CHECK_THAT(message, MT_HAS("unknown key 'training.zzzzzzzzzz'"));
  CHECK(message.find("did you mean") == std::string::npos);
  require_text_error("xyzzy: {}\n", {"unknown section 'xyzzy'; the sections are"});
}

TEST_CASE("config: value ranges and enum choices are checked", "[config]") {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"optimizer: {lr: 0}", "optimizer.lr: must be > 0, got 0"},
      {"optimizer: {lr: -1e-5}", "optimizer.lr: must be > 0, got -1e-5"},
      {"optimizer: {beta1: 1}", "optimizer.beta1: must be in [0, 1), got 1"},
      {"optimizer: {beta2: -0.1}", "optimizer.beta2: must be in [0, 1), got -0.1"},
      {"optimizer: {eps: 0}", "optimizer.eps: must be > 0"},
      {"optimizer: {weight_decay: -0.01}", "optimizer.weight_decay: must be >= 0"},
      {"training: {micro_batch_size: 0}", "training.micro_batch_size: must be >= 1, got 0"},
      {"training: {grad_accum_steps: 0}", "training.grad_accum_steps: must be >= 1"},
      {"data: {max_len: 1}", "data.max_len: must be >= 2, got 1"},
      {"data: {eval_fraction: 1}", "data.eval_fraction: must be in [0, 1), got 1"},
      {"training: {max_grad_norm: -1}", "training.max_grad_norm: must be >= 0"},
      {"schedule: {warmup_steps: -1}", "schedule.warmup_steps: must be >= 0"},
      {"schedule: {min_lr_ratio: 1.5}", "schedule.min_lr_ratio: must be in [0, 1], got 1.5"},
      {"training: {max_steps: -1}", "training.max_steps: must be >= 0"},
      {"training: {epochs: 0}", "training.epochs: must be > 0"},
      {"output: {keep_last: -1}", "output.keep_last: must be >= 0"},
      {"logging: {log_every: 0}", "logging.log_every: must be >= 1"},
      {"training: {max_consecutive_nonfinite: 0}", "training.max_consecutive_nonfinite: must be >= 1"},
      {"training: {loss_chunk_tokens: 0}", "training.loss_chunk_tokens: must be >= 1"},
      {"training: {eval_every: -5}", "training.eval_every: must be >= 0"},
      {"training: {eval_max_batches: -1}", "training.eval_max_batches: must be >= 0"},
      {"training: {checkpoint_every: -1}", "training.checkpoint_every: must be >= 0"},
      {"training: {synthetic_weight: 1.5}", "training.synthetic_weight: must be -1 or in [0, 1], got 1.5"},
      {"training: {synthetic_weight: -0.5}", "training.synthetic_weight: must be -1 or in [0, 1], got -0.5"},
      {"data: {sources: [{path: a, synthetic: maybe}]}", "data.sources[0].synthetic: expected true or false"},
      {"output: {max_shard_bytes: 0}", "output.max_shard_bytes: must be >= 1"},
      {"data: {sources: [{path: a, max_line_bytes: 0}]}", "data.sources[0].max_line_bytes: must be >= 1"},
      {"model: {init: scratch}", "model.init: expected one of pretrained|random, got 'scratch'"},
      {"model: {dtype: fp16}", "model.dtype: expected one of bfloat16|float32 (or bf16|fp32), got 'fp16'"},
      {"model: {device: gpu}", "model.device: expected one of auto|cpu|cuda, got 'gpu'"},
      {"data: {template: llama4}",
       "data.template: expected one of auto|from_model|llama3|llama3.1|llama2|mistral|chatml|qwen2.5|alpaca"},
      {"data: {packing: best_fit}", "data.packing: expected one of first_fit|sequential|none"},
      {"data: {too_long: cut}", "data.too_long: expected one of truncate|drop"},
      {"data: {on_malformed: ignore}", "data.on_malformed: expected one of fail|skip, got 'ignore'"},
      {"data: {sources: [{path: a, on_malformed: warn}]}", "data.sources[0].on_malformed: expected one of fail|skip"},
      {"data: {sources: [{path: a, format: csv}]}",
       "data.sources[0].format: expected one of auto|alpaca|alpaca_seed|messages|prompt_response|prompt_completion|"
       "prompts|mt_bench|text_jsonl|text, got 'csv'"},
      {"schedule: {type: step}", "schedule.type: expected one of constant|linear|cosine"},
      {"output: {export_dtype: int8}", "output.export_dtype: expected one of auto|bfloat16|float32|float16"},
      {"logging: {progress: fancy}", "logging.progress: expected one of auto|bar|lines|none"},
  };
  for (const auto& c : cases) require_text_error(std::string(c.text) + "\n", {"run.yaml:1:", c.message});
  // The edges that are allowed.
  const auto ok = load_text(
      "optimizer: {beta1: 0, weight_decay: 0}\nschedule: {min_lr_ratio: 1}\ndata: {max_len: 2, eval_fraction: 0.99}\n"
      "model: {dtype: bf16}\ntraining: {max_grad_norm: 0, seed: -3}\n");
  CHECK(ok.schedule.min_lr_ratio == 1.0);
  CHECK(ok.model.dtype == "bfloat16");
  CHECK(ok.training.seed == -3);
}

TEST_CASE("config: --set overrides scalars, lists and list entries", "[config]") {
  const ConfigFile file("data:\n  sources: [/d/a.jsonl, {path: /d/b.jsonl, format: text}]\ntraining:\n  seed: 1\n");
  auto c = file.load({"optimizer.lr=3e-4", "training.seed=7", "model.dtype=fp32", "data.template=llama3",
                      "output.export=false", "model.path=/m"});
  CHECK(c.optimizer.lr == 3e-4);
  CHECK(c.training.seed == 7);
  CHECK(c.model.dtype == "float32");
  CHECK(c.data.template_name == "llama3");
  CHECK_FALSE(c.output.export_final);
  CHECK(c.model.path == "/m");
  CHECK(file.load({"training.seed=7", "training.seed=8"}).training.seed == 8);  // in order: the last wins
  CHECK(file.load({"model.path="}).model.path.empty());                          // "" for a string

  // A whole list, an entry's key, a whole entry, a whole section.
  c = file.load({"data.sources=[/x/a.jsonl, {path: /x/b.jsonl, format: alpaca}]"});
  REQUIRE(c.data.sources.size() == 2);
  CHECK(c.data.sources[0].path == "/x/a.jsonl");
  CHECK(c.data.sources[1].format == "alpaca");
  c = file.load({"data.sources[0].format=alpaca", "data.sources[1].on_malformed=skip"});
  CHECK(c.data.sources[0].format == "alpaca");
  CHECK(c.data.sources[0].on_malformed == "fail");
  CHECK(c.data.sources[1].format == "text");
  CHECK(c.data.sources[1].on_malformed == "skip");
  c = file.load({"data.sources[1]={path: /y.jsonl, min_chars: 5}"});
  CHECK(c.data.sources[1].path == "/y.jsonl");
  CHECK(c.data.sources[1].format == "auto");
  CHECK(c.data.sources[1].min_chars == 5);
  c = file.load({"training={seed: 9, micro_batch_size: 2}"});
  CHECK(c.training.seed == 9);
  CHECK(c.training.micro_batch_size == 2);
  // A source's on_malformed follows data.on_malformed even when that comes from --set.
  c = file.load({"data.on_malformed=skip"});
  CHECK(c.data.sources[0].on_malformed == "skip");
  CHECK(c.data.sources[1].on_malformed == "skip");
  // No file: defaults plus overrides.
  c = mt::load_pipeline_config("", {"data.sources=[/a.jsonl]", "data.eval_sources=[/e.jsonl]"});
  CHECK(c.data.sources.at(0).path == "/a.jsonl");
  CHECK(c.data.eval_sources.at(0).path == "/e.jsonl");

  auto fails = [&](const std::string& arg, std::initializer_list<std::string> parts) {
    INFO("--set " << arg);
    require_error([&] { file.load({arg}); }, parts);
  };
  fails("training.seed", {"--set training.seed: expected KEY=VALUE (e.g. training.lr=3e-4)"});
  fails("=5", {"--set =5: '' is not a key"});
  fails("training..seed=5", {"'training..seed' is not a key"});
  fails("training.seed=abc", {"--set training.seed=abc: training.seed: expected an integer, got 'abc'"});
  fails("training.micro_bach_size=2",
        {"--set training.micro_bach_size=2: unknown key 'training.micro_bach_size' (did you mean "
         "'training.micro_batch_size'?)"});
  fails("trainig.seed=2", {"--set trainig.seed=2: unknown section 'trainig' (did you mean 'training'?)"});
  fails("training.lr=1e-4", {"unknown key 'training.lr' (did you mean 'optimizer.lr'?)"});
  fails("data.sources[2].format=alpaca",
        {"--set data.sources[2].format=alpaca: data.sources[2]: no such entry (data.sources has 2 entries)"});
  fails("data.sources[0].fromat=alpaca",
        {"unknown key 'data.sources[0].fromat' (did you mean 'data.sources[0].format'?)"});
  fails("data.sources[0].format=csv", {"data.sources[0].format: expected one of auto|alpaca"});
  fails("data.sources.path=x", {"data.sources is a list: name an entry, e.g. data.sources[0].path"});
  fails("training.seed[0]=1", {"training.seed is not a list"});
  fails("data.sources[x].path=a", {"'data.sources[x].path' is not a key"});
  fails("data.sources=[a, b", {"--set data.sources=[a, b: invalid YAML value"});
  fails("data.sources=a.jsonl", {"data.sources: expected a list of sources, got 'a.jsonl'"});
  fails("training=5", {"training: expected a map of keys, got '5'"});
  fails("data.sources[0]={format: text}", {"data.sources[0]: 'path' is missing"});
  fails("data.sources=[{path: a, path: b}]", {"duplicate key 'data.sources[0].path'"});
}

TEST_CASE("config: the YAML written back loads as the same config", "[config]") {
  // Non-default values everywhere, and strings that YAML would read as something else unquoted.
  auto c = load_text(kFullConfig);
  c.data.sources[0].system_prompt = "null";
  c.data.sources[1].system_prompt = "yes: \"quoted\" 'single' #hash\n\tand a tab, é, - dash";
  c.data.sources[1].text_field = "123";
  c.data.sources[1].instruction_field = "true";
  c.data.eval_sources[0].system_prompt = "~";
  c.optimizer.lr = 1.0 / 3.0;
  c.optimizer.eps = 1e-300;
  c.training.epochs = 3.0;
  c.training.seed = -9223372036854775807 - 1;
  c.output.max_shard_bytes = 9223372036854775807;
  c.output.run_dir = "/runs/with space/and: colon";
  const std::string yaml = mt::pipeline_config_to_yaml(c);
  const ConfigFile file(yaml);
  const auto back = file.load();
  INFO(yaml);
  CHECK(same_config(back, c));
  CHECK(back.optimizer.lr == c.optimizer.lr);  // exact, not approximately
  CHECK(back.optimizer.eps == 1e-300);
  CHECK(back.data.sources[0].system_prompt == "null");
  CHECK(back.data.sources[1].system_prompt == c.data.sources[1].system_prompt);
  CHECK(back.data.sources[1].text_field == "123");
  CHECK(back.data.eval_sources[0].system_prompt == "~");
  CHECK(back.output.run_dir == "/runs/with space/and: colon");
  CHECK(back.training.seed == c.training.seed);
  // The defaults' text loads as the defaults.
  CHECK(same_config(load_text(mt::pipeline_config_to_yaml(mt::PipelineConfig{})), mt::PipelineConfig{}));
}

TEST_CASE("config: the schema lists every key the YAML has, and docs/config.md holds it", "[config]") {
  const auto& schema = mt::config_schema();
  std::set<std::string> schema_paths;
  for (const auto& k : schema) {
    INFO(k.path);
    CHECK(schema_paths.insert(k.path).second);  // no key twice
    CHECK_FALSE(k.type.empty());
    CHECK_FALSE(k.default_value.empty());
    CHECK_FALSE(k.doc.empty());
  }
  // Every key path of a config with one source and one eval source (eval entries' keys are
  // listed once, as data.sources[].*).
  const auto c = mt::load_pipeline_config("", {"data.sources=[/a]", "data.eval_sources=[/b]"});
  std::set<std::string> yaml_paths;
  collect_paths(YAML::Load(mt::pipeline_config_to_yaml(c)), "", yaml_paths);
  std::set<std::string> expected = schema_paths;
  for (const auto& k : schema)
    if (k.path.rfind("data.sources[].", 0) == 0) expected.insert("data.eval_sources[]." + k.path.substr(15));
  const std::set<std::string> sections = {"model",  "data",   "optimizer", "schedule",  "training", "alignment", "output",
                                          "logging", "distributed", "pipeline", "rounds",   "synthesis", "filter",   "final", "demo"};
  for (const auto& s : sections) expected.insert(s);
  CHECK(yaml_paths == expected);

  // The documented defaults are the struct's; the enum types and resume flags are as specified.
  auto find = [&](const std::string& path) -> const mt::ConfigKeyDoc& {
    for (const auto& k : schema)
      if (k.path == path) return k;
    FAIL("no schema key " << path);
    return schema.front();
  };
  CHECK(find("data.max_len").default_value == "2048");
  CHECK(find("data.max_len").type == "int");
  CHECK(find("optimizer.lr").default_value == "2e-05");
  CHECK(find("model.path").default_value == "\"\"");
  CHECK(find("data.sources").default_value == "[]");
  CHECK(find("data.template").type == "enum(auto|from_model|llama3|llama3.1|llama2|mistral|chatml|qwen2.5|alpaca)");
  CHECK(find("model.dtype").type == "enum(bfloat16|float32)");
  CHECK(find("data.sources[].on_malformed").default_value == "data.on_malformed");
  const std::set<std::string> resume_safe = {
      "training.eval_every", "training.eval_max_batches", "training.checkpoint_every",
      "training.max_consecutive_nonfinite", "data.eval_sources", "data.cache_dir", "model.device"};
  for (const auto& k : schema) {
    INFO(k.path);
    const bool expected_safe = resume_safe.count(k.path) > 0 || k.path.rfind("output.", 0) == 0 ||
                               k.path.rfind("logging.", 0) == 0 ||
                               k.path.rfind("distributed.", 0) == 0;
    CHECK(k.resume_safe == expected_safe);
  }

  const std::string table = mt::format_config_schema();
  for (const auto& k : schema) CHECK_THAT(table, MT_HAS("\n" + k.path + "  " + k.type + " = " + k.default_value));
  CHECK_THAT(table, MT_HAS("training.eval_every  int = 0  [resume-safe]"));
  CHECK_THAT(table, MT_HAS("training.micro_batch_size  int = 1\n"));
  const std::string docs = mt::test::read_file(fs::path(MT_SOURCE_DIR) / "docs" / "config.md");
  INFO("docs/config.md must embed the output of `maintune config --schema` (format_config_schema) verbatim");
  CHECK(docs.find(table) != std::string::npos);
}

TEST_CASE("config: resume_incompatibilities names the keys that may not change", "[config]") {
  const ConfigFile file("model: {path: /m}\ndata:\n  sources: [/d/a.jsonl]\noutput: {run_dir: /r}\n");
  const auto saved = file.load();
  CHECK(mt::resume_incompatibilities(saved, saved).empty());
  const auto harmless = file.load({"training.eval_every=10", "training.eval_max_batches=3",
                                   "training.checkpoint_every=100", "training.max_consecutive_nonfinite=9",
                                   "output.run_dir=/elsewhere", "output.keep_last=1", "output.export=false",
                                   "logging.progress=none", "logging.tensorboard=false", "data.eval_sources=[/e]",
                                   "data.cache_dir=/c", "model.device=cpu"});
  CHECK(mt::resume_incompatibilities(saved, harmless).empty());

  const auto breaking = file.load({"data.max_len=1024", "optimizer.lr=1e-4", "data.sources[0].format=alpaca",
                                   "training.micro_batch_size=2", "model.dtype=fp32"});
  const auto lines = mt::resume_incompatibilities(saved, breaking);
  const std::vector<std::string> expected = {
      "model.dtype: bfloat16 -> float32",
      "data.sources[0].format: auto -> alpaca",
      "data.max_len: 2048 -> 1024",
      "optimizer.lr: 2e-05 -> 0.0001",
      "training.micro_batch_size: 1 -> 2",
  };
  CHECK(lines == expected);
  // The source-weighted loss changes what is trained: alpha and the synthetic flag are fixed.
  CHECK(mt::resume_incompatibilities(saved, file.load({"training.synthetic_weight=0.3",
                                                       "data.sources[0].synthetic=true"})) ==
        std::vector<std::string>{"data.sources[0].synthetic: false -> true", "training.synthetic_weight: -1.0 -> 0.3"});
  CHECK(mt::resume_incompatibilities(saved, file.load({"data.sources=[/d/a.jsonl, /d/b.jsonl]"})) ==
        std::vector<std::string>{"data.sources: 1 entry -> 2 entries"});
  CHECK(mt::resume_incompatibilities(saved, file.load({"data.sources[0].path=/d/z.jsonl"})) ==
        std::vector<std::string>{"data.sources[0].path: /d/a.jsonl -> /d/z.jsonl"});
  CHECK(mt::resume_incompatibilities(saved, file.load({"schedule.type=linear", "training.seed=1"})).size() == 2);
}

TEST_CASE("config: a train config holds the train sections only - old run configs with pipeline sections resume",
          "[config]") {
  const ConfigFile file("model: {path: /m}\ndata:\n  sources: [/d/a.jsonl]\noutput: {run_dir: /r}\n"
                        "filter: {rule: forward}\nrounds: {count: 2}\n");
  const mt::TrainConfig train = mt::load_train_config(file.path);
  const std::string yaml = mt::train_config_to_yaml(train);
  std::vector<std::string> sections;
  for (const auto& entry : YAML::Load(yaml)) sections.push_back(entry.first.Scalar());
  const std::vector<std::string> expected = {"model",  "data",   "optimizer", "schedule",   "training",
                                             "alignment", "output", "logging", "distributed"};
  CHECK(sections == expected);
  // What train writes reads back as the same train config, and every train key is in it.
  const mt::TrainConfig back = mt::load_train_config(ConfigFile(yaml).path);
  CHECK(mt::train_config_to_yaml(back) == yaml);
  std::set<std::string> paths;
  collect_paths(YAML::Load(yaml), "", paths);
  for (const auto& key : mt::config_schema()) {
    const bool train_section =
        std::find(expected.begin(), expected.end(), key.path.substr(0, key.path.find('.'))) != expected.end();
    INFO(key.path);
    CHECK(key.read_by_train == train_section);
    if (key.path.find("[]") == std::string::npos) CHECK(paths.count(key.path) == (train_section ? 1u : 0u));
  }
  // A run directory written before the split holds the whole config: it still resumes, whatever the
  // pipeline sections say; the pipeline itself still compares them.
  const ConfigFile old_run(mt::pipeline_config_to_yaml(file.load()));
  const mt::TrainConfig saved = mt::load_train_config(old_run.path);
  CHECK(mt::resume_incompatibilities(saved, mt::load_train_config(file.path, {"filter.rule=reverse"})).empty());
  CHECK(mt::resume_incompatibilities(old_run.load(), file.load({"filter.rule=reverse"})) ==
        std::vector<std::string>{"filter.rule: forward -> reverse"});
}

TEST_CASE("config: hostile files give an error, never a crash", "[config]") {
  // Deep nesting: yaml-cpp's recursion guard, reported with the place.
  require_text_error(std::string(10000, '['), {"run.yaml:1:", "invalid YAML: nested too deeply"});
  require_text_error("model: " + std::string(5000, '{'), {"run.yaml:1:", "invalid YAML"});
  std::string dashes;
  for (int i = 0; i < 5000; ++i) dashes += "- ";
  require_text_error(dashes + "x\n", {"run.yaml:1:", "invalid YAML: nested too deeply"});
  // Nesting that stays within the guard but where the schema has no room for it.
  require_text_error("training:\n  seed: " + std::string(100, '[') + std::string(100, ']') + "\n",
                     {"run.yaml:2:9: training.seed: expected an integer, got a list"});

  // Binary junk: refused before yaml-cpp guesses an encoding from it.
  std::string junk, high_junk;
  for (int i = 0; i < 4096; ++i) {
    junk += static_cast<char>((i * 7919 + 13) % 256);
    high_junk += static_cast<char>(0x80 + (i * 7919 + 13) % 128);
  }
  require_text_error(junk, {"run.yaml:", "not a text file (NUL byte)"});
  require_text_error(high_junk, {"run.yaml:1:1: not UTF-8 text"});
  require_text_error("training:\n  seed: 1\n  x: \xff\xfe\n", {"run.yaml:3:6: not UTF-8 text"});
  // A UTF-16 byte-order mark and text: binary to us, not a second encoding to guess.
  require_text_error(std::string("\xff\xfe" "m\x00:\x00", 6), {"run.yaml:1:4: not a text file (NUL byte)"});

  // Huge scalars: quoted in errors only in part; accepted where a string may be long.
  const std::string huge(1 << 20, '7');
  std::string message;
  try {
    load_text("training:\n  micro_batch_size: x" + huge + "\n");
  } catch (const mt::Error& e) {
    message = e.what();
  }
  CHECK_THAT(message, MT_HAS("run.yaml:2:21: training.micro_batch_size: expected an integer, got 'x777"));
  CHECK_THAT(message, MT_HAS("(1048577 bytes)"));
  CHECK(message.size() < 300);
  require_text_error("training:\n  seed: " + huge + "\n", {"training.seed: integer out of range"});
  // YAML caps implicit keys at 1024 characters; yaml-cpp reports a longer one as a bad map value.
  require_text_error("training:\n  " + huge + ": 1\n", {"run.yaml:2:", "invalid YAML"});
  require_text_error("training:\n  " + std::string(1000, 'k') + ": 1\n",
                     {"unknown key 'training.kkkk", "... (1009 bytes)'"});
  const auto c = load_text("data:\n  sources: [{path: a, system_prompt: \"" + huge + "\"}]\n");
  CHECK(c.data.sources[0].system_prompt == huge);

  // A file far larger than any config is refused before it is parsed.
  std::string big = "# padding\n";
  while (big.size() <= (size_t{16} << 20)) big += std::string(1023, '#') + "\n";
  require_text_error(big, {"run.yaml: cannot read config: larger than 16 MiB"});
  // Anchors and aliases resolve to the value they name.
  CHECK(load_text("training:\n  seed: &s 5\n  eval_every: *s\n").training.eval_every == 5);
}
