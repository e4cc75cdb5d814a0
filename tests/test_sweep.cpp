// Ablation sweeps (trainer/sweep/sweep.h, `maintune sweep`) and the pipeline's stage keys: parse errors
// name the sweep file and the key; grid and list x grid expansion order; a stage key changes only
// when a config part its stage (or an earlier one) reads changes; end to end on the small demo, a
// final.alpha sweep copies stages 0-4 into its second run, skips finished runs on a rerun, resumes
// after a kill with the uninterrupted sweep's results, and --jobs 2 never computes a shared stage twice.
#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "tests/run_fixtures.h"
#include "tests/test_util.h"
#include "trainer/config/config.h"
#include "trainer/method/pipeline.h"
#include "trainer/method/mutual_filter.h"
#include "trainer/sweep/sweep.h"
#include "trainer/sweep/sweep_report.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using mt::test::demo_config;

// A sweep file in a fresh folder; `body` follows a `base:` line naming the demo config.
fs::path sweep_file(const std::string& tag, const std::string& body) {
  const fs::path file = mt::test::temp_dir(tag) / "sweep.yaml";
  mt::test::write_file(file, "base: " + demo_config().string() + "\n" + body);
  return file;
}

std::map<std::string, std::string> keys_of(const mt::PipelineConfig& c) {
  std::map<std::string, std::string> out;
  for (const auto& [stage, key] : mt::pipeline_stage_keys(c)) out[stage] = key;
  return out;
}

// The stages whose keys differ between the demo config and the demo config with `overrides`.
std::vector<std::string> changed_stages(const std::vector<std::string>& overrides,
                                        const std::vector<std::string>& base_overrides = {}) {
  auto with = base_overrides;
  with.insert(with.end(), overrides.begin(), overrides.end());
  const auto a = mt::pipeline_stage_keys(mt::load_pipeline_config(demo_config(), base_overrides));
  const auto b = mt::pipeline_stage_keys(mt::load_pipeline_config(demo_config(), with));
  REQUIRE(a.size() == b.size());
  std::vector<std::string> changed;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].first == b[i].first);
    if (a[i].second != b[i].second) changed.push_back(a[i].first);
  }
  return changed;
}

// The demo, small enough for a run of about 20 s on 2 cores, as a sweep's `set:`.
const char* kSmallDemo =
    "set:\n"
    "  demo.seed_pairs: 48\n"
    "  demo.unlabeled: 64\n"
    "  demo.eval_pairs: 16\n"
    "  pipeline.seed_steps: 12\n"
    "  rounds.steps: 4\n"
    "  final.steps: 8\n"
    "  final.models: [mutual]\n"
    "  training.checkpoint_every: 4\n"
    "  training.micro_batch_size: 8\n"
    "  pipeline.chunk_size: 16\n"
    "  pipeline.batch_size: 16\n"
    "  rounds.max_new_tokens: 12\n"
    "  synthesis.max_new_tokens: 12\n"
    "  pipeline.eval_max_new_tokens: 10\n"
    "  logging.progress: none\n";

std::string sweep_cmd(const fs::path& file, const fs::path& dir, const std::string& extra = "") {
  return "sweep --config " + mt::test::quoted(file) + " --run-dir " + mt::test::quoted(dir) + extra;
}

// `maintune ARGS` with one intra-op thread (children of --jobs inherit it): the same results, and on
// a 2-core machine shared with other test processes about 10x faster than spinning thread pools.
mt::test::CommandResult run_sweep(const std::string& args, const std::string& env = "") {
  return mt::test::run_maintune(args, "OMP_NUM_THREADS=1 " + env);
}

// summary.csv without its seconds column (the last), which differs between runs.
std::string csv_without_seconds(const fs::path& file) {
  std::string out, line;
  std::istringstream in(mt::test::read_file(file));
  while (std::getline(in, line)) out += line.substr(0, line.rfind(',')) + "\n";
  return out;
}

std::vector<std::string> csv_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false;
  for (const char c : line) {
    if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) {
      cells.push_back(cell);
      cell.clear();
    } else {
      cell += c;
    }
  }
  cells.push_back(cell);
  return cells;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("sweep: parse errors name the sweep file and the key", "[sweep]") {
  auto load = [](const fs::path& f) { return mt::load_sweep_spec(f); };
  SECTION("invalid YAML") {
    const fs::path f = sweep_file("sweep_bad", "grid: [final.alpha\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":", "invalid YAML"});
  }
  SECTION("no base config") {
    const fs::path f = mt::test::temp_dir("sweep_bad") / "sweep.yaml";
    mt::test::write_file(f, "grid:\n  final.alpha: [0, 1]\n");
    mt::test::require_error([&] { load(f); }, {f.string(), "base: missing"});
    mt::test::write_file(f, "base: nowhere.yaml\ngrid:\n  final.alpha: [0, 1]\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":1:7", "base:", "nowhere.yaml", "is not a file"});
  }
  SECTION("an empty list of values") {
    const fs::path f = sweep_file("sweep_bad", "grid:\n  final.alpha: []\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":3:16", "grid: final.alpha: an empty list"});
  }
  SECTION("unknown keys, with the nearest one") {
    fs::path f = sweep_file("sweep_bad", "grid:\n  final.alph: [0, 1]\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":3:3", "grid: 'final.alph' is not a config key",
                                               "did you mean 'final.alpha'?"});
    f = sweep_file("sweep_bad", "list:\n  - {final.alpha: 0}\n  - {final.stepz: 3}\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":4:6", "list[1]: 'final.stepz' is not a config key"});
    f = sweep_file("sweep_bad", "set:\n  data.sources[0].formatt: alpaca\ngrid:\n  final.alpha: [0]\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":3:3", "set:", "a source has no key 'formatt'"});
    f = sweep_file("sweep_bad", "grdi:\n  final.alpha: [0, 1]\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":2:1", "unknown key 'grdi'", "did you mean 'grid'?"});
    f = sweep_file("sweep_bad", "grid:\n  output.run_dir: [a, b]\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":3:3", "output.run_dir", "set by the sweep"});
  }
  SECTION("a key both fixed and swept, or given twice") {
    fs::path f = sweep_file("sweep_bad", "set:\n  final.alpha: 0\ngrid:\n  final.alpha: [0, 1]\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":3:16", "set: final.alpha: also swept"});
    f = sweep_file("sweep_bad", "list:\n  - {final.alpha: 0}\ngrid:\n  final.alpha: [0, 1]\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":5:3", "grid: final.alpha: also set by a list entry"});
    f = sweep_file("sweep_bad", "grid:\n  final.alpha: [0]\n  final.alpha: [1]\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":4:3", "'final.alpha' is given twice"});
  }
  SECTION("nothing to sweep, a grid value that is not a list, a bad metric") {
    fs::path f = sweep_file("sweep_bad", "set:\n  final.alpha: 0\n");
    mt::test::require_error([&] { load(f); }, {f.string(), "nothing to sweep"});
    f = sweep_file("sweep_bad", "grid:\n  final.alpha: 0.5\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":3:16", "grid: final.alpha: expected a list of values"});
    f = sweep_file("sweep_bad", "grid:\n  final.alpha: [0]\nmetrics: [acuracy]\n");
    mt::test::require_error([&] { load(f); }, {f.string() + ":4:11", "metrics: 'acuracy' is not a metric"});
  }
  SECTION("a value the config refuses, before anything runs") {
    const fs::path f = sweep_file("sweep_bad", "grid:\n  final.steps: [10, -3]\n");
    const fs::path dir = f.parent_path() / "out";
    const auto spec = load(f);
    mt::test::require_error([&] { mt::sweep_configs(spec, dir); },
                            {f.string() + ":3:21", "final.steps", "setting 2", "002-final.steps=-3"});
    const auto r = mt::test::run_maintune(sweep_cmd(f, dir));
    REQUIRE(r.exit_code == 1);
    REQUIRE(r.output.find(f.string() + ":3:21") != std::string::npos);
    REQUIRE(!fs::exists(dir / "runs"));
  }
  SECTION("settings the pipeline refuses as a whole") {
    const fs::path f = sweep_file("sweep_bad", "set:\n  filter.compare: [none]\ngrid:\n  final.models: [[none], [forward]]\n");
    mt::test::require_error([&] { mt::sweep_configs(load(f), f.parent_path() / "out"); },
                            {f.string(), "setting 2", "final.models lists 'forward'"});
  }
}

TEST_CASE("sweep: every filter rule's final model and precision can be named as a metric", "[sweep]") {
  // One list of rules (mutual_filter's): a sweep once kept its own copy, which lacked `alignment`.
  for (const auto& rule : mt::filter_rule_names()) {
    const fs::path f = sweep_file("sweep_rule_metrics_" + rule,
                                  "metrics: [final." + rule + ".accuracy, final." + rule + ".heldout_nll, filter." +
                                      rule + ".precision]\ngrid:\n  final.alpha: [0, 0.5]\n");
    INFO(rule);
    const mt::SweepSpec spec = mt::load_sweep_spec(f);
    REQUIRE(spec.metrics.size() == 3);
    REQUIRE(spec.metrics[0] == "final." + rule + ".accuracy");
  }
  REQUIRE(std::find(mt::filter_rule_names().begin(), mt::filter_rule_names().end(), "alignment") !=
          mt::filter_rule_names().end());
}

TEST_CASE("sweep: grid order is the file's with the last key fastest - each list entry crossed with the grid",
          "[sweep]") {
  const fs::path f = sweep_file("sweep_order",
                                "name: order\n"
                                "set:\n  data.cache_dir: my_cache\n"
                                "list:\n  - {filter.rule: mutual, 'final.models': [mutual]}\n"
                                "  - {filter.rule: forward, final.models: [none, forward]}\n"
                                "grid:\n  final.alpha: [0, 0.5, 1]\n  final.steps: [10, 20]\n");
  const mt::SweepSpec spec = mt::load_sweep_spec(f);
  REQUIRE(spec.name == "order");
  REQUIRE(spec.swept_keys == std::vector<std::string>{"filter.rule", "final.models", "final.alpha", "final.steps"});
  REQUIRE(spec.settings.size() == 12);
  std::vector<std::string> order;
  for (const auto& s : spec.settings) {
    std::string line;
    for (const auto& v : s.values) line += v.key + "=" + v.value + " ";
    order.push_back(line);
  }
  REQUIRE(order[0] == "filter.rule=mutual final.models=[mutual] final.alpha=0 final.steps=10 ");
  REQUIRE(order[1] == "filter.rule=mutual final.models=[mutual] final.alpha=0 final.steps=20 ");
  REQUIRE(order[2] == "filter.rule=mutual final.models=[mutual] final.alpha=0.5 final.steps=10 ");
  REQUIRE(order[5] == "filter.rule=mutual final.models=[mutual] final.alpha=1 final.steps=20 ");
  REQUIRE(order[6] == "filter.rule=forward final.models=[none, forward] final.alpha=0 final.steps=10 ");
  REQUIRE(order[11] == "filter.rule=forward final.models=[none, forward] final.alpha=1 final.steps=20 ");
  // Run folders: index, then the values with brackets left out and other characters as '-'.
  REQUIRE(spec.settings[0].run_name == "001-filter.rule=mutual-final.models=mutual-final.alpha=0-final.steps=10");
  REQUIRE(spec.settings[11].run_name == "012-filter.rule=forward-final.models=none-forward-final.alpha=1-final.steps=20");
  REQUIRE(mt::sweep_overrides(spec, spec.settings[1]).front() == "data.cache_dir=my_cache");
  // Every setting resolved: its own run folder; a relative path in the sweep file is relative to it.
  const fs::path dir = f.parent_path() / "out";
  const auto configs = mt::sweep_configs(spec, dir);
  REQUIRE(configs.size() == 12);
  REQUIRE(configs[7].final_tuning.steps == 20);
  REQUIRE(configs[7].final_tuning.alpha == 0);
  REQUIRE(configs[7].final_tuning.models == std::vector<std::string>{"none", "forward"});
  REQUIRE(fs::path(configs[7].output.run_dir) == fs::absolute(dir) / "runs" / spec.settings[7].run_name);
  REQUIRE(fs::path(configs[7].data.cache_dir) == f.parent_path() / "my_cache");
  // The metric columns: every final model's and every compared rule's.
  const auto columns = mt::sweep_metric_columns(configs);
  REQUIRE(columns.front() == "final.mutual.heldout_nll");
  REQUIRE(std::find(columns.begin(), columns.end(), "final.none.accuracy") != columns.end());
  REQUIRE(mt::metric_columns_of("accuracy", columns) ==
          std::vector<std::string>{"final.mutual.accuracy", "final.none.accuracy", "final.forward.accuracy"});

  // Only a list; no data.cache_dir anywhere: the runs share DIR/cache.
  const fs::path g = sweep_file("sweep_order", "list:\n  - {final.alpha: 0}\n  - {final.steps: 5, final.alpha: 1}\n");
  const auto list_only = mt::load_sweep_spec(g);
  REQUIRE(list_only.settings.size() == 2);
  REQUIRE(list_only.swept_keys == std::vector<std::string>{"final.alpha", "final.steps"});
  REQUIRE(list_only.settings[1].run_name == "002-final.steps=5-final.alpha=1");
  const auto list_configs = mt::sweep_configs(list_only, dir);
  REQUIRE(fs::path(list_configs[0].data.cache_dir) == fs::absolute(dir) / "cache");
  REQUIRE(list_configs[0].final_tuning.steps == 300);  // the base's
}

TEST_CASE("sweep: the summary of a partial sweep - every swept value, unmeasured metrics empty and n/a, never 0",
          "[sweep]") {
  const fs::path f = sweep_file("sweep_summary",
                                "list:\n  - {filter.rule: mutual, final.models: [mutual]}\n"
                                "  - {filter.rule: forward, final.models: [forward]}\n"
                                "grid:\n  final.alpha: [0, 0.5]\n");
  const fs::path dir = f.parent_path() / "out";
  const auto spec = mt::load_sweep_spec(f);
  const auto configs = mt::sweep_configs(spec, dir);
  // Run 1 finished without a checker: its accuracy and precision are null; runs 2-4 not started.
  const fs::path run1 = mt::sweep_run_dir(dir, spec.settings[0]);
  fs::create_directories(run1 / "stage5_final");
  fs::create_directories(run1 / "report");
  mt::test::write_file(run1 / "stage5_final" / "stage.json",
                       R"({"complete": true, "models": {"mutual": {"heldout_nll": 1.5, "accuracy": null}}})");
  mt::test::write_file(run1 / "report" / "summary.json",
                       R"({"budget": 3, "filter": {"mutual": {"kept": 3, "precision": null}}})");
  json record{{"runs", json::array()}};
  for (size_t i = 0; i < spec.settings.size(); ++i)
    record["runs"].push_back({{"status", i == 0 ? "complete" : "pending"}, {"seconds", i == 0 ? 12.5 : 0.0},
                              {"reused", json::array()}});
  mt::write_sweep_summary(dir, spec, configs, record);
  const auto csv = lines_of(mt::test::read_file(dir / "summary.csv"));
  REQUIRE(csv.size() == 5);
  const auto header = csv_cells(csv[0]);
  auto cell = [&](size_t row, const std::string& col) {
    const auto it = std::find(header.begin(), header.end(), col);
    REQUIRE(it != header.end());
    return csv_cells(csv[row])[static_cast<size_t>(it - header.begin())];
  };
  REQUIRE(cell(1, "filter.rule") == "mutual");
  REQUIRE(cell(1, "final.models") == "[mutual]");
  REQUIRE(cell(1, "final.alpha") == "0.0");
  REQUIRE(cell(4, "filter.rule") == "forward");
  REQUIRE(cell(4, "final.models") == "[forward]");
  REQUIRE(cell(4, "final.alpha") == "0.5");
  REQUIRE(cell(1, "final.mutual.heldout_nll") == "1.5");
  REQUIRE(cell(1, "final.mutual.accuracy").empty());
  REQUIRE(cell(1, "filter.mutual.precision").empty());
  REQUIRE(cell(1, "kept") == "3");
  REQUIRE(cell(1, "seconds") == "12.5");
  REQUIRE(cell(1, "final.forward.heldout_nll").empty());
  REQUIRE(cell(2, "status") == "pending");
  REQUIRE(cell(2, "final.mutual.heldout_nll").empty());
  REQUIRE(cell(2, "seconds").empty());
  const std::string md = mt::test::read_file(dir / "summary.md");
  REQUIRE(md.find("| 1 | 001-filter.rule=mutual-final.models=mutual-final.alpha=0 | mutual | [mutual] | 0.0 | complete | 1.5000 | n/a |") !=
          std::string::npos);
  // Plots against every swept key; rule names are placed at 0, 1 and named on the axis.
  const std::string svg = mt::test::read_file(dir / "plots" / "heldout_nll-vs-filter.rule.svg");
  REQUIRE(svg.find("0 = mutual, 1 = forward") != std::string::npos);
  REQUIRE(fs::exists(dir / "plots" / "accuracy-vs-final.alpha.svg"));
}

TEST_CASE("stage keys: a change reaches the stage that reads it and the later ones only", "[sweep]") {
  const auto base = mt::pipeline_stage_keys(mt::load_pipeline_config(demo_config()));
  std::vector<std::string> names;
  for (const auto& [stage, key] : base) names.push_back(stage);
  REQUIRE(names == std::vector<std::string>{"stage0_demo", "stage1_seed_models", "stage2_round_1", "stage3_synthesis",
                                            "stage4_filter", "stage5_final"});
  using V = std::vector<std::string>;
  REQUIRE(changed_stages({"final.steps=7"}) == V{"stage5_final"});
  REQUIRE(changed_stages({"final.alpha=0"}) == V{"stage5_final"});
  REQUIRE(changed_stages({"pipeline.eval_max_new_tokens=5"}) == V{"stage5_final"});
  REQUIRE(changed_stages({"filter.quantile=0.3"}) == V{"stage4_filter", "stage5_final"});
  REQUIRE(changed_stages({"synthesis.temperature=0.9"}) == V{"stage3_synthesis", "stage4_filter", "stage5_final"});
  REQUIRE(changed_stages({"rounds.steps=3"}) == V{"stage2_round_1", "stage3_synthesis", "stage4_filter", "stage5_final"});
  REQUIRE(changed_stages({"optimizer.lr=0.01"}) ==
          V{"stage1_seed_models", "stage2_round_1", "stage3_synthesis", "stage4_filter", "stage5_final"});
  REQUIRE(changed_stages({"demo.seed=3"}) == V{"stage0_demo", "stage1_seed_models", "stage2_round_1", "stage3_synthesis",
                                               "stage4_filter", "stage5_final"});
  // The demo tokenizer learns the prompt texts: with the demo on, a final tag changes stage 0 ...
  REQUIRE(changed_stages({"final.seed_tag=Be brief."}).front() == "stage0_demo");
  // ... and without it, only the final stage.
  REQUIRE(changed_stages({"final.seed_tag=Be brief."}, {"demo.enabled=false"}) == V{"stage5_final"});
  REQUIRE(changed_stages({"demo.seed=3"}, {"demo.enabled=false"}).empty());
  // Where the run is written and how it logs change nothing.
  for (const std::string o : {"output.run_dir=/elsewhere", "logging.progress=bar", "logging.tensorboard=true",
                              "data.cache_dir=/tmp/c", "training.checkpoint_every=3", "output.keep_last=7"}) {
    INFO(o);
    REQUIRE(changed_stages({o}).empty());
  }
  // K rounds: one key each, distinct; no demo: no stage 0.
  const auto k2 = mt::pipeline_stage_keys(mt::load_pipeline_config(demo_config(), {"rounds.count=2", "demo.enabled=false"}));
  REQUIRE(k2.size() == 6);
  REQUIRE(k2[0].first == "stage1_seed_models");
  REQUIRE(k2[1].first == "stage2_round_1");
  REQUIRE(k2[2].first == "stage2_round_2");
  REQUIRE(k2[1].second != k2[2].second);
  // A keys' run directory does not matter: the same config elsewhere has the same keys.
  REQUIRE(keys_of(mt::load_pipeline_config(demo_config(), {"output.run_dir=/a"})) ==
          keys_of(mt::load_pipeline_config(demo_config(), {"output.run_dir=/b"})));
}

TEST_CASE("stage keys: a section this build does not know counts from stage 1 - alignment as its stages list says",
          "[sweep]") {
  const std::string yaml = mt::pipeline_config_to_yaml(mt::load_pipeline_config(demo_config()));
  auto changed = [&](const std::string& a, const std::string& b) {
    const auto x = mt::pipeline_stage_keys_of_yaml(yaml + a), y = mt::pipeline_stage_keys_of_yaml(yaml + b);
    REQUIRE(x.size() == y.size());
    std::vector<std::string> out;
    for (size_t i = 0; i < x.size(); ++i)
      if (x[i].second != y[i].second) out.push_back(x[i].first);
    return out;
  };
  using V = std::vector<std::string>;
  const V from_stage1 = {"stage1_seed_models", "stage2_round_1", "stage3_synthesis", "stage4_filter", "stage5_final"};
  REQUIRE(changed("novel:\n  knob: 1\n", "novel:\n  knob: 2\n") == from_stage1);
  REQUIRE(changed("alignment:\n  weight: 0.1\n  stages: [final]\n", "alignment:\n  weight: 0.2\n  stages: [final]\n") ==
          V{"stage5_final"});
  REQUIRE(changed("alignment:\n  weight: 0.1\n  stages: [rounds]\n", "alignment:\n  weight: 0.2\n  stages: [rounds]\n") ==
          V{"stage2_round_1", "stage3_synthesis", "stage4_filter", "stage5_final"});
  REQUIRE(changed("alignment:\n  weight: 0.1\n  stages: [seed, final]\n",
                  "alignment:\n  weight: 0.2\n  stages: [seed, final]\n") == from_stage1);
  // Not in the key of a stage that does not use it: an alignment section off for every stage is no change.
  REQUIRE(changed("", "alignment:\n  weight: 0.2\n  stages: []\n").empty());
}

TEST_CASE("sweep: a final.alpha sweep copies stages 0-4 into its second run, skips finished runs and resumes after "
          "a kill",
          "[sweep][pipeline]") {
  const fs::path root = mt::test::temp_dir("sweep_e2e");
  const fs::path file = root / "alpha.yaml";
  mt::test::write_file(file, "base: " + demo_config().string() + "\n" + kSmallDemo + "grid:\n  final.alpha: [0, 0.5]\n");
  const fs::path dir = root / "straight";
  auto r = run_sweep(sweep_cmd(file, dir));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path run1 = dir / "runs" / "001-final.alpha=0", run2 = dir / "runs" / "002-final.alpha=0.5";
  // sweep.json: both complete; run 2 copied stages 0-4 from run 1 and computed stage 5.
  json record = mt::test::read_json(dir / "sweep.json");
  REQUIRE(record["runs"].size() == 2);
  REQUIRE(record["runs"][0]["status"] == "complete");
  REQUIRE(record["runs"][0]["reused"].empty());
  REQUIRE(record["runs"][1]["status"] == "complete");
  const json& reused = record["runs"][1]["reused"];
  REQUIRE(reused.size() == 5);
  const std::vector<std::string> shared = {"stage0_demo", "stage1_seed_models", "stage2_round_1", "stage3_synthesis",
                                           "stage4_filter"};
  for (size_t s = 0; s < shared.size(); ++s) {
    REQUIRE(reused[s]["stage"] == shared[s]);
    REQUIRE(reused[s]["from"] == "001-final.alpha=0");
    REQUIRE(record["runs"][0]["stage_keys"][shared[s]] == record["runs"][1]["stage_keys"][shared[s]]);
  }
  REQUIRE(record["runs"][0]["stage_keys"]["stage5_final"] != record["runs"][1]["stage_keys"]["stage5_final"]);
  REQUIRE(mt::test::read_file(run2 / "stage4_filter" / "scored.jsonl") == mt::test::read_file(run1 / "stage4_filter" / "scored.jsonl"));
  REQUIRE(r.output.find("002-final.alpha=0.5: starting; copied stage0_demo..stage4_filter from 001-final.alpha=0") != std::string::npos);
  // Stage 5 was trained with each run's own alpha.
  const json final1 = mt::test::read_json(run1 / "stage5_final" / "stage.json");
  const json final2 = mt::test::read_json(run2 / "stage5_final" / "stage.json");
  REQUIRE(final1["models"]["mutual"]["heldout_nll"].is_number());
  REQUIRE(final1["models"]["mutual"]["heldout_nll"] != final2["models"]["mutual"]["heldout_nll"]);
  REQUIRE(mt::test::read_file(run2 / "stage5_final" / "mutual" / "config.yaml").find("synthetic_weight: 0.5") != std::string::npos);
  // summary.csv: a header and one row per setting with the swept value, status and metrics.
  const auto csv = lines_of(mt::test::read_file(dir / "summary.csv"));
  REQUIRE(csv.size() == 3);
  const auto header = csv_cells(csv[0]);
  for (const char* col : {"index", "run", "final.alpha", "status", "final.mutual.heldout_nll", "final.mutual.accuracy",
                          "filter.mutual.precision", "filter.none.precision", "kept", "reused", "seconds"}) {
    INFO(col);
    REQUIRE(std::find(header.begin(), header.end(), col) != header.end());
  }
  auto cell = [&](size_t row, const std::string& col) {
    const auto cells = csv_cells(csv[row]);
    REQUIRE(cells.size() == header.size());
    return cells[static_cast<size_t>(std::find(header.begin(), header.end(), col) - header.begin())];
  };
  REQUIRE(cell(1, "final.alpha") == "0.0");
  REQUIRE(cell(2, "final.alpha") == "0.5");
  REQUIRE(cell(2, "status") == "complete");
  REQUIRE(std::stod(cell(2, "final.mutual.heldout_nll")) == Approx(final2["models"]["mutual"]["heldout_nll"].get<double>()));
  REQUIRE(cell(2, "reused") == "stage0_demo..stage4_filter from 001-final.alpha=0");
  REQUIRE(cell(1, "reused").empty());
  const std::string md = mt::test::read_file(dir / "summary.md");
  REQUIRE(md.find("| 002-final.alpha=0.5 | 0.5 | complete |") != std::string::npos);
  REQUIRE(md.find("plots/accuracy-vs-final.alpha.svg") != std::string::npos);
  for (const char* svg : {"accuracy-vs-final.alpha.svg", "heldout_nll-vs-final.alpha.svg", "precision-vs-final.alpha.svg"}) {
    INFO(svg);
    const std::string text = mt::test::read_file(dir / "plots" / svg);
    REQUIRE(text.find("<svg") != std::string::npos);
    REQUIRE(text.find("</svg>") != std::string::npos);
  }

  // The same command again: both runs skipped, nothing trained.
  const auto weights1 = fs::last_write_time(run1 / "stage5_final" / "mutual" / "final" / "model.safetensors");
  const auto weights2 = fs::last_write_time(run2 / "stage5_final" / "mutual" / "final" / "model.safetensors");
  r = run_sweep(sweep_cmd(file, dir));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.output.find("001-final.alpha=0: complete, skipped") != std::string::npos);
  REQUIRE(r.output.find("002-final.alpha=0.5: complete, skipped") != std::string::npos);
  REQUIRE(r.output.find("training") == std::string::npos);
  record = mt::test::read_json(dir / "sweep.json");
  REQUIRE(record["runs"][0]["action"] == "skipped");
  REQUIRE(record["runs"][1]["action"] == "skipped");
  REQUIRE(fs::last_write_time(run1 / "stage5_final" / "mutual" / "final" / "model.safetensors") == weights1);
  REQUIRE(fs::last_write_time(run2 / "stage5_final" / "mutual" / "final" / "model.safetensors") == weights2);
  const auto dry = mt::test::run_maintune(sweep_cmd(file, dir, " --dry-run"));
  REQUIRE(dry.exit_code == 0);
  REQUIRE(dry.output.find("complete (skipped)") != std::string::npos);

  // Killed in run 2's final training, then the same command: the uninterrupted sweep's table.
  const fs::path killed = root / "killed";
  r = run_sweep(sweep_cmd(file, killed), "MAINTUNE_FAULT_KILL_AT=stage5.mutual.trained:2");
  INFO(r.output);
  REQUIRE(r.exit_code == 137);
  record = mt::test::read_json(killed / "sweep.json");
  REQUIRE(record["runs"][0]["status"] == "complete");
  REQUIRE(record["runs"][1]["status"] == "running");
  // The partial table: run 2's final metrics are not there yet, so empty, not 0.
  const auto partial = lines_of(mt::test::read_file(killed / "summary.csv"));
  REQUIRE(partial.size() == 3);
  REQUIRE(csv_cells(partial[2])[static_cast<size_t>(std::find(header.begin(), header.end(), "final.mutual.heldout_nll") -
                                                     header.begin())]
              .empty());
  r = run_sweep(sweep_cmd(file, killed));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.output.find("001-final.alpha=0: complete, skipped") != std::string::npos);
  REQUIRE(r.output.find("002-final.alpha=0.5: resuming") != std::string::npos);
  REQUIRE(csv_without_seconds(killed / "summary.csv") == csv_without_seconds(dir / "summary.csv"));
  const json resumed = mt::test::read_json(killed / "runs" / "002-final.alpha=0.5" / "stage5_final" / "stage.json");
  REQUIRE(resumed["models"]["mutual"]["heldout_nll"] == final2["models"]["mutual"]["heldout_nll"]);
  REQUIRE(resumed["models"]["mutual"]["eval"]["correct"] == final2["models"]["mutual"]["eval"]["correct"]);
  const fs::path predictions = fs::path("stage5_final") / "mutual" / "eval_generation" / "predictions.jsonl";
  REQUIRE(mt::test::read_file(killed / "runs" / "002-final.alpha=0.5" / predictions) == mt::test::read_file(run2 / predictions));
}

TEST_CASE("sweep: --jobs 2 runs settings side by side but never computes a shared stage twice", "[sweep][pipeline]") {
  const fs::path root = mt::test::temp_dir("sweep_jobs");
  const fs::path file = root / "alpha.yaml";
  mt::test::write_file(file, "base: " + demo_config().string() + "\n" + kSmallDemo + "grid:\n  final.alpha: [0, 0.5]\n");
  const fs::path dir = root / "out";
  const auto r = run_sweep(sweep_cmd(file, dir, " --jobs 2"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const json record = mt::test::read_json(dir / "sweep.json");
  REQUIRE(record["runs"][0]["status"] == "complete");
  REQUIRE(record["runs"][1]["status"] == "complete");
  // Run 2 waited for run 1's stages 0-4 and copied them rather than computing them alongside.
  REQUIRE(record["runs"][1]["reused"].size() == 5);
  REQUIRE(record["runs"][1]["reused"][4]["stage"] == "stage4_filter");
  REQUIRE(mt::test::read_file(dir / "runs" / "002-final.alpha=0.5" / "pipeline.log").find("stage1.forward: training") ==
          std::string::npos);
  REQUIRE(mt::test::read_file(dir / "runs" / "001-final.alpha=0" / "pipeline.log").find("stage1.forward: training") !=
          std::string::npos);
  REQUIRE(mt::test::read_file(dir / "runs" / "002-final.alpha=0.5" / "stage4_filter" / "scored.jsonl") ==
          mt::test::read_file(dir / "runs" / "001-final.alpha=0" / "stage4_filter" / "scored.jsonl"));
  REQUIRE(lines_of(mt::test::read_file(dir / "summary.csv")).size() == 3);
}

TEST_CASE("sweep: --dry-run lists the settings, their folders and the stages they would copy", "[sweep]") {
  const fs::path dir = mt::test::temp_dir("sweep_dry") / "out";
  const fs::path file = fs::path(MT_SOURCE_DIR) / "configs" / "sweeps" / "demo-final-alpha.yaml";
  const auto r = mt::test::run_maintune(sweep_cmd(file, dir, " --dry-run"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.output.find("[6/6] 006-filter.rule=forward-final.models=forward-final.alpha=1.0") != std::string::npos);
  REQUIRE(r.output.find("reuses:     stage0_demo..stage4_filter from 001-filter.rule=mutual-final.models=mutual-final.alpha=0.0") !=
          std::string::npos);
  REQUIRE(r.output.find("reuses:     stage0_demo..stage3_synthesis from 001-") != std::string::npos);
  REQUIRE(r.output.find("computes:   stage4_filter, stage5_final") != std::string::npos);
  REQUIRE(!fs::exists(dir));
  // Misuse: no --run-dir.
  const auto bad = mt::test::run_maintune("sweep --config " + mt::test::quoted(file));
  REQUIRE(bad.exit_code == 2);
  REQUIRE(bad.output.find("--run-dir") != std::string::npos);
}

TEST_CASE("sweep: the alignment-weight recipes resolve - every setting after the first reuses all but stage 5",
          "[sweep][alignment]") {
  const fs::path dir = mt::test::temp_dir("sweep_recipes") / "out";
  const fs::path sweeps = fs::path(MT_SOURCE_DIR) / "configs" / "sweeps";
  const auto demo = mt::test::run_maintune(sweep_cmd(sweeps / "demo-alignment-weights.yaml", dir, " --dry-run"));
  INFO(demo.output);
  REQUIRE(demo.exit_code == 0);
  CHECK(demo.output.find("[1/9] 001-alignment.lambda_align=0-alignment.lambda_cons=0\n") != std::string::npos);
  CHECK(demo.output.find("[9/9] 009-alignment.lambda_align=0.5-alignment.lambda_cons=0.5") != std::string::npos);
  size_t reuse = 0;
  for (size_t at = 0; (at = demo.output.find("reuses:     stage0_demo..stage4_filter from 001-", at)) != std::string::npos; ++at)
    ++reuse;
  CHECK(reuse == 8);
  const auto real = mt::test::run_maintune(sweep_cmd(sweeps / "llama3-8b-alignment-weights.yaml", dir, " --dry-run"));
  INFO(real.output);
  REQUIRE(real.exit_code == 0);
  CHECK(real.output.find("[6/6]") != std::string::npos);
  CHECK(real.output.find("reuses:     stage1_seed_models..stage4_filter from 001-") != std::string::npos);
  CHECK(!fs::exists(dir));
}
TEST_CASE("stage keys: every schema key counts from the stage its first-reader column names, never before",
          "[sweep]") {
  // The invariant behind stage reuse: changing a key changes the key of the stage that first reads it
  // and, by the chain, of every later stage, and of no earlier stage. Checked for every key of the
  // schema, with the demo on and off, by editing the resolved YAML (any value is a change here).
  for (const bool demo : {true, false}) {
    const std::string yaml = mt::pipeline_config_to_yaml(
        mt::load_pipeline_config(demo_config(), {demo ? "demo.enabled=true" : "demo.enabled=false"}));
    const YAML::Node tree = YAML::Load(yaml);
    const auto base = mt::pipeline_stage_keys_of_yaml(yaml);
    // Every key the YAML holds is in the schema: none falls to the unknown-key rule by accident.
    for (const auto& section : tree)
      for (const auto& key : section.second) {
        const std::string path = section.first.Scalar() + "." + key.first.Scalar();
        INFO(path);
        CHECK(std::any_of(mt::config_schema().begin(), mt::config_schema().end(),
                          [&](const mt::ConfigKeyDoc& d) { return d.path == path; }));
      }
    for (const auto& doc : mt::config_schema()) {
      if (doc.path.find("[]") != std::string::npos || doc.first_stage == "alignment.stages") continue;
      if (doc.path == "demo.enabled" || doc.path == "rounds.count") continue;  // they change the stage list
      const std::string section = doc.path.substr(0, doc.path.find('.')), key = doc.path.substr(section.size() + 1);
      YAML::Node edited = YAML::Clone(tree);
      edited[section][key] = "a value no config holds";
      YAML::Emitter out;
      out << edited;
      const auto changed = mt::pipeline_stage_keys_of_yaml(out.c_str());
      REQUIRE(changed.size() == base.size());
      // The expected first changed stage: demo reads it (with the demo on), else its first reader.
      std::string first = doc.first_stage == "demo" && !demo ? "" : doc.first_stage;
      if (demo && doc.read_by_demo_stage) first = "demo";
      const std::map<std::string, std::string> prefix = {{"demo", "stage0_demo"},       {"seed", "stage1_seed_models"},
                                                         {"rounds", "stage2_round_"},    {"synthesis", "stage3_synthesis"},
                                                         {"filter", "stage4_filter"},    {"final", "stage5_final"}};
      bool reached = false;
      for (size_t i = 0; i < base.size(); ++i) {
        INFO(doc.path << " demo=" << demo << " stage " << base[i].first);
        if (!first.empty() && base[i].first.rfind(prefix.at(first), 0) == 0) reached = true;
        CHECK((base[i].second != changed[i].second) == reached);
      }
      if (!first.empty()) CHECK(reached);
    }
  }
}
