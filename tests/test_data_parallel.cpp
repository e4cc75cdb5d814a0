// Data parallelism on CPU (Gloo), with real processes: 2 ranks x micro-batch b give what 1 rank x
// 2b gives (per-step losses, gradient norms, tokens and final weights), with gradient
// accumulation, with and without packing; ranks with a different config or different weights are
// refused; a rank that dies stops the other with an error naming the failure; bad torchrun
// variables are clear errors; a run resumed at another world size (2 -> 1, 1 -> 2) with the same
// global batch continues as the never-interrupted run does, and one with another global batch is
// refused. The ranks are started as torchrun would: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT set per process; `maintune launch` and SLURM job steps start
// them too (the launch tests).
#include <ATen/ATen.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <optional>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "models/safetensors.h"
#include "trainer/config/config.h"
#include "trainer/dist/distributed.h"
#include "trainer/dist/rank_agreement.h"
#include "trainer/dist/slurm_hosts.h"
#include "tests/run_fixtures.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A socket bound to a free loopback port (held while `held`), for MASTER_PORT.
struct Port {
  int fd = -1, port = 0;
  explicit Port(bool listen_on_it = false) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t n = sizeof a;
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0);
    port = ntohs(a.sin_port);
    if (listen_on_it) {
      REQUIRE(listen(fd, 1) == 0);
    } else {
      close(fd);  // free again: the ranks take it
      fd = -1;
    }
  }
  ~Port() {
    if (fd >= 0) close(fd);
  }
};

// `pairs` reverse-word pairs and a config `name`.yaml training the tiny model on them; `training` is
// the body of the training: section.
fs::path write_config(const fs::path& dir, const std::string& name, const std::string& packing,
                      const std::string& training, int pairs = 96) {
  const fs::path data = mt::test::write_reverse_pairs(dir / "pairs.jsonl",
                                                      {"apple", "river", "stone", "cloud", "maple", "tiger"},
                                                      "The reversed word is ", pairs);
  const fs::path cfg = dir / (name + ".yaml");
  mt::test::write_file(cfg, mt::test::tiny_model_section() + "data:\n  sources:\n    - path: " + data.string() +
                                "\n      format: alpaca\n  template: llama3\n  max_len: 96\n  packing: " + packing +
                                "\noptimizer:\n  lr: 0.003\nschedule:\n  type: cosine\n  warmup_steps: 2\n"
                                "training:\n" + training + "logging:\n  progress: lines\n  log_every: 1\n");
  return cfg;
}

struct RankResult {
  int exit_code = -1;
  std::string output;
};

// Runs `maintune train ARGS` as `world` ranks at once (rank r gets rank_args[r] appended and
// rank_env[r] in its environment) and waits for all of them.
std::vector<RankResult> run_ranks(int world, const std::string& args, const fs::path& dir,
                                  const std::vector<std::string>& rank_args = {},
                                  const std::vector<std::string>& rank_env = {}) {
  const Port port;
  std::string script;
  for (int r = 0; r < world; ++r) {
    const std::string extra_args = r < static_cast<int>(rank_args.size()) ? rank_args[static_cast<size_t>(r)] : "";
    const std::string extra_env = r < static_cast<int>(rank_env.size()) ? rank_env[static_cast<size_t>(r)] : "";
    script += fmt::format("(RANK={0} LOCAL_RANK={0} WORLD_SIZE={1} MASTER_ADDR=127.0.0.1 MASTER_PORT={2} {3} '{4}' "
                          "train {5} {6} > '{7}/rank{0}.log' 2>&1; echo $? > '{7}/rank{0}.rc') &\n",
                          r, world, port.port, extra_env, MT_MAINTUNE_EXE, args, extra_args, dir.string());
  }
  script += "wait\n";
  mt::test::write_file(dir / "ranks.sh", script);
  REQUIRE(std::system(("sh " + mt::test::quoted(dir / "ranks.sh")).c_str()) == 0);
  std::vector<RankResult> out;
  for (int r = 0; r < world; ++r) {
    RankResult rr;
    rr.exit_code = std::stoi(mt::test::read_file(dir / fmt::format("rank{}.rc", r)));
    rr.output = mt::test::read_file(dir / fmt::format("rank{}.log", r));
    out.push_back(rr);
  }
  return out;
}

double relative(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-30); }

// The worst relative differences between two runs: of their step lines (loss, grad_norm, lr; the
// integer counts must agree exactly) and of their final weights (norm-relative per tensor).
struct Differences {
  double steps = 0, weights = 0;
};

Differences worst_differences(const fs::path& run_a, const fs::path& run_b, size_t steps) {
  const auto a = mt::test::step_lines(run_a), b = mt::test::step_lines(run_b);
  REQUIRE(a.size() == steps);
  REQUIRE(b.size() == steps);
  Differences worst;
  for (size_t i = 0; i < steps; ++i) {
    INFO("step " << i + 1);
    CHECK(a[i]["tokens"] == b[i]["tokens"]);
    CHECK(a[i]["epoch"] == b[i]["epoch"]);
    for (const char* key : {"loss", "grad_norm", "lr"}) worst.steps = std::max(worst.steps, relative(a[i][key], b[i][key]));
  }
  const auto wa = mt::load_safetensors_dir(run_a / "final"), wb = mt::load_safetensors_dir(run_b / "final");
  REQUIRE(wa.size() == wb.size());
  for (const auto& [name, t] : wa) {
    REQUIRE(wb.count(name) == 1);
    const at::Tensor u = t.to(at::kDouble), v = wb.at(name).to(at::kDouble);
    worst.weights = std::max(worst.weights, (u - v).norm().item<double>() / std::max(v.norm().item<double>(), 1e-30));
  }
  return worst;
}

// 1 rank x micro-batch 2b against 2 ranks x b, with accumulation; returns the worst differences.
Differences compare_one_and_two_ranks(const std::string& packing, int steps, const std::string& rank_set) {
  mt::test::TempDir dir("dp_" + packing);
  const std::string common = fmt::format("  max_steps: {}\n  grad_accum_steps: 2\n  checkpoint_every: 0\n  seed: 3\n", steps);
  const fs::path cfg1 = write_config(dir.path, "one", packing, "  micro_batch_size: 4\n" + common);
  const fs::path cfg2 = write_config(dir.path, "two", packing, "  micro_batch_size: 2\n" + common);
  auto one = mt::test::run_maintune("train --config " + mt::test::quoted(cfg1) + " --run-dir " +
                                    mt::test::quoted(dir / "one"));
  INFO(one.output);
  REQUIRE(one.exit_code == 0);
  const auto ranks = run_ranks(2, "--config " + mt::test::quoted(cfg2) + " --run-dir " + mt::test::quoted(dir / "two") + " " + rank_set,
                               dir.path);
  INFO("rank 0:\n" << ranks[0].output << "\nrank 1:\n" << ranks[1].output);
  REQUIRE(ranks[0].exit_code == 0);
  REQUIRE(ranks[1].exit_code == 0);
  // Rank 0 reports (once, global figures); rank 1 writes and prints nothing on success.
  CHECK(ranks[0].output.find("2 ranks (gloo)") != std::string::npos);
  CHECK(ranks[1].output.empty());
  CHECK((ranks[0].output.find("in 1 buckets") != std::string::npos) == rank_set.empty());
  const Differences worst = worst_differences(dir / "two", dir / "one", static_cast<size_t>(steps));
  fmt::print(stderr, "data parallel ({}): 2 ranks x 2 vs 1 rank x 4, worst relative difference: steps {:.3g}, "
             "final weights {:.3g}\n", packing, worst.steps, worst.weights);
  return worst;
}

// `maintune train ARGS` as `world` ranks (one: a plain process); every rank must succeed. Returns
// rank 0's output.
std::string train_ranks(int world, const std::string& args, const fs::path& dir) {
  if (world == 1) {
    auto r = mt::test::run_maintune("train " + args);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    return r.output;
  }
  const auto ranks = run_ranks(world, args, dir);
  for (const auto& r : ranks) {
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  }
  return ranks[0].output;
}

// A run of 6 steps at `from` ranks x micro-batch `from_micro` (4 rows per optimizer step, 10 rows an
// epoch: steps cross epoch boundaries), and the same run resumed from its step-3 checkpoint at `to`
// ranks x `to_micro`, accumulation chosen to keep 4 rows per step; returns the worst differences.
Differences resume_at_other_world_size(int from, int from_micro, int to, int to_micro) {
  mt::test::TempDir dir(fmt::format("dp_resume_{}_{}", from, to));
  auto training = [](int world, int micro) {
    return fmt::format("  micro_batch_size: {}\n  grad_accum_steps: {}\n  max_steps: 6\n  checkpoint_every: 3\n"
                       "  seed: 5\n", micro, 4 / (world * micro));
  };
  const fs::path cfg_from = write_config(dir.path, "from", "none", training(from, from_micro), 10);
  const fs::path cfg_to = write_config(dir.path, "to", "none", training(to, to_micro), 10);
  const fs::path straight = dir / "straight", resumed = dir / "resumed";
  train_ranks(from, "--config " + mt::test::quoted(cfg_from) + " --run-dir " + mt::test::quoted(straight), dir.path);
  // The resumed run: a copy of the run directory as it was at step 3's checkpoint.
  fs::copy(straight, resumed, fs::copy_options::recursive);
  fs::remove_all(resumed / "final");
  fs::remove_all(resumed / "checkpoints" / "step_0000006");
  const fs::path ckpt = resumed / "checkpoints" / "step_0000003";
  const std::string resume_args = "--config " + mt::test::quoted(cfg_to) + " --run-dir " + mt::test::quoted(resumed) +
                                  " --resume " + mt::test::quoted(ckpt);
  // Another global batch is refused, naming the checkpoint and the three factors.
  if (to == 1) {
    auto bad = mt::test::run_maintune("train " + resume_args + " --set training.grad_accum_steps=1");
    INFO(bad.output);
    CHECK(bad.exit_code == 1);
    CHECK(bad.output.find("cannot resume " + ckpt.string()) != std::string::npos);
    CHECK(bad.output.find(fmt::format("x ranks: {} x {} x {} = 4 -> {} x 1 x 1 = {} rows per optimizer step",
                                      from_micro, 4 / (from * from_micro), from, to_micro, to_micro)) !=
          std::string::npos);
    CHECK(bad.output.find(fmt::format("training.grad_accum_steps={} keeps it", 4 / to_micro)) != std::string::npos);
  }
  const std::string resumed_log = train_ranks(to, resume_args, dir.path);
  INFO(resumed_log);
  CHECK(resumed_log.find(fmt::format("resuming from {} (step 3), saved by {} rank{} and resumed by {}", ckpt.string(),
                                     from, from == 1 ? "" : "s", to)) != std::string::npos);
  const Differences worst = worst_differences(resumed, straight, 6);
  fmt::print(stderr, "resume at another world size: {} x {} -> {} x {} ranks x micro-batch, worst relative difference: "
             "steps {:.3g}, final weights {:.3g}\n", from, from_micro, to, to_micro, worst.steps, worst.weights);
  return worst;
}

// A train config file whose load() applies `--set` overrides.
struct TrainConfigFile {
  mt::test::TempDir dir{"dp_config"};
  explicit TrainConfigFile(const std::string& text) { mt::test::write_file(dir / "run.yaml", text); }
  mt::TrainConfig load(const std::vector<std::string>& overrides = {}) const {
    return mt::load_train_config(dir / "run.yaml", overrides);
  }
};

}  // namespace

TEST_CASE("data parallel: resuming at another world size with the same global batch continues the run",
          "[dist][resume]") {
  // 2 ranks x 1 (accumulation 2) -> 1 rank x 1 (accumulation 4): step 3 took rows 8, 9 of epoch 0 and
  // 0, 1 of epoch 1; the resumed rank continues at row 2. 1 rank x 2 (accumulation 2) -> 2 ranks x 2
  // (no accumulation): 2 rows consumed of epoch 1 are not a whole number of 2 x 2 micro-batches, so the
  // rest of epoch 1 is dealt to the 2 ranks from row 2. Either way every optimizer step sees the rows
  // of the never-interrupted run's step (the token counts agree exactly), summed in another order.
  for (const auto& [from, from_micro, to, to_micro] : {std::tuple<int, int, int, int>{2, 1, 1, 1}, {1, 2, 2, 2}}) {
    const Differences worst = resume_at_other_world_size(from, from_micro, to, to_micro);
    CHECK(worst.steps < 1e-6);
    CHECK(worst.weights < 1e-5);
  }
}

TEST_CASE("data parallel: the train resume rule allows another world size when the global batch stays",
          "[dist][config]") {
  const TrainConfigFile file("model: {path: /m}\ndata:\n  sources: [/d/a.jsonl]\noutput: {run_dir: /r}\n");
  const auto saved = file.load({"training.micro_batch_size=2", "training.grad_accum_steps=2"});  // x 2 ranks: 8
  CHECK(mt::resume_incompatibilities(saved, saved, 2, 2).empty());
  auto batch = [&](int micro, int accum) {
    return file.load(
        {fmt::format("training.micro_batch_size={}", micro), fmt::format("training.grad_accum_steps={}", accum)});
  };
  CHECK(mt::resume_incompatibilities(saved, batch(2, 4), 2, 1).empty());
  CHECK(mt::resume_incompatibilities(saved, batch(1, 2), 2, 4).empty());
  CHECK(mt::resume_incompatibilities(saved, batch(4, 1), 2, 2).empty());
  // Another global batch: one line naming the three factors, with the accumulation that keeps it.
  CHECK(mt::resume_incompatibilities(saved, saved, 2, 1) ==
        std::vector<std::string>{"the global batch, training.micro_batch_size x training.grad_accum_steps x ranks: "
                                 "2 x 2 x 2 = 8 -> 2 x 2 x 1 = 4 rows per optimizer step (training.grad_accum_steps=4 "
                                 "keeps it)"});
  const auto lines = mt::resume_incompatibilities(
      saved, file.load({"training.micro_batch_size=3", "training.grad_accum_steps=1", "optimizer.lr=1e-4"}), 2, 2);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "optimizer.lr: 2e-05 -> 0.0001");
  CHECK(lines[1] == "the global batch, training.micro_batch_size x training.grad_accum_steps x ranks: 2 x 2 x 2 = 8 -> "
                    "3 x 1 x 2 = 6 rows per optimizer step");  // no accumulation gives 8 rows from 3 x 2
  // The rule without world sizes (as the pipeline and sweeps resume) still compares the keys one by one.
  CHECK(mt::resume_incompatibilities(saved, batch(4, 1)).size() == 2);
}

TEST_CASE("data parallel: 2 ranks x micro-batch b equal 1 rank x 2b (losses, grad norms, weights)", "[dist]") {
  // fp32 sums in another order: the step figures agree to a few ulps; the weights after Adam's
  // steps a little less (Adam divides by sqrt(v), which magnifies the last bits of tiny gradients).
  // One bucket of 25 MiB holds the tiny model; 0.5 MiB buckets split it in several.
  for (const auto& [packing, steps, rank_set] :
       {std::tuple<const char*, int, const char*>{"none", 6, ""}, {"first_fit", 3, "--set distributed.bucket_mb=0.5"}}) {
    INFO("packing " << packing << " " << rank_set);
    const Differences worst = compare_one_and_two_ranks(packing, steps, rank_set);
    CHECK(worst.steps < 1e-6);
    CHECK(worst.weights < 1e-5);
  }
}

TEST_CASE("data parallel: ranks with a different config or different weights are refused", "[dist]") {
  mt::test::TempDir dir("dp_refuse");
  const fs::path cfg = write_config(dir.path, "run", "none", "  max_steps: 2\n  micro_batch_size: 2\n");
  const std::string args = "--config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(dir / "run");
  {
    const auto ranks = run_ranks(2, args, dir.path, {"", "--set optimizer.lr=0.004"});
    for (const auto& r : ranks) {
      INFO(r.output);
      CHECK(r.exit_code == 1);
      CHECK(r.output.find("rank 1 has a different resolved config than rank 0") != std::string::npos);
      CHECK(r.output.find("'optimizer.lr'") != std::string::npos);
    }
  }
  {
    const auto ranks = run_ranks(2, args, dir.path, {}, {"", "MAINTUNE_FAULT_FLAGS=train.perturb_weights"});
    for (const auto& r : ranks) {
      INFO(r.output);
      CHECK(r.exit_code == 1);
      CHECK(r.output.find("rank 1 has different weights than rank 0 at the start") != std::string::npos);
    }
    CHECK_FALSE(fs::exists(dir / "run" / "metrics.jsonl"));
  }
}

TEST_CASE("data parallel: a rank that dies stops the other with an error naming the collective", "[dist]") {
  mt::test::TempDir dir("dp_kill");
  const fs::path cfg = write_config(dir.path, "run", "none", "  max_steps: 8\n  micro_batch_size: 2\n  checkpoint_every: 0\n");
  const auto t0 = std::chrono::steady_clock::now();
  const auto ranks = run_ranks(2, "--config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(dir / "run"),
                               dir.path, {}, {"", "MAINTUNE_FAULT_KILL_AT=train.step:3"});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO("rank 0:\n" << ranks[0].output << "\nrank 1:\n" << ranks[1].output);
  CHECK(ranks[1].exit_code == 137);
  CHECK(ranks[0].exit_code == 1);
  CHECK(ranks[0].output.find("distributed: all-reduce of") != std::string::npos);
  CHECK(ranks[0].output.find("failed on rank 0 of 2") != std::string::npos);
  CHECK(seconds < 120);  // far below distributed.timeout_s: a closed connection is noticed at once
  CHECK(mt::test::step_lines(dir / "run").size() == 3);
}

TEST_CASE("data parallel: bad torchrun variables and a port in use are clear errors", "[dist]") {
  mt::test::TempDir dir("dp_env");
  const fs::path cfg = write_config(dir.path, "run", "none", "  max_steps: 1\n  micro_batch_size: 2\n");
  const std::string args = "train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(dir / "run");
  auto r = mt::test::run_maintune(args, "RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511");
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("RANK=2 is not below WORLD_SIZE=2") != std::string::npos);
  r = mt::test::run_maintune(args, "RANK=1 LOCAL_RANK=1");
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("WORLD_SIZE is not") != std::string::npos);
  r = mt::test::run_maintune(args, "RANK=0 WORLD_SIZE=2 MASTER_PORT=29511");
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("needs MASTER_ADDR and MASTER_PORT") != std::string::npos);
  CHECK(r.output.find("MASTER_ADDR is not set") != std::string::npos);
  r = mt::test::run_maintune(args, "RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=http");
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("MASTER_PORT='http' is not a non-negative integer") != std::string::npos);
  const Port busy(/*listen_on_it=*/true);
  r = mt::test::run_maintune(args, fmt::format("RANK=0 WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 MASTER_PORT={}", busy.port));
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find(fmt::format("rank 0 cannot serve the rendezvous on MASTER_PORT={}", busy.port)) !=
        std::string::npos);
}

TEST_CASE("data parallel: the config check names the first key that differs", "[dist]") {
  CHECK(mt::first_differing_key("a:\n  b: 1\n  c: 2\n", "a:\n  b: 1\n  c: 3\n") == "a.c");
  CHECK(mt::first_differing_key("a:\n  b: [1, 2]\n", "a:\n  b: [1, 3]\n") == "a.b[1]");
  CHECK(mt::first_differing_key("a: 1\n", "a: 1\nz: 2\n") == "z");
  CHECK(mt::first_differing_key("a: 1\n", "a: 1\n").empty());
  // One tensor's bytes change the checksum; equal tensors give equal checksums.
  const at::Tensor t = at::arange(6, at::kFloat);
  CHECK(mt::weights_checksum({{"w", t}}) == mt::weights_checksum({{"w", t.clone()}}));
  CHECK(mt::weights_checksum({{"w", t}}) != mt::weights_checksum({{"w", t + 1e-6}}));
  CHECK(mt::weights_checksum({{"w", t}}) != mt::weights_checksum({{"v", t}}));
}

namespace {

// `maintune launch ARGS` started in the background (its pid returned); the exit code lands in
// DIR/launch.rc and the output in DIR/launch.log.
pid_t start_launch(const fs::path& dir, const std::string& args) {
  const std::string cmd = fmt::format("sh -c '\"{0}\" launch {1} > \"{2}/launch.log\" 2>&1 & echo $! > \"{2}/launch.pid\"; "
                                      "wait $!; echo $? > \"{2}/launch.rc\"' >/dev/null 2>&1 &",
                                      MT_MAINTUNE_EXE, args, dir.string());
  REQUIRE(std::system(cmd.c_str()) == 0);
  for (int i = 0; i < 2000 && mt::test::read_file_if_exists(dir / "launch.pid").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return static_cast<pid_t>(std::stol(mt::test::read_file(dir / "launch.pid")));
}

// Waits (at most five minutes) until `ready` holds.
template <typename Ready>
void wait_until(Ready ready) {
  const auto t0 = std::chrono::steady_clock::now();
  while (!ready()) {
    REQUIRE(std::chrono::steady_clock::now() - t0 < std::chrono::minutes(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Sets environment variables for one scope (unset = nullptr), restoring the old values after.
struct ScopedEnv {
  std::vector<std::pair<std::string, std::optional<std::string>>> old;
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> set) {
    for (const auto& [name, value] : set) {
      const char* was = std::getenv(name);
      old.emplace_back(name, was == nullptr ? std::nullopt : std::optional<std::string>(was));
      if (value == nullptr) ::unsetenv(name);
      else ::setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : old) {
      if (value) ::setenv(name.c_str(), value->c_str(), 1);
      else ::unsetenv(name.c_str());
    }
  }
};

}  // namespace

TEST_CASE("launch: maintune launch --nproc 2 -- train equals 1 rank at twice the micro-batch", "[dist][launch]") {
  mt::test::TempDir dir("launch_same");
  const std::string common = "  max_steps: 4\n  grad_accum_steps: 2\n  checkpoint_every: 0\n  seed: 3\n";
  const fs::path cfg1 = write_config(dir.path, "one", "none", "  micro_batch_size: 4\n" + common);
  const fs::path cfg2 = write_config(dir.path, "two", "none", "  micro_batch_size: 2\n" + common);
  auto one = mt::test::run_maintune("train --config " + mt::test::quoted(cfg1) + " --run-dir " + mt::test::quoted(dir / "one"));
  INFO(one.output);
  REQUIRE(one.exit_code == 0);
  auto two = mt::test::run_maintune("launch --nproc 2 -- train --config " + mt::test::quoted(cfg2) + " --run-dir " +
                                    mt::test::quoted(dir / "two"));
  INFO(two.output);
  REQUIRE(two.exit_code == 0);
  CHECK(two.output.find("maintune launch: 2 rank(s) on this node (0 of 2 in all), rendezvous at 127.0.0.1:") !=
        std::string::npos);
  CHECK(two.output.find("2 ranks (gloo)") != std::string::npos);
  const Differences worst = worst_differences(dir / "two", dir / "one", 4);
  CHECK(worst.steps < 1e-6);
  CHECK(worst.weights < 1e-5);
}

TEST_CASE("launch: a rank that fails ends every rank, and launch exits with its status", "[dist][launch]") {
  mt::test::TempDir dir("launch_fail");
  const fs::path cfg = write_config(dir.path, "run", "none", "  max_steps: 8\n  micro_batch_size: 2\n  checkpoint_every: 0\n");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = mt::test::run_maintune("launch --nproc 2 -- train --config " + mt::test::quoted(cfg) + " --run-dir " +
                                      mt::test::quoted(dir / "run"),
                                  "MAINTUNE_FAULT_KILL_AT=train.step:3 MAINTUNE_FAULT_RANK=1");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.output);
  CHECK(r.exit_code == 137);
  CHECK(r.output.find("maintune launch: rank 1 exited with status 137; stopping the other") != std::string::npos);
  CHECK(seconds < 120);
  CHECK(mt::test::step_lines(dir / "run").size() == 3);  // rank 0 went no further than its peer
}

TEST_CASE("launch: a SIGTERM to launch stops every rank with a checkpoint (exit 75), and the job resumes", "[dist][launch]") {
  mt::test::TempDir dir("launch_stop");
  const fs::path cfg = write_config(dir.path, "run", "none", "  max_steps: 40\n  micro_batch_size: 2\n  checkpoint_every: 0\n");
  const fs::path run = dir / "run";
  const std::string args = "--nproc 2 -- train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run);
  const pid_t pid = start_launch(dir.path, args);
  wait_until([&] { return fs::exists(run / "metrics.jsonl") && mt::test::step_lines(run).size() >= 3; });
  REQUIRE(::kill(pid, SIGTERM) == 0);
  wait_until([&] { return !mt::test::read_file_if_exists(dir / "launch.rc").empty(); });
  const std::string log = mt::test::read_file(dir / "launch.log");
  INFO(log);
  CHECK(mt::test::read_file(dir / "launch.rc") == "75\n");
  CHECK(log.find("maintune launch: Terminated; stopping the ranks") != std::string::npos);
  const size_t stopped_at = mt::test::step_lines(run).size();
  REQUIRE(stopped_at < 40);
  CHECK(mt::test::read_file(run / "checkpoints" / "latest") == fmt::format("step_{:07d}\n", stopped_at));
  auto resumed = mt::test::run_maintune("launch " + args + " --resume auto");
  INFO(resumed.output);
  CHECK(resumed.exit_code == 0);
  CHECK(mt::test::step_lines(run).size() == 40);
  CHECK(fs::exists(run / "final" / "config.json"));
}

TEST_CASE("launch: misuse is a usage error", "[dist][launch]") {
  for (const auto& [args, expect] : std::vector<std::pair<std::string, std::string>>{
           {"--nproc 2", "give the command to run after '--'"},
           {"--nproc 0 -- train", "--nproc 0 is not in 1 .. 1024"},
           {"--nnodes 2 --node-rank 1 -- train", "--nnodes > 1 needs --master-addr"},
           {"--nnodes 2 --node-rank 2 --master-addr h --master-port 1 -- train", "--node-rank 2 is not in 0 .. 1"},
           {"--master-port 70000 -- train", "--master-port 70000 is not a TCP port"},
           {"--nproc two -- train", "--nproc needs an integer"}}) {
    INFO(args);
    auto r = mt::test::run_maintune("launch " + args);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(expect) != std::string::npos);
  }
}

TEST_CASE("launch: SLURM job steps give the ranks (srun), torchrun's variables win, the batch step is one process", "[dist][launch]") {
  const ScopedEnv clean({{"WORLD_SIZE", nullptr}, {"RANK", nullptr}, {"LOCAL_RANK", nullptr}, {"MASTER_ADDR", nullptr},
                         {"MASTER_PORT", nullptr}, {"MAINTUNE_SLURM", nullptr}, {"SLURM_STEP_NODELIST", nullptr}});
  {
    const ScopedEnv slurm({{"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_PROCID", "2"}, {"SLURM_LOCALID", "0"},
                           {"SLURM_JOB_NODELIST", "gpu-[07-09,12],cpu1"}, {"SLURM_JOB_ID", "123456"}});
    const mt::DistEnv env = mt::dist_env_from_environment();
    CHECK(env.launched);
    CHECK(env.rank == 2);
    CHECK(env.world_size == 4);
    CHECK(env.local_rank == 0);
    CHECK(env.master_addr == "gpu-07");
    CHECK(env.master_port == 10000 + 123456 % 20000);
    {
      const ScopedEnv given({{"MASTER_ADDR", "head"}, {"MASTER_PORT", "29400"}, {"SLURM_STEP_NODELIST", "n[3-4]"}});
      const mt::DistEnv e = mt::dist_env_from_environment();
      CHECK(e.master_addr == "head");
      CHECK(e.master_port == 29400);
    }
    {
      const ScopedEnv step({{"SLURM_STEP_NODELIST", "n[3-4]"}});
      CHECK(mt::dist_env_from_environment().master_addr == "n3");
    }
    {
      const ScopedEnv torchrun({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "5"}});
      const mt::DistEnv e = mt::dist_env_from_environment();
      CHECK(e.world_size == 2);
      CHECK(e.rank == 1);
    }
    {
      const ScopedEnv off({{"MAINTUNE_SLURM", "0"}});
      CHECK_FALSE(mt::dist_env_from_environment().launched);
    }
    {
      const ScopedEnv batch({{"SLURM_STEP_NUM_TASKS", nullptr}, {"SLURM_NTASKS", "4"}});
      CHECK_FALSE(mt::dist_env_from_environment().launched);  // the batch script itself: no srun step
    }
    {
      const ScopedEnv past({{"SLURM_PROCID", "4"}});
      mt::test::require_error([] { mt::dist_env_from_environment(); }, {"SLURM_PROCID=4 is not below SLURM_STEP_NUM_TASKS=4"});
    }
    {
      const ScopedEnv bad({{"SLURM_JOB_NODELIST", "gpu-[07-"}});
      mt::test::require_error([] { mt::dist_env_from_environment(); },
                              {"SLURM_JOB_NODELIST='gpu-[07-' is not a SLURM host list", "is not closed"});
    }
  }
  CHECK(mt::first_slurm_host("node01", "L") == "node01");
  CHECK(mt::first_slurm_host("rack[2-3]-n[010-012,020]-ib,x", "L") == "rack2-n010-ib");
  CHECK(mt::first_slurm_host("a,b", "L") == "a");
  for (const auto& [list, why] : std::vector<std::pair<std::string, std::string>>{
           {"", "it is empty"}, {"n]1", "']' without '['"}, {"n[a-b]", "is not a list of numbers"},
           {"n[3-1]", "is not a list of numbers"}, {",n1", "its first host name is empty"}, {"n 1", "a space"}}) {
    INFO(list);
    mt::test::require_error([&] { mt::first_slurm_host(list, "SLURM_JOB_NODELIST"); }, {why, "SLURM_JOB_NODELIST"});
  }
}

TEST_CASE("launch: a rank takes the GPU LOCAL_RANK, or the one GPU a scheduler gave its task", "[dist][launch]") {
  CHECK(mt::rank_cuda_index(0, 8) == 0);
  CHECK(mt::rank_cuda_index(7, 8) == 7);
  CHECK(mt::rank_cuda_index(3, 1) == 0);  // srun --gpus-per-task=1: each task sees its own GPU as cuda:0
  mt::test::require_error([] { mt::rank_cuda_index(2, 2); }, {"LOCAL_RANK 2 but this process sees 2 GPU(s)"});
  mt::test::require_error([] { mt::rank_cuda_index(0, 0); }, {"LOCAL_RANK 0 but this process sees 0 GPU(s)"});
}

TEST_CASE("launch: two srun-like SLURM tasks train as two ranks", "[dist][launch]") {
  mt::test::TempDir dir("launch_slurm");
  const fs::path cfg = write_config(dir.path, "run", "none", "  max_steps: 2\n  micro_batch_size: 2\n  checkpoint_every: 0\n");
  const Port port;
  std::string script;
  for (int r = 0; r < 2; ++r)
    script += fmt::format("(env -u RANK -u WORLD_SIZE -u LOCAL_RANK SLURM_PROCID={0} SLURM_LOCALID={0} SLURM_STEP_NUM_TASKS=2 "
                          "SLURM_STEP_NODELIST=localhost SLURM_JOB_ID=1 MASTER_PORT={1} '{2}' train --config '{3}' "
                          "--run-dir '{4}/run' > '{4}/task{0}.log' 2>&1; echo $? > '{4}/task{0}.rc') &\n",
                          r, port.port, MT_MAINTUNE_EXE, cfg.string(), dir.path.string());
  mt::test::write_file(dir / "tasks.sh", script + "wait\n");
  REQUIRE(std::system(("sh " + mt::test::quoted(dir / "tasks.sh")).c_str()) == 0);
  const std::string log0 = mt::test::read_file(dir / "task0.log"), log1 = mt::test::read_file(dir / "task1.log");
  INFO("task 0:\n" << log0 << "\ntask 1:\n" << log1);
  CHECK(mt::test::read_file(dir / "task0.rc") == "0\n");
  CHECK(mt::test::read_file(dir / "task1.rc") == "0\n");
  CHECK(log0.find("2 ranks (gloo)") != std::string::npos);
  CHECK(mt::test::step_lines(dir / "run").size() == 2);
}
