// [gpu] training ops on CUDA, for the GPU machine (the binary exits 77 = skipped elsewhere):
// chunked linear cross-entropy against its full-logits reference (bf16 takes the CUDA-only GEMM
// with fp32 output), fused AdamW against the per-tensor reference, and clip_grad_norm against CPU.
#include <ATen/ATen.h>

#include <cstdio>

#include "trainer/engine/cross_entropy.h"
#include "trainer/engine/optimizer.h"
#include "trainer/data/packing.h"
#include "tests/test_util.h"

namespace {

double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor fa = a.to(at::kFloat), fb = b.to(at::kFloat);
  return (fa - fb).abs().max().item<double>() / std::max(fb.abs().max().item<double>(), 1e-30);
}

}  // namespace

TEST_CASE("gpu: chunked cross-entropy on CUDA matches the reference", "[gpu]") {
  at::manual_seed(1);
  const int64_t n = 300, h = 64, v = 1000;
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  const at::Tensor hidden0 = at::randn({n, h}, cuda), weight0 = at::randn({v, h}, cuda) * 0.2;
  at::Tensor targets = at::randint(0, v, {n}, cuda.dtype(at::kLong));
  targets.masked_fill_(at::rand({n}, cuda) < 0.3, mt::kIgnoreIndex);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    auto run = [&](auto fn) {
      at::Tensor hd = hidden0.to(dtype).clone().set_requires_grad(true);
      at::Tensor w = weight0.to(dtype).clone().set_requires_grad(true);
      at::Tensor loss = fn(hd, w);
      (loss * 0.5).backward();
      return std::tuple{loss.item<double>(), hd.grad(), w.grad()};
    };
    const auto [ref_loss, ref_gh, ref_gw] =
        run([&](const at::Tensor& hd, const at::Tensor& w) { return mt::linear_cross_entropy_reference(hd, w, targets); });
    for (int64_t chunk : {int64_t{7}, int64_t{128}, int64_t{4096}}) {
      const auto [loss, gh, gw] = run([&](const at::Tensor& hd, const at::Tensor& w) {
        return mt::chunked_linear_cross_entropy(hd, w, targets, chunk);
      });
      const double dl = std::abs(loss - ref_loss) / std::abs(ref_loss), dh = rel_diff(gh, ref_gh), dw = rel_diff(gw, ref_gw);
      std::printf("gpu chunked CE %-8s chunk %4ld: loss rel %.3g, grad_hidden %.3g, grad_weight %.3g\n",
                  c10::toString(dtype), static_cast<long>(chunk), dl, dh, dw);
      REQUIRE(gh.scalar_type() == dtype);
      REQUIRE(gw.scalar_type() == dtype);
      const double tol = dtype == at::kFloat ? 1e-5 : 1e-2;
      CHECK(dl <= (dtype == at::kFloat ? 1e-5 : 1e-4));
      CHECK(dh <= tol);
      CHECK(dw <= tol);
    }
  }
}

TEST_CASE("gpu: fused AdamW on CUDA matches the reference and the CPU kernel", "[gpu]") {
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    at::manual_seed(2);
    const std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {{"w", {64, 32}}, {"b", {32}}};
    std::vector<std::vector<std::pair<std::string, at::Tensor>>> runs(3);  // CUDA fused, CUDA reference, CPU fused
    for (const auto& [name, shape] : shapes) {
      const at::Tensor init = at::randn(shape).to(dtype);
      runs[0].emplace_back(name, init.cuda().set_requires_grad(true));
      runs[1].emplace_back(name, init.cuda().set_requires_grad(true));
      runs[2].emplace_back(name, init.clone().set_requires_grad(true));
    }
    std::vector<mt::AdamW> opts;
    for (int r = 0; r < 3; ++r) {
      mt::AdamWOptions o;
      o.weight_decay = 0.1;
      o.fused = r != 1;
      opts.emplace_back(runs[r], o);
    }
    for (int step = 0; step < 5; ++step) {
      std::vector<at::Tensor> grads;
      for (const auto& [name, shape] : shapes) grads.push_back(at::randn(shape).to(dtype));
      for (int r = 0; r < 3; ++r) {
        for (size_t i = 0; i < grads.size(); ++i)
          runs[r][i].second.mutable_grad() = grads[i].to(runs[r][i].second.device());
        opts[r].step(1e-2);
      }
    }
    for (size_t i = 0; i < shapes.size(); ++i) {
      const double ref = rel_diff(runs[0][i].second.cpu(), runs[1][i].second.cpu());
      const double cpu = rel_diff(runs[0][i].second.cpu(), runs[2][i].second);
      std::printf("gpu AdamW %-8s %s: fused vs reference %.3g, CUDA vs CPU fused %.3g\n", c10::toString(dtype),
                  shapes[i].first.c_str(), ref, cpu);
      const double tol = dtype == at::kFloat ? 1e-6 : 2e-2;  // bf16: a parameter may round one ulp apart
      CHECK(ref <= tol);
      CHECK(cpu <= tol);
    }
  }
}

TEST_CASE("gpu: clip_grad_norm on CUDA equals CPU", "[gpu]") {
  at::manual_seed(3);
  const at::Tensor g1 = at::randn({100, 30}), g2 = at::randn({30});
  std::vector<at::Tensor> cpu = {at::zeros({100, 30}).set_requires_grad(true), at::zeros({30}).set_requires_grad(true)};
  std::vector<at::Tensor> gpu = {cpu[0].detach().cuda().set_requires_grad(true), cpu[1].detach().cuda().set_requires_grad(true)};
  cpu[0].mutable_grad() = g1.clone();
  cpu[1].mutable_grad() = g2.clone();
  gpu[0].mutable_grad() = g1.cuda();
  gpu[1].mutable_grad() = g2.cuda();
  const double n_cpu = mt::clip_grad_norm(cpu, 1.0), n_gpu = mt::clip_grad_norm(gpu, 1.0);
  CHECK(n_gpu == Approx(n_cpu).epsilon(1e-6));
  CHECK(rel_diff(gpu[0].grad().cpu(), cpu[0].grad()) <= 1e-6);
  CHECK(rel_diff(gpu[1].grad().cpu(), cpu[1].grad()) <= 1e-6);
}
