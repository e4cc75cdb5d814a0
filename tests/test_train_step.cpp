// The training step's invariants: gradient accumulation is exactly the big batch, activation
// checkpointing changes no gradient, mixed precision puts fp32 gradients on the master weights, and
// checkpoints are atomic under a full disk.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "models/atomic_file.h"
#include "models/hf_config.h"
#include "trainer/loop/bench.h"
#include "trainer/engine/checkpoint.h"
#include "trainer/engine/mixed_precision.h"
#include "trainer/engine/optimizer.h"
#include "trainer/data/packing.h"
#include "trainer/engine/train_step.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace {

using mt::test::clear_grads;
using mt::test::eight_examples;
using mt::test::grads_of;
using mt::test::max_rel_diff;
using mt::test::rows_of;
using mt::test::tiny_model;

}  // namespace

TEST_CASE("one micro-batch of 8 and 8 accumulated micro-batches of 1 give the same gradients", "[train_step]") {
  const mt::TokenizedDataset data = eight_examples();
  mt::Transformer m = tiny_model();
  mt::StepOptions so;
  const mt::PackedBatch big = mt::make_padded_batch(data.view(), rows_of({0, 1, 2, 3, 4, 5, 6, 7}), 32);
  const int64_t tokens = big.target_tokens;
  REQUIRE(tokens > 0);
  const mt::WindowResult r_big = mt::forward_backward(m, {big}, tokens, so);
  const std::vector<at::Tensor> g_big = grads_of(m);
  clear_grads(m);

  std::vector<mt::PackedBatch> smalls;
  int64_t small_tokens = 0;
  for (int64_t i = 0; i < 8; ++i) {
    smalls.push_back(mt::make_padded_batch(data.view(), rows_of({i}), 32));
    small_tokens += smalls.back().target_tokens;
  }
  REQUIRE(small_tokens == tokens);
  const mt::WindowResult r_small = mt::forward_backward(m, smalls, tokens, so);
  const std::vector<at::Tensor> g_small = grads_of(m);
  CHECK(r_small.loss_sum == Approx(r_big.loss_sum).epsilon(1e-6));
  CHECK(max_rel_diff(g_big, g_small) < 1e-5);
  // A per-micro-batch mean (what a naive loop does) would weight short examples up: not equal.
  double nonzero = 0;
  for (const auto& g : g_big) nonzero += g.abs().sum().item<double>();
  CHECK(nonzero > 0);
}

TEST_CASE("packed rows with document masks give the same gradients as one example per row", "[train_step]") {
  const mt::TokenizedDataset data = eight_examples();
  mt::Transformer m = tiny_model();
  mt::StepOptions so;
  const mt::PackedBatch unpacked = mt::make_padded_batch(data.view(), rows_of({0, 1, 2, 3}), 32);
  mt::forward_backward(m, {unpacked}, unpacked.target_tokens, so);
  const std::vector<at::Tensor> g_unpacked = grads_of(m);
  clear_grads(m);
  const mt::PackedBatch packed = mt::make_padded_batch(data.view(), {{0, 1, 2}, {3}}, 32);
  REQUIRE(packed.target_tokens == unpacked.target_tokens);
  mt::forward_backward(m, {packed}, packed.target_tokens, so);
  CHECK(max_rel_diff(g_unpacked, grads_of(m)) < 1e-5);
}

TEST_CASE("activation checkpointing leaves loss and gradients unchanged", "[train_step]") {
  const mt::TokenizedDataset data = eight_examples();
  for (const at::ScalarType compute : {at::kFloat, at::kBFloat16}) {
    INFO("compute dtype " << c10::toString(compute));
    mt::Transformer m = tiny_model();
    mt::StepOptions so;
    so.compute_dtype = compute;
    const mt::PackedBatch b = mt::make_padded_batch(data.view(), {{0, 1}, {2, 3}, {4}}, 40);
    const mt::WindowResult plain = mt::forward_backward(m, {b}, b.target_tokens, so);
    const std::vector<at::Tensor> g_plain = grads_of(m);
    clear_grads(m);
    so.activation_checkpointing = true;
    const mt::WindowResult ckpt = mt::forward_backward(m, {b}, b.target_tokens, so);
    const std::vector<at::Tensor> g_ckpt = grads_of(m);
    CHECK(ckpt.loss_sum == plain.loss_sum);
    CHECK(max_rel_diff(g_plain, g_ckpt) == 0.0);  // the same ops recomputed: bit-identical on CPU
    for (const auto& [name, p] : m.params) {
      INFO(name);
      REQUIRE(p.grad().defined());
      CHECK(p.grad().scalar_type() == at::kFloat);  // gradients land on the fp32 master weights
    }
  }
}

TEST_CASE("bf16 compute gradients stay close to fp32 ones", "[train_step]") {
  const mt::TokenizedDataset data = eight_examples();
  mt::Transformer m = tiny_model();
  const mt::PackedBatch b = mt::make_padded_batch(data.view(), {{0, 1}, {2, 3}, {4, 5}}, 40);
  mt::StepOptions so;
  const mt::WindowResult f32 = mt::forward_backward(m, {b}, b.target_tokens, so);
  const std::vector<at::Tensor> g32 = grads_of(m);
  clear_grads(m);
  so.compute_dtype = at::kBFloat16;
  const mt::WindowResult bf16 = mt::forward_backward(m, {b}, b.target_tokens, so);
  CHECK(std::abs(bf16.loss_sum - f32.loss_sum) / f32.loss_sum < 0.01);
  // bf16 keeps 8 mantissa bits: a loose bound on the gradient direction.
  const std::vector<at::Tensor> g16 = grads_of(m);
  double dot = 0, n32 = 0, n16 = 0;
  for (size_t i = 0; i < g32.size(); ++i) {
    dot += (g32[i] * g16[i]).sum().item<double>();
    n32 += g32[i].pow(2).sum().item<double>();
    n16 += g16[i].pow(2).sum().item<double>();
  }
  CHECK(dot / std::sqrt(n32 * n16) > 0.99);
}

TEST_CASE("a full disk during a checkpoint keeps the previous checkpoint and the latest pointer", "[train_step][checkpoint]") {
  const auto run = mt::test::temp_dir("ckpt_enospc");
  mt::Transformer m = tiny_model();
  mt::AdamW opt(m.params, {});
  mt::TrainerState s;
  s.step = 2;
  s.data_cursor = {{"epoch", 0}, {"step", 4}};
  s.schedule = {{"type", "constant"}};
  mt::save_checkpoint(run, s, m, opt, "model:\n  path: x\n", 3);
  REQUIRE(mt::test::read_file(run / "checkpoints" / "latest") == "step_0000002\n");

  s.step = 4;
  mt::inject_write_fault_after_bytes(20000);  // fails inside the weights file
  mt::test::require_error([&] { mt::save_checkpoint(run, s, m, opt, "model:\n  path: x\n", 3); },
                          {"No space left on device"});
  mt::inject_write_fault_after_bytes(-1);
  CHECK(mt::test::read_file(run / "checkpoints" / "latest") == "step_0000002\n");
  CHECK_FALSE(std::filesystem::exists(run / "checkpoints" / "step_0000004"));
  for (const auto& e : std::filesystem::directory_iterator(run / "checkpoints"))
    CHECK(e.path().filename().string().rfind(".tmp-", 0) != 0);  // no temporary folder left behind
  const auto latest = mt::load_latest_checkpoint(run, {});
  REQUIRE(latest.has_value());
  CHECK(latest->dir.filename() == "step_0000002");
  const mt::LoadedCheckpoint& c = *latest;
  CHECK(c.state.step == 2);
  CHECK(at::equal(c.weights.at("model.embed_tokens.weight"), m.embed.detach()));
  std::filesystem::remove_all(run);
}

TEST_CASE("keep_last prunes old checkpoints and damaged ones are skipped", "[train_step][checkpoint]") {
  const auto run = mt::test::temp_dir("ckpt_prune");
  mt::Transformer m = tiny_model();
  mt::AdamW opt(m.params, {});
  mt::TrainerState s;
  s.data_cursor = {{"epoch", 0}, {"step", 0}};
  s.schedule = {{"type", "constant"}};
  for (int64_t step : {1, 2, 3, 4}) {
    s.step = step;
    mt::save_checkpoint(run, s, m, opt, "{}\n", 2);
  }
  CHECK_FALSE(std::filesystem::exists(run / "checkpoints" / "step_0000002"));
  CHECK(std::filesystem::exists(run / "checkpoints" / "step_0000003"));
  CHECK(std::filesystem::exists(run / "checkpoints" / "step_0000004"));

  SECTION("a truncated weights file") {
    std::filesystem::resize_file(run / "checkpoints" / "step_0000004" / "model.safetensors", 1000);
  }
  SECTION("a flipped byte inside the tensor data") {
    const auto f = run / "checkpoints" / "step_0000004" / "optimizer.safetensors";
    std::string bytes = mt::test::read_file(f);
    bytes[bytes.size() - 7] ^= 0x40;
    mt::test::write_file(f, bytes);
  }
  SECTION("a truncated trainer_state.json") {
    const auto f = run / "checkpoints" / "step_0000004" / "trainer_state.json";
    std::filesystem::resize_file(f, 40);
  }
  std::vector<std::string> warnings;
  const auto latest = mt::load_latest_checkpoint(run, [&](const std::string& w) { warnings.push_back(w); });
  REQUIRE(latest.has_value());
  CHECK(latest->dir.filename() == "step_0000003");
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("step_0000004") != std::string::npos);
  std::filesystem::remove_all(run);
}

TEST_CASE("plain causal rows (no mask tensor) give the masked forward's hidden states", "[train_step]") {
  mt::Transformer m = tiny_model();
  c10::NoGradGuard no_grad;
  at::Tensor ids = at::randint(256, {2, 17}, at::kLong);
  at::Tensor pos = at::arange(17, at::kLong).unsqueeze(0).expand({2, 17}).contiguous();
  at::Tensor masked = mt::transformer_hidden(m, ids, pos);
  mt::ForwardOptions plain;
  plain.plain_causal = true;
  at::Tensor fast = mt::transformer_hidden(m, ids, pos, {}, nullptr, {}, plain);
  CHECK((masked - fast).abs().max().item<double>() < 1e-5);
  CHECK_THROWS(mt::transformer_hidden(m, ids, pos, at::ones({2, 17}, at::kBool), nullptr, {}, plain));
}

TEST_CASE("bench runs training steps on a named shape and reports its figures", "[train_step][bench]") {
  mt::BenchOptions o;
  o.shape = "tiny";
  o.device = "cpu";
  o.precision = "fp32";
  o.batch = 2;
  o.seq = 32;
  o.steps = 3;
  o.warmup = 1;
  const nlohmann::json r = mt::run_bench(o);
  CHECK(r["tokens_per_s"].get<double>() > 0);
  CHECK(r["peak_mem_bytes"].get<int64_t>() > 0);
  CHECK(r["mfu"].is_null());  // no known peak FLOP/s for a CPU
  CHECK(std::abs(r["loss_first"].get<double>() - std::log(1000.0)) < 0.5);  // random init: ~ln(vocab)
  CHECK(r["loss_last"].get<double>() < r["loss_first"].get<double>());  // the same batch is learned
  mt::test::require_error([] { mt::bench_shape("llama9-1b"); }, {"unknown bench shape", "llama3-1b"});
}
