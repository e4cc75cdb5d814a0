// `maintune train` end to end on the tiny model: the loss falls, metrics and TensorBoard files are
// written, a kill -9 at a random step followed by --resume auto reproduces the uninterrupted run's
// losses exactly, SIGTERM and SIGHUP stop gracefully, resume refuses changed settings, NaN steps
// are skipped (a bad MAINTUNE_FAULT_NAN_STEPS is named), and final/ loads in transformers with the
// same logits.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "models/chat_template.h"
#include "models/checkpoint_dir.h"
#include "models/safetensors.h"
#include "models/tokenizer.h"
#include "trainer/base/fault_injection.h"
#include "trainer/base/file_lock.h"
#include "trainer/engine/checkpoint.h"
#include "trainer/report/tensorboard.h"
#include "tests/run_fixtures.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

using mt::test::step_lines;

// A config for the tiny model of configs/ on the generated data; `extra` (whole top-level
// sections) is appended.
fs::path write_config(const fs::path& dir, const std::string& extra = "") {
  const fs::path data =
      mt::test::write_reverse_pairs(dir / "pairs.jsonl", {"apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "piano"},
                                    "The reversed word is ", 96);
  const fs::path cfg = dir / "run.yaml";
  mt::test::write_file(cfg, mt::test::tiny_model_section() +
                                "data:\n  sources:\n    - path: " + data.string() +
                                "\n      format: alpaca\n  template: llama3\n  max_len: 96\n"
                                "optimizer:\n  lr: 0.003\n"
                                "schedule:\n  type: cosine\n  warmup_steps: 2\n"
                                "training:\n  max_steps: 16\n  micro_batch_size: 2\n  grad_accum_steps: 2\n"
                                "  checkpoint_every: 2\n  seed: 5\n"
                                "logging:\n  progress: lines\n  log_every: 4\n" + extra);
  return cfg;
}

int64_t count_lines(const fs::path& file) {
  const std::string s = mt::test::read_file(file);
  return static_cast<int64_t>(std::count(s.begin(), s.end(), '\n'));
}

// Starts `maintune ARGS` in the background; returns its pid. The exit code lands in `rc_file`.
pid_t start_maintune(const std::string& args, const fs::path& pid_file, const fs::path& rc_file,
                     const fs::path& log_file) {
  const std::string cmd = "sh -c '\"" + std::string(MT_MAINTUNE_EXE) + "\" " + args + " >" + log_file.string() +
                          " 2>&1 & echo $! > " + pid_file.string() + "; wait $!; echo $? > " + rc_file.string() +
                          "' >/dev/null 2>&1 &";
  REQUIRE(std::system(cmd.c_str()) == 0);
  for (int i = 0; i < 2000 && mt::test::read_file_if_exists(pid_file).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return static_cast<pid_t>(std::stol(mt::test::read_file(pid_file)));
}

void wait_for_lines(const fs::path& file, int64_t n, int timeout_s = 300) {
  const auto t0 = std::chrono::steady_clock::now();
  while (!fs::exists(file) || count_lines(file) < n) {
    REQUIRE(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(timeout_s));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void wait_for_file(const fs::path& file, int timeout_s = 300) {
  const auto t0 = std::chrono::steady_clock::now();
  while (mt::test::read_file_if_exists(file).empty()) {
    REQUIRE(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(timeout_s));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Starts a run on `cfg`, sends `sig` after its third step and checks the graceful stop: exit 75
// (not 0: `train && upload` must not upload; killed by the signal would be 128+sig), "stopped by
// SIG" in the log, a checkpoint of the step it stopped at as `latest`, no final/. Returns the log.
std::string stop_by_signal(const fs::path& dir, const fs::path& cfg, const fs::path& run, int sig,
                           const std::string& sig_name) {
  const pid_t pid = start_maintune("train --config " + cfg.string() + " --run-dir " + run.string() +
                                       " --set training.checkpoint_every=0",
                                   dir / "pid", dir / "rc", dir / "log");
  wait_for_lines(run / "metrics.jsonl", 3);
  REQUIRE(::kill(pid, sig) == 0);
  wait_for_file(dir / "rc");
  const std::string log = mt::test::read_file(dir / "log");
  INFO(log);
  CHECK(mt::test::read_file(dir / "rc") == "75\n");
  CHECK(log.find("stopped by " + sig_name) != std::string::npos);
  const int64_t stopped_at = static_cast<int64_t>(step_lines(run).size());
  REQUIRE(stopped_at < 16);
  CHECK(mt::test::read_file(run / "checkpoints" / "latest") == fmt::format("step_{:07d}\n", stopped_at));
  CHECK(fs::exists(run / "checkpoints" / fmt::format("step_{:07d}", stopped_at)));
  CHECK_FALSE(fs::exists(run / "final"));
  return log;
}

// transformers loads `model_dir` and gives `m`'s logits on random ids of length `len`, exactly
// (scripts/check_export.py; `scratch` holds the expected tensors).
void check_transformers_logits(const mt::LoadedModel& m, const fs::path& model_dir, const fs::path& scratch, int64_t len) {
  c10::NoGradGuard no_grad;
  at::Tensor ids = at::randint(1000, {2, len}, at::kLong);
  at::Tensor pos = at::arange(len, at::kLong).unsqueeze(0).expand({2, len}).contiguous();
  at::Tensor logits = mt::transformer_logits(m.model, mt::transformer_hidden(m.model, ids, pos));
  mt::write_safetensors(scratch / "expected.safetensors", {{"input_ids", ids}, {"logits", logits.contiguous()}});
  auto check = mt::test::run_command(std::string(MT_PYTHON) + " " + MT_SOURCE_DIR + "/scripts/check_export.py " +
                                     mt::test::quoted(model_dir) + " " + mt::test::quoted(scratch / "expected.safetensors"));
  INFO(check.output);
  CHECK(check.exit_code == 0);
  CHECK(check.output.find("\"ok\": true") != std::string::npos);
}

}  // namespace

TEST_CASE("train: the tiny model learns - metrics, TensorBoard, checkpoints and final/ are written", "[train]") {
  const fs::path dir = mt::test::temp_dir("train_tiny");
  const fs::path cfg = write_config(dir, "data_extra: 1\n");
  auto bad = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(dir / "run"));
  INFO(bad.output);
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find("unknown section 'data_extra'") != std::string::npos);
  CHECK(bad.output.find("run.yaml:") != std::string::npos);

  const fs::path cfg2 = write_config(dir, "output:\n  keep_last: 3\n");
  const fs::path run = dir / "run";
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg2) + " --run-dir " + mt::test::quoted(run) +
                                  " --set training.eval_every=8 --set data.eval_fraction=0.1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto steps = step_lines(run);
  REQUIRE(steps.size() == 16);
  for (const char* key : {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "peak_mem_bytes", "skipped_steps"})
    for (const auto& s : steps) {
      INFO(key);
      CHECK(s.contains(key));
    }
  for (size_t i = 0; i < steps.size(); ++i) CHECK(steps[i]["step"] == static_cast<int64_t>(i + 1));
  const double first = steps[0]["loss"].get<double>(), last = steps.back()["loss"].get<double>();
  CHECK(first > 6.0);        // ~ln(1000) at random init
  CHECK(last < first - 1.5);  // it learned
  int evals = 0;
  for (const auto& j : mt::test::json_lines(mt::test::read_file(run / "metrics.jsonl")))
    if (j.contains("eval_loss")) {
      ++evals;
      CHECK(j["eval_loss"].get<double>() > 0);
    }
  CHECK(evals == 2);  // steps 8 and 16
  CHECK(r.output.find("step 4/16") != std::string::npos);  // plain log lines every 4 steps

  // Checkpoints: keep_last 3, latest pointer, resolved config saved.
  CHECK(mt::test::read_file(run / "checkpoints" / "latest") == "step_0000016\n");
  CHECK(fs::exists(run / "checkpoints" / "step_0000012"));
  CHECK_FALSE(fs::exists(run / "checkpoints" / "step_0000010"));
  CHECK(fs::exists(run / "config.yaml"));

  // TensorBoard: one train/loss scalar per step, equal to metrics.jsonl's loss in float32.
  std::vector<float> tb_losses;
  for (const auto& e : fs::directory_iterator(run / "tensorboard"))
    for (const auto& ev : mt::read_tensorboard_events(e.path()))
      for (const auto& [tag, value] : ev.scalars)
        if (tag == "train/loss") tb_losses.push_back(value);
  REQUIRE(tb_losses.size() == 16);
  CHECK(tb_losses[3] == static_cast<float>(steps[3]["loss"].get<double>()));

  // final/: loads back in our loader with the trained weights.
  const mt::LoadedModel fin = mt::load_model_dir(run / "final", at::kCPU);
  CHECK(fs::exists(run / "final" / "tokenizer.json"));
  CHECK(fin.model.config.vocab_size == 1000);
  fs::remove_all(dir);
}

TEST_CASE("train: kill -9 at a random step, then --resume auto, reproduces the losses exactly", "[train][resume]") {
  const fs::path dir = mt::test::temp_dir("train_kill");
  const fs::path cfg = write_config(dir);
  const fs::path straight = dir / "straight", killed = dir / "killed";
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(straight));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto expected = step_lines(straight);
  REQUIRE(expected.size() == 16);

  std::mt19937 rng(std::random_device{}());
  const int64_t kill_at = std::uniform_int_distribution<int64_t>(3, 12)(rng);
  INFO("killed after step " << kill_at);
  const pid_t pid = start_maintune("train --config " + cfg.string() + " --run-dir " + killed.string(), dir / "pid",
                                   dir / "rc", dir / "log1");
  wait_for_lines(killed / "metrics.jsonl", kill_at);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  wait_for_file(dir / "rc");
  CHECK(mt::test::read_file(dir / "rc") == "137\n");
  const int64_t lines_at_kill = count_lines(killed / "metrics.jsonl");
  REQUIRE(lines_at_kill < 16);  // it really died mid-run

  auto again = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " +
                                      mt::test::quoted(killed) + " --resume auto");
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  CHECK(again.output.find("resuming from") != std::string::npos);
  const auto got = step_lines(killed);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(got[i]["step"] == expected[i]["step"]);
    CHECK(got[i]["loss"].get<double>() == expected[i]["loss"].get<double>());  // bit-exact
    CHECK(got[i]["grad_norm"].get<double>() == expected[i]["grad_norm"].get<double>());
    CHECK(got[i]["lr"].get<double>() == expected[i]["lr"].get<double>());
  }
  // The final weights are identical too.
  const auto a = mt::load_safetensors_dir(straight / "final"), b = mt::load_safetensors_dir(killed / "final");
  for (const auto& [name, t] : a) CHECK(at::equal(t, b.at(name)));
  fs::remove_all(dir);
}

TEST_CASE("train: SIGTERM stops after the step with a checkpoint and exit 75 - the printed command finishes the run",
          "[train][resume]") {
  const fs::path dir = mt::test::temp_dir("train_term");
  const fs::path cfg = write_config(dir);
  const fs::path run = dir / "run";
  const std::string log = stop_by_signal(dir, cfg, run, SIGTERM, "SIGTERM");
  INFO(log);

  // Without --resume the run directory is protected.
  auto refused = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run));
  CHECK(refused.exit_code == 1);
  CHECK(refused.output.find("--resume auto") != std::string::npos);

  // The command it printed, pasted as is (from another directory): the run's own config holds the
  // --set override and the run directory, and resuming finishes the run.
  const std::string marker = "continue with: maintune ";
  const size_t at = log.find(marker);
  REQUIRE(at != std::string::npos);
  const std::string pasted = log.substr(at + marker.size(), log.find('\n', at) - at - marker.size());
  CHECK(pasted.find((run / "config.yaml").string()) != std::string::npos);
  auto resumed = mt::test::run_command("cd / && '" + std::string(MT_MAINTUNE_EXE) + "' " + pasted + " 2>&1");
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(step_lines(run).size() == 16);
  CHECK(fs::exists(run / "final" / "config.json"));
  CHECK(resumed.output.find("checkpoint_every") == std::string::npos);  // no setting differed

  // train.log: both processes' messages and step lines, each with a UTC timestamp.
  const std::string train_log = mt::test::read_file(run / "train.log");
  CHECK(train_log.find("stopped by SIGTERM") != std::string::npos);
  CHECK(train_log.find("resuming from") != std::string::npos);
  CHECK(train_log.find("step 16: loss") != std::string::npos);
  const std::regex stamped(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z .*)");
  std::istringstream lines(train_log);
  int64_t n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    INFO(line);
    CHECK(std::regex_match(line, stamped));
  }
  CHECK(n > 10);  // messages of both processes and a step line every logging.log_every = 4 steps
  // metrics.jsonl: a wall-clock time on every line, never going back.
  double last = 0;
  for (const auto& j : mt::test::json_lines(mt::test::read_file(run / "metrics.jsonl"))) {
    REQUIRE(j.contains("time"));
    CHECK(j["time"].get<double>() >= last);
    last = j["time"].get<double>();
  }
  CHECK(last > 1.7e9);
  fs::remove_all(dir);
}

TEST_CASE("train: SIGHUP (a closed terminal) stops like SIGTERM, with a checkpoint and exit 75", "[train][resume]") {
  const mt::test::TempDir dir("train_hup");
  const fs::path cfg = write_config(dir.path);
  const fs::path run = dir / "run";
  stop_by_signal(dir.path, cfg, run, SIGHUP, "SIGHUP");
}

TEST_CASE("train: a bad MAINTUNE_FAULT_NAN_STEPS names the variable and the bad item", "[fault][bad-input]") {
  struct Restore {
    ~Restore() {
      ::unsetenv("MAINTUNE_FAULT_NAN_STEPS");
      mt::inject_nan_loss_at_steps({});
    }
  } restore;
  for (const char* bad : {"abc", "3,x", "2,,0", "-1", "4 "}) {
    INFO(bad);
    ::setenv("MAINTUNE_FAULT_NAN_STEPS", bad, 1);
    mt::test::require_error([] { mt::load_nan_steps_from_env(); },
                            {"MAINTUNE_FAULT_NAN_STEPS='" + std::string(bad) + "'", "is not a step number"});
  }
  ::setenv("MAINTUNE_FAULT_NAN_STEPS", "3,x", 1);
  mt::test::require_error([] { mt::load_nan_steps_from_env(); }, {"'x' is not a step number"});
  mt::inject_nan_loss_at_steps({});
  ::setenv("MAINTUNE_FAULT_NAN_STEPS", "3,5", 1);
  mt::load_nan_steps_from_env();
  CHECK(mt::nan_injected(3));
  CHECK_FALSE(mt::nan_injected(4));
  CHECK(mt::nan_injected(5));
}

TEST_CASE("train: data.max_len above the model's positions is capped with a warning, never allocated", "[train][bad-input]") {
  const fs::path dir = mt::test::temp_dir("train_max_len");
  const fs::path cfg = write_config(dir);
  // 2^40 once aborted in the allocator; now the rows are capped at max_position_embeddings. The
  // warning prints however progress is shown (none once silenced every message).
  for (const std::string mode : {"lines", "none"}) {
    INFO("logging.progress=" << mode);
    const fs::path run = dir / ("run_" + mode);
    auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run) +
                                    " --set data.max_len=1099511627776 --set training.max_steps=2 --set logging.progress=" +
                                    mode);
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("data.max_len 1099511627776 exceeds the model's max_position_embeddings") != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("train: a failed start leaves no run directory it made, and a given one as it was", "[train][bad-input]") {
  const fs::path dir = mt::test::temp_dir("train_failed_start");
  const fs::path cfg = write_config(dir);
  const std::string bad_data = " --set 'data.sources[0].path=" + (dir / "missing.jsonl").string() + "'";
  const fs::path run = dir / "run";
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run) + bad_data);
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("missing.jsonl") != std::string::npos);
  CHECK_FALSE(fs::exists(run));
  // A directory that was there before stays, with what it held.
  fs::create_directories(run);
  mt::test::write_file(run / "notes.txt", "mine");
  r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run) + bad_data);
  CHECK(r.exit_code == 1);
  CHECK(mt::test::read_file(run / "notes.txt") == "mine");
  fs::remove_all(dir);
}

TEST_CASE("train: resume refuses settings that change the run and allows harmless ones", "[train][resume]") {
  const fs::path dir = mt::test::temp_dir("train_refuse");
  const fs::path cfg = write_config(dir);
  const fs::path run = dir / "run";
  const std::string base = "train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run);
  REQUIRE(mt::test::run_maintune(base + " --set training.max_steps=4").exit_code == 0);
  auto bad = mt::test::run_maintune(base + " --set training.max_steps=4 --set data.max_len=64 --set "
                                    "training.micro_batch_size=1 --resume auto");
  INFO(bad.output);
  CHECK(bad.exit_code == 1);
  CHECK(bad.output.find("data.max_len: 96 -> 64") != std::string::npos);
  CHECK(bad.output.find("training.micro_batch_size") != std::string::npos);
  auto ok = mt::test::run_maintune(base + " --set training.max_steps=4 --set logging.log_every=1 --set "
                                   "training.eval_every=3 --resume auto");
  INFO(ok.output);
  CHECK(ok.exit_code == 0);

  // A damaged newest checkpoint is reported and the previous one used.
  std::filesystem::resize_file(run / "checkpoints" / "step_0000004" / "model.safetensors", 100);
  auto skip = mt::test::run_maintune(base + " --set training.max_steps=4 --resume auto");
  INFO(skip.output);
  CHECK(skip.exit_code == 0);
  CHECK(skip.output.find("skipping damaged checkpoint") != std::string::npos);
  CHECK(skip.output.find("step_0000002") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("train: one process per run directory, and a kill's leftovers are removed at the next start", "[train][bad-input]") {
  const fs::path dir = mt::test::temp_dir("train_lock");
  const fs::path cfg = write_config(dir);
  const fs::path run = dir / "run";
  // A run long enough to be still running while a second one tries the same directory.
  const std::string args = "train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run);
  const pid_t pid = start_maintune(args + " --set training.max_steps=100000", dir / "pid", dir / "rc", dir / "log1");
  wait_for_lines(run / "metrics.jsonl", 3);
  auto second = mt::test::run_maintune(args + " --set training.max_steps=100000 --resume auto");
  INFO(second.output);
  CHECK(second.exit_code == 1);
  CHECK(second.output.find(run.string() + ": this run directory is in use by another maintune process (pid " +
                           std::to_string(pid) + ")") != std::string::npos);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  wait_for_file(dir / "rc");
  // A checkpoint to resume from (which steps are kept depends on how far the run got: keep_last).
  REQUIRE(mt::has_checkpoints(run));

  // What kills during writes leave; all of it goes at the next start, and nothing else does.
  const std::vector<fs::path> leftovers = {run / "config.yaml.tmp.4242", run / ".final.tmp-4242", run / "final.old-4242",
                                           run / "checkpoints" / ".tmp-step_0000006-4242"};
  for (const auto& p : leftovers) {
    if (p.filename().string().find(".tmp.") != std::string::npos)
      mt::test::write_file(p, "half");
    else
      fs::create_directories(p / "inner");
  }
  mt::test::write_file(run / "notes.tmp", "mine");
  fs::create_directories(run / "checkpoints" / "step_99999999999999999999");  // not a step number: ignored
  auto again = mt::test::run_maintune(args + " --set training.max_steps=100000 --resume auto",
                                      "MAINTUNE_FAULT_KILL_AT=train.checkpoint:1");
  INFO(again.output);
  CHECK(again.exit_code == 137);
  CHECK(again.output.find("resuming from") != std::string::npos);
  for (const auto& p : leftovers) CHECK_FALSE(fs::exists(p));
  CHECK(mt::test::read_file(run / "notes.tmp") == "mine");
  CHECK(fs::exists(run / "checkpoints" / "step_99999999999999999999"));
  fs::remove_all(dir);
}

TEST_CASE("dir lock: a second holder is refused with the first one's pid, a released lock is free again",
          "[train][bad-input]") {
  const fs::path dir = mt::test::temp_dir("dir_lock");
  {
    const mt::DirLock first(dir, "sweep folder");
    mt::test::require_error([&] { mt::DirLock second(dir, "sweep folder"); },
                            {dir.string() + ": this sweep folder is in use by another maintune process (pid " +
                             std::to_string(::getpid()) + ")"});
    CHECK(mt::is_empty_but_for_lock(dir));
    // A pipeline run directory held by another process: `maintune pipeline` is refused before it
    // writes anything there.
    auto r = mt::test::run_maintune("pipeline --config " + mt::test::quoted(mt::test::demo_config()) + " --run-dir " +
                                    mt::test::quoted(dir) + mt::test::kSmallDemoSets);
    INFO(r.output);
    CHECK(r.exit_code == 1);
    CHECK(r.output.find("this pipeline run directory is in use by another maintune process (pid " +
                        std::to_string(::getpid()) + ")") != std::string::npos);
    CHECK(mt::is_empty_but_for_lock(dir));
  }
  { const mt::DirLock again(dir, "sweep folder"); }  // released with its holder
  mt::test::write_file(dir / "notes.txt", "x");
  CHECK_FALSE(mt::is_empty_but_for_lock(dir));
  fs::remove_all(dir);
}

TEST_CASE("train: a checkpoint whose trainer_state.json or config.yaml changed is never resumed", "[train][resume]") {
  const fs::path dir = mt::test::temp_dir("train_state_hash");
  const fs::path cfg = write_config(dir);
  const fs::path run = dir / "run";
  const std::string args = "train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run);
  const std::string kill_at_second = "MAINTUNE_FAULT_KILL_AT=train.checkpoint:2";  // after step 4's checkpoint
  REQUIRE(mt::test::run_maintune(args, kill_at_second).exit_code == 137);
  const fs::path newest = run / "checkpoints" / "step_0000004";
  // One digit of the data cursor's step changed: valid JSON, a different run if resumed.
  std::string flipped = mt::test::read_file(newest / "trainer_state.json");
  const size_t cursor = flipped.find("\"data_cursor\"");
  REQUIRE(cursor != std::string::npos);
  const size_t digit = flipped.find("\"step\": ", cursor);
  REQUIRE(digit != std::string::npos);
  char& c = flipped[digit + 8];
  c = c == '1' ? '2' : '1';
  mt::test::write_file(newest / "trainer_state.json", flipped);
  auto r = mt::test::run_maintune(args + " --resume auto", kill_at_second);
  INFO(r.output);
  CHECK(r.output.find("skipping damaged checkpoint " + newest.string()) != std::string::npos);
  CHECK(r.output.find("trainer_state.json: content hash differs") != std::string::npos);
  CHECK(r.output.find("resuming from " + (run / "checkpoints" / "step_0000002").string()) != std::string::npos);

  // The same for the config a checkpoint resumes with (the newest is now step 6).
  const fs::path yaml = run / "checkpoints" / "step_0000006" / "config.yaml";
  std::string text = mt::test::read_file(yaml);
  const size_t at = text.find("lr: 0.003");
  REQUIRE(at != std::string::npos);
  text.replace(at, 9, "lr: 0.004");
  mt::test::write_file(yaml, text);
  r = mt::test::run_maintune(args + " --resume auto", kill_at_second);
  INFO(r.output);
  CHECK(r.output.find("config.yaml: content hash differs") != std::string::npos);
  CHECK(r.output.find("resuming from " + (run / "checkpoints" / "step_0000004").string()) != std::string::npos);

  // metrics.jsonl deleted: the resumed run (from step 8) starts a new one, and a second resume
  // (from step 12) continues it.
  fs::remove(run / "metrics.jsonl");
  REQUIRE(mt::test::run_maintune(args + " --resume auto", kill_at_second).exit_code == 137);
  r = mt::test::run_maintune(args + " --resume auto");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto steps = step_lines(run);
  REQUIRE(!steps.empty());
  CHECK(steps.front()["step"] == 9);
  CHECK(steps.back()["step"] == 16);
  CHECK(steps.size() == 8);
  fs::remove_all(dir);
}

TEST_CASE("train: NaN losses are skipped and counted - too many in a row stop the run", "[train]") {
  const fs::path dir = mt::test::temp_dir("train_nan");
  const fs::path cfg = write_config(dir);
  const std::string base = "train --config " + mt::test::quoted(cfg) + " --set training.max_steps=6";
  auto r = mt::test::run_maintune(base + " --run-dir " + mt::test::quoted(dir / "one"), "MAINTUNE_FAULT_NAN_STEPS=3");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto steps = step_lines(dir / "one");
  REQUIRE(steps.size() == 6);
  CHECK(steps[2]["loss"].is_null());  // NaN is written as null in JSON
  CHECK(steps[2]["skipped_steps"] == 1);
  CHECK(steps[5]["skipped_steps"] == 1);
  CHECK(r.output.find("update skipped") != std::string::npos);

  auto stop = mt::test::run_maintune(
      base + " --set training.max_consecutive_nonfinite=3 --run-dir " + mt::test::quoted(dir / "three"),
      "MAINTUNE_FAULT_NAN_STEPS=2,3,4");
  INFO(stop.output);
  CHECK(stop.exit_code == 1);
  CHECK(stop.output.find("3 steps in a row had a non-finite loss") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("train: an unwritable run directory is a clear error", "[train]") {
  const fs::path dir = mt::test::temp_dir("train_unwritable");
  const fs::path cfg = write_config(dir);
  mt::test::write_file(dir / "a_file", "x");
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " +
                                  mt::test::quoted(dir / "a_file" / "run"));
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("cannot create the run directory") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("train: final/ loads in transformers and gives our logits", "[train][python]") {
  const fs::path dir = mt::test::temp_dir("train_export");
  const fs::path cfg = write_config(dir);
  const fs::path run = dir / "run";
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run) +
                                  " --set training.max_steps=3");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const mt::LoadedModel m = mt::load_model_dir(run / "final", at::kCPU);
  check_transformers_logits(m, run / "final", dir, 20);

  // It chats as trained: transformers renders the template the run used (llama3) to our ids, and
  // generation_config.json stops at <|eot_id|> as well as at the model's eos.
  const mt::Tokenizer tok = mt::Tokenizer::load(run / "final");
  const std::vector<mt::ChatMessage> chat = {{"system", "Be brief."}, {"user", "Reverse apple."}, {"assistant", "elppa"}};
  nlohmann::json cases = nlohmann::json::array();
  for (const size_t n : {size_t{2}, size_t{3}}) {
    const std::vector<mt::ChatMessage> head(chat.begin(), chat.begin() + static_cast<long>(n));
    nlohmann::json messages = nlohmann::json::array();
    for (const auto& m : head) messages.push_back({{"role", m.role}, {"content", m.content}});
    cases.push_back({{"name", std::to_string(n)}, {"messages", messages}, {"add_generation_prompt", n == 2},
                     {"ids", mt::render_chat(tok, "llama3", head, false, n == 2).ids}});
  }
  mt::test::write_file(dir / "cases.json", cases.dump());
  auto chat_check = mt::test::run_command("HF_HUB_OFFLINE=1 " + std::string(MT_PYTHON) + " " + MT_SOURCE_DIR +
                                          "/scripts/check_chat_export.py " + mt::test::quoted(run / "final") + " " +
                                          mt::test::quoted(dir / "cases.json") + " 2>&1");
  INFO(chat_check.output);
  CHECK(chat_check.exit_code == 0);
  const auto res = mt::test::json_lines(chat_check.output);
  REQUIRE_FALSE(res.empty());
  const int64_t eot = tok.special().by_text.at("<|eot_id|>");
  CHECK(res.back()["eos_token_id"] == nlohmann::json::array({eot, m.model.config.eos_token_ids.at(0)}));
  fs::remove_all(dir);
}

TEST_CASE("train: export --checkpoint writes final/'s files for the last step, and any step loads in transformers",
          "[train][export][python]") {
  const fs::path dir = mt::test::temp_dir("train_export_ckpt");
  const fs::path cfg = write_config(dir);
  const fs::path run = dir / "run";
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run) +
                                  " training.max_steps=4 output.keep_last=0");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path step2 = run / "checkpoints" / "step_0000002", step4 = run / "checkpoints" / "step_0000004";
  const auto export_cmd = [&](const fs::path& ckpt, const fs::path& out) {
    return mt::test::run_maintune("export --checkpoint " + mt::test::quoted(ckpt) + " --out " + mt::test::quoted(out));
  };
  // The last step's checkpoint exports to exactly the files final/ has.
  auto e4 = export_cmd(step4, dir / "out4");
  INFO(e4.output);
  REQUIRE(e4.exit_code == 0);
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(run / "final")) {
    INFO(entry.path().filename().string());
    CHECK(mt::test::read_file(entry.path()) == mt::test::read_file(dir / "out4" / entry.path().filename()));
    ++files;
  }
  CHECK(files == static_cast<size_t>(std::distance(fs::directory_iterator(dir / "out4"), fs::directory_iterator())));
  CHECK(files >= 6);  // config, generation config, weights, tokenizer.json, tokenizer_config.json, chat_template.jinja

  // An earlier step: the checkpoint's weights as they are, and transformers gives our logits.
  auto e2 = export_cmd(step2, dir / "out2");
  INFO(e2.output);
  REQUIRE(e2.exit_code == 0);
  const mt::LoadedModel m = mt::load_model_dir(dir / "out2", at::kCPU);
  const mt::LoadedCheckpoint ckpt = mt::load_checkpoint(step2);
  for (const auto& [name, t] : m.model.params) {
    INFO(name);
    CHECK(at::equal(t, ckpt.weights.at(name)));
  }
  check_transformers_logits(m, dir / "out2", dir, 12);

  // Bad input: an output that holds files, a folder that is no checkpoint, a bad dtype.
  auto again = export_cmd(step2, dir / "out2");
  CHECK(again.exit_code == 1);
  CHECK(again.output.find((dir / "out2").string()) != std::string::npos);
  auto not_ckpt = export_cmd(run / "final", dir / "out_bad");
  CHECK(not_ckpt.exit_code == 1);
  CHECK(not_ckpt.output.find("final") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "out_bad"));
  CHECK(mt::test::run_maintune("export --checkpoint " + mt::test::quoted(step2) + " --out " +
                               mt::test::quoted(dir / "out3") + " --dtype fp8").exit_code == 2);
  fs::remove_all(dir);
}

TEST_CASE("train: pure bf16 with activation checkpointing trains and checkpoints bf16 weights", "[train]") {
  const fs::path dir = mt::test::temp_dir("train_bf16");
  const fs::path cfg = write_config(dir);
  const fs::path run = dir / "run";
  auto r = mt::test::run_maintune("train --config " + mt::test::quoted(cfg) + " --run-dir " + mt::test::quoted(run) +
                                  " --set training.max_steps=4 --set model.dtype=bfloat16 --set model.pure_bf16=true"
                                  " --set model.activation_checkpointing=true --set output.export_dtype=bfloat16");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto steps = step_lines(run);
  REQUIRE(steps.size() == 4);
  for (const auto& s : steps) CHECK(std::isfinite(s["loss"].get<double>()));
  CHECK(steps[3]["loss"].get<double>() < steps[0]["loss"].get<double>());
  const auto w = mt::load_safetensors_dir(run / "checkpoints" / "step_0000004");
  CHECK(w.at("model.embed_tokens.weight").scalar_type() == at::kBFloat16);
  CHECK(mt::load_safetensors_dir(run / "final").at("lm_head.weight").scalar_type() == at::kBFloat16);
  fs::remove_all(dir);
}
