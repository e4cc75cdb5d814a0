// Data parallelism on CPU (Gloo), with real processes: 2 ranks x micro-batch b give what 1 rank x
// 2b gives (per-step losses, gradient norms, tokens and final weights), with gradient
// accumulation, with and without packing; ranks with a different config or different weights are
// refused; a rank that dies stops the other with an error naming the failure; bad torchrun
// variables are clear errors. The ranks are started as torchrun would: RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT set per process.
#include <ATen/ATen.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <tuple>

#include <fmt/format.h>

#include "models/safetensors.h"
#include "trainer/dist/distributed.h"
#include "trainer/dist/rank_agreement.h"
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

// Reverse-word pairs and a config `name`.yaml training the tiny model on them; `training` is the
// body of the training: section.
fs::path write_config(const fs::path& dir, const std::string& name, const std::string& packing,
                      const std::string& training) {
  const fs::path data = mt::test::write_reverse_pairs(dir / "pairs.jsonl",
                                                      {"apple", "river", "stone", "cloud", "maple", "tiger"},
                                                      "The reversed word is ", 96);
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

}  // namespace

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
