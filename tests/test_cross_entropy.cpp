// Chunked linear cross-entropy (trainer/engine/cross_entropy.h) against the full-logits reference: loss
// and gradients for several chunk sizes in fp32 and bf16, ignored rows, all/no rows trained on,
// bad targets, a scaled grad_output, composition with upstream autograd ops, and no-grad mode.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "trainer/engine/cross_entropy.h"
#include "trainer/data/packing.h"
#include "tests/test_util.h"

namespace {

struct Inputs {
  at::Tensor hidden, weight, targets;  // fp32, no grad; targets with some kIgnoreIndex rows
};

Inputs make_inputs(int64_t n, int64_t h, int64_t v, double ignore_fraction, uint64_t seed) {
  at::manual_seed(seed);
  Inputs in;
  in.hidden = at::randn({n, h});
  in.weight = at::randn({v, h}) * 0.5;
  in.targets = at::randint(0, v, {n}, at::kLong);
  in.targets.masked_fill_(at::rand({n}) < ignore_fraction, mt::kIgnoreIndex);
  return in;
}

struct Result {
  double loss = 0;
  at::Tensor grad_hidden, grad_weight;  // fp32 copies
};

// Loss and gradients of fn(hidden, weight, targets) * scale, from fresh leaves in `dtype`.
template <typename Fn>
Result run(Fn fn, const Inputs& in, at::ScalarType dtype, double scale = 1.0) {
  at::Tensor h = in.hidden.detach().to(dtype).clone().set_requires_grad(true);
  at::Tensor w = in.weight.detach().to(dtype).clone().set_requires_grad(true);
  at::Tensor loss = fn(h, w, in.targets);
  REQUIRE(loss.scalar_type() == at::kFloat);
  REQUIRE(loss.dim() == 0);
  (loss * scale).backward();
  REQUIRE(h.grad().scalar_type() == dtype);
  REQUIRE(w.grad().scalar_type() == dtype);
  return {loss.item<double>(), h.grad().to(at::kFloat), w.grad().to(at::kFloat)};
}

auto chunked(int64_t chunk_rows) {
  return [chunk_rows](const at::Tensor& h, const at::Tensor& w, const at::Tensor& t) {
    return mt::chunked_linear_cross_entropy(h, w, t, chunk_rows);
  };
}

auto reference() {
  return [](const at::Tensor& h, const at::Tensor& w, const at::Tensor& t) {
    return mt::linear_cross_entropy_reference(h, w, t);
  };
}

// max |a - b| relative to max |b| (or absolute when b is all zeros).
double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(b.abs().max().item<double>(), 1e-30);
  return (a - b).abs().max().item<double>() / scale;
}

void check_close(const Result& got, const Result& want, double loss_tol, double grad_tol) {
  CHECK(std::abs(got.loss - want.loss) <= loss_tol * std::abs(want.loss));
  CHECK(rel_diff(got.grad_hidden, want.grad_hidden) <= grad_tol);
  CHECK(rel_diff(got.grad_weight, want.grad_weight) <= grad_tol);
}

}  // namespace

TEST_CASE("chunked cross-entropy: fp32 matches the reference for any chunk size", "[cross_entropy]") {
  const int64_t n = 29;
  const Inputs in = make_inputs(n, 16, 37, 0.3, 1);
  const at::Tensor ignored = in.targets == mt::kIgnoreIndex;
  REQUIRE(ignored.any().item<bool>());
  REQUIRE_FALSE(ignored.all().item<bool>());
  const Result want = run(reference(), in, at::kFloat);
  for (int64_t chunk : {int64_t{1}, int64_t{3}, n, n + 7, int64_t{4096}}) {
    INFO("chunk_rows " << chunk);
    const Result got = run(chunked(chunk), in, at::kFloat);
    check_close(got, want, 1e-5, 1e-5);
    // Rows that are not trained on get exactly zero gradient.
    CHECK(got.grad_hidden.index({ignored}).abs().max().item<double>() == 0.0);
  }
}

TEST_CASE("chunked cross-entropy: bf16 inputs stay close to the reference", "[cross_entropy]") {
  // Same bf16 logits on both sides and the softmax in fp32, so the losses agree to fp32 summation
  // order; the gradients are rounded to bf16 (2^-8 relative) on both sides, the reference after
  // one bf16 GEMM, ours after fp32 accumulation: bound 1e-2 of the largest gradient.
  const Inputs in = make_inputs(40, 32, 53, 0.25, 2);
  const Result want = run(reference(), in, at::kBFloat16);
  for (int64_t chunk : {int64_t{1}, int64_t{7}, int64_t{40}, int64_t{100}}) {
    INFO("chunk_rows " << chunk);
    check_close(run(chunked(chunk), in, at::kBFloat16), want, 1e-4, 1e-2);
  }
}

TEST_CASE("chunked cross-entropy: no rows trained on, and all rows trained on", "[cross_entropy]") {
  SECTION("all ignored: loss 0, zero gradients") {
    Inputs in = make_inputs(6, 8, 11, 0.0, 3);
    in.targets.fill_(mt::kIgnoreIndex);
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      const Result got = run(chunked(4), in, dtype);
      CHECK(got.loss == 0.0);
      CHECK(got.grad_hidden.abs().max().item<double>() == 0.0);
      CHECK(got.grad_weight.abs().max().item<double>() == 0.0);
      CHECK(run(reference(), in, dtype).loss == 0.0);
    }
  }
  SECTION("none ignored") {
    const Inputs in = make_inputs(12, 8, 11, 0.0, 4);
    REQUIRE((in.targets != mt::kIgnoreIndex).all().item<bool>());
    check_close(run(chunked(5), in, at::kFloat), run(reference(), in, at::kFloat), 1e-5, 1e-5);
  }
  SECTION("no rows at all") {
    const Inputs in = make_inputs(0, 8, 11, 0.0, 5);
    CHECK(run(chunked(5), in, at::kFloat).loss == 0.0);
  }
}

TEST_CASE("chunked cross-entropy: bad inputs are clear errors", "[cross_entropy]") {
  Inputs in = make_inputs(5, 4, 7, 0.0, 6);
  SECTION("target == vocab") {
    in.targets[2] = 7;
    mt::test::require_error([&] { mt::chunked_linear_cross_entropy(in.hidden, in.weight, in.targets, 2); },
                            {"target 7", "out of range", "[0, 7)"});
  }
  SECTION("negative target other than the ignore index") {
    in.targets[4] = -1;
    at::Tensor h = in.hidden.clone().set_requires_grad(true);
    mt::test::require_error([&] { mt::chunked_linear_cross_entropy(h, in.weight, in.targets, 2); },
                            {"target -1", "out of range"});
  }
  SECTION("dtype mismatch") {
    mt::test::require_error(
        [&] { mt::chunked_linear_cross_entropy(in.hidden, in.weight.to(at::kBFloat16), in.targets); },
        {"Float", "BFloat16"});
  }
  SECTION("shapes") {
    mt::test::require_error([&] { mt::chunked_linear_cross_entropy(in.hidden, in.weight.t(), in.targets); },
                            {"[5, 4]", "[4, 7]"});
    mt::test::require_error(
        [&] { mt::chunked_linear_cross_entropy(in.hidden, in.weight, in.targets.narrow(0, 0, 4)); }, {"targets"});
    mt::test::require_error([&] { mt::chunked_linear_cross_entropy(in.hidden, in.weight, in.targets, 0); },
                            {"chunk_rows"});
  }
}

TEST_CASE("chunked cross-entropy: backward scales by grad_output", "[cross_entropy]") {
  const Inputs in = make_inputs(10, 8, 13, 0.2, 7);
  const Result unit = run(chunked(3), in, at::kFloat);
  const Result quarter = run(chunked(3), in, at::kFloat, 0.25);
  CHECK(at::equal(quarter.grad_hidden, unit.grad_hidden * 0.25));  // a power of two: exact
  CHECK(at::equal(quarter.grad_weight, unit.grad_weight * 0.25));
  check_close(run(chunked(3), in, at::kFloat, 0.3), run(reference(), in, at::kFloat, 0.3), 1e-5, 1e-5);
}

TEST_CASE("chunked cross-entropy: composes with autograd upstream", "[cross_entropy]") {
  // hidden from a differentiable op on a leaf; weight a dtype conversion of an fp32 leaf (the
  // bf16 compute copy of fp32 master weights): gradients reach both fp32 leaves.
  const Inputs in = make_inputs(17, 12, 19, 0.3, 8);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    INFO("dtype " << c10::toString(dtype));
    auto grads = [&](auto fn) {
      at::Tensor x = in.hidden.clone().set_requires_grad(true);
      at::Tensor w32 = in.weight.clone().set_requires_grad(true);
      const at::Tensor hidden = at::tanh(x * 2 + 1).to(dtype);
      const at::Tensor weight = w32.to(dtype);
      fn(hidden, weight, in.targets).backward();
      REQUIRE(x.grad().defined());
      REQUIRE(w32.grad().defined());
      REQUIRE(w32.grad().scalar_type() == at::kFloat);
      return std::pair{x.grad(), w32.grad()};
    };
    const auto [gx, gw] = grads(chunked(4));
    const auto [rx, rw] = grads(reference());
    const double tol = dtype == at::kFloat ? 1e-5 : 1e-2;
    CHECK(rel_diff(gx, rx) <= tol);
    CHECK(rel_diff(gw, rw) <= tol);
  }
}

TEST_CASE("chunked cross-entropy: non-contiguous inputs", "[cross_entropy]") {
  const Inputs base = make_inputs(11, 6, 9, 0.3, 9);
  auto grads = [&](auto fn) {
    // Transposed views of leaves and strided targets.
    at::Tensor hl = base.hidden.t().contiguous().set_requires_grad(true);  // [H, N]
    at::Tensor wl = base.weight.t().contiguous().set_requires_grad(true);  // [H, V]
    const at::Tensor targets = at::stack({base.targets, base.targets}, 1).select(1, 0);
    REQUIRE_FALSE(targets.is_contiguous());
    at::Tensor loss = fn(hl.t(), wl.t(), targets);
    loss.backward();
    return Result{loss.item<double>(), hl.grad(), wl.grad()};
  };
  check_close(grads(chunked(2)), grads(reference()), 1e-5, 1e-5);
}

TEST_CASE("chunked cross-entropy: only the gradients that are needed", "[cross_entropy]") {
  const Inputs in = make_inputs(9, 8, 10, 0.2, 10);
  const Result want = run(reference(), in, at::kFloat);
  // Only the weight requires grad (e.g. frozen upstream).
  at::Tensor w = in.weight.clone().set_requires_grad(true);
  at::Tensor loss = mt::chunked_linear_cross_entropy(in.hidden, w, in.targets, 4);
  REQUIRE(loss.requires_grad());
  loss.backward();
  CHECK(rel_diff(w.grad(), want.grad_weight) <= 1e-5);

  SECTION("under NoGradGuard: the loss, no graph") {
    at::Tensor h = in.hidden.clone().set_requires_grad(true);
    c10::NoGradGuard no_grad;
    const at::Tensor l = mt::chunked_linear_cross_entropy(h, w, in.targets, 4);
    CHECK_FALSE(l.requires_grad());
    CHECK_FALSE(static_cast<bool>(l.grad_fn()));
    CHECK(l.item<double>() == Approx(want.loss).epsilon(1e-5));
  }
  SECTION("inputs that do not require grad: no graph") {
    const at::Tensor l = mt::chunked_linear_cross_entropy(in.hidden, in.weight, in.targets, 4);
    CHECK_FALSE(l.requires_grad());
    CHECK(l.item<double>() == Approx(want.loss).epsilon(1e-5));
  }
}
