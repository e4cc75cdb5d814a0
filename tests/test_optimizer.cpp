// AdamW and gradient clipping (trainer/engine/optimizer.h): fused and reference paths against each other,
// against a two-step example worked out by hand, and against PyTorch's torch.optim.AdamW and
// clip_grad_norm_ (tests/adamw_reference.py); weight decay only on >= 2-dim tensors; bitwise
// resume through a safetensors checkpoint; load_state errors; pure-bf16 parameters.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "models/safetensors.h"
#include "trainer/engine/optimizer.h"
#include "tests/test_util.h"

namespace {

using Params = std::vector<std::pair<std::string, at::Tensor>>;

// Two matrices (decayed) and two vectors (not decayed), random, as leaves that require grad.
Params make_params(uint64_t seed, at::ScalarType dtype = at::kFloat) {
  at::manual_seed(seed);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"w1", {8, 5}}, {"norm", {5}}, {"w2", {4, 6}}, {"bias", {6}}};
  Params out;
  for (const auto& [name, shape] : shapes) out.emplace_back(name, at::randn(shape).to(dtype).set_requires_grad(true));
  return out;
}

// Fresh leaves with the same values (and dtype, unless one is given).
Params clone_params(const Params& ps, std::optional<at::ScalarType> dtype = std::nullopt) {
  Params out;
  for (const auto& [name, p] : ps)
    out.emplace_back(name, p.detach().to(dtype.value_or(p.scalar_type())).clone().set_requires_grad(true));
  return out;
}

// grads[step][param]: random, with a scale that changes from step to step.
std::vector<std::vector<at::Tensor>> make_grads(const Params& ps, int steps, uint64_t seed) {
  at::manual_seed(seed);
  std::vector<std::vector<at::Tensor>> out(steps);
  for (int s = 0; s < steps; ++s)
    for (const auto& [name, p] : ps) out[s].push_back(at::randn(p.sizes()) * (0.1 + 0.5 * s));
  return out;
}

std::vector<double> lrs(int steps) {
  std::vector<double> out;
  for (int s = 0; s < steps; ++s) out.push_back(1e-2 * (1.0 + 0.1 * s));
  return out;
}

void run_steps(mt::AdamW& opt, Params& ps, const std::vector<std::vector<at::Tensor>>& grads,
               const std::vector<double>& lr, int from, int to) {
  for (int s = from; s < to; ++s) {
    for (size_t i = 0; i < ps.size(); ++i) ps[i].second.mutable_grad() = grads[s][i].to(ps[i].second.scalar_type());
    opt.step(lr[s]);
  }
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>();
}

mt::AdamWOptions options(bool fused, double weight_decay = 0.1) {
  mt::AdamWOptions o;
  o.beta1 = 0.9;
  o.beta2 = 0.95;
  o.eps = 1e-8;
  o.weight_decay = weight_decay;
  o.fused = fused;
  return o;
}

std::vector<at::Tensor> tensors_of(const Params& ps) {
  std::vector<at::Tensor> out;
  for (const auto& [name, p] : ps) out.push_back(p);
  return out;
}

}  // namespace

TEST_CASE("AdamW: fused and reference paths agree over 10 steps", "[optimizer]") {
  const Params init = make_params(1);
  const auto grads = make_grads(init, 10, 2);
  Params fused = clone_params(init), ref = clone_params(init);
  mt::AdamW opt_fused(fused, options(true)), opt_ref(ref, options(false));
  run_steps(opt_fused, fused, grads, lrs(10), 0, 10);
  run_steps(opt_ref, ref, grads, lrs(10), 0, 10);
  REQUIRE(opt_fused.step() == 10);
  REQUIRE(opt_ref.step() == 10);
  // The fused kernel computes each element in one vectorized expression, the reference op by op:
  // they differ by fp32 rounding, measured <= 3e-8 on the parameters and 4.8e-7 (one ulp) on
  // exp_avg_sq, whose values exceed 1. Bound: 1e-6, relative to the tensor's largest value when > 1.
  auto close = [](const at::Tensor& a, const at::Tensor& b) {
    return max_diff(a, b) <= 1e-6 * std::max(1.0, b.abs().max().item<double>());
  };
  const auto sf = opt_fused.state_tensors(), sr = opt_ref.state_tensors();
  for (size_t i = 0; i < init.size(); ++i) {
    const std::string& name = init[i].first;
    INFO("param " << name);
    CHECK(close(fused[i].second, ref[i].second));
    CHECK(max_diff(fused[i].second, init[i].second) > 1e-3);  // it did move
    CHECK(close(sf.at("exp_avg." + name), sr.at("exp_avg." + name)));
    CHECK(close(sf.at("exp_avg_sq." + name), sr.at("exp_avg_sq." + name)));
  }
}

TEST_CASE("AdamW: a two-step example worked out by hand", "[optimizer]") {
  // lr 0.1, weight decay 0.1, betas (0.9, 0.99), eps 1e-8; grads 0.5 then -0.25 for both a [1, 1]
  // matrix (decayed, starts at 1) and a [1] vector (not decayed, starts at 2).
  // Step 1: decay 1 * (1 - 0.01) = 0.99; m = 0.1 * 0.5 = 0.05; v = 0.01 * 0.25 = 0.0025;
  //   m / (1 - 0.9) = 0.5, v / (1 - 0.99) = 0.25, update = 0.1 * 0.5 / (sqrt(0.25) + 1e-8) = 0.099999998
  //   -> matrix 0.890000002, vector 1.900000002.
  // Step 2: decay 0.890000002 * 0.99 = 0.88110000198; m = 0.9 * 0.05 + 0.1 * -0.25 = 0.02;
  //   v = 0.99 * 0.0025 + 0.01 * 0.0625 = 0.0031; bias corrections 1 - 0.81 = 0.19, 1 - 0.9801 = 0.0199;
  //   update = 0.1 * (0.02 / 0.19) / (sqrt(0.0031 / 0.0199) + 1e-8) = 0.02666994223
  //   -> matrix 0.85443005975, vector 1.87333005977.
  const double expected_matrix[] = {0.890000002, 0.85443005975};
  const double expected_vector[] = {1.900000002, 1.87333005977};
  for (bool fused : {true, false}) {
    INFO((fused ? "fused" : "reference"));
    Params ps = {{"m", at::ones({1, 1}).set_requires_grad(true)}, {"v", at::full({1}, 2.0).set_requires_grad(true)}};
    mt::AdamWOptions o;
    o.beta1 = 0.9;
    o.beta2 = 0.99;
    o.eps = 1e-8;
    o.weight_decay = 0.1;
    o.fused = fused;
    mt::AdamW opt(ps, o);
    const double g[] = {0.5, -0.25};
    for (int s = 0; s < 2; ++s) {
      for (auto& [name, p] : ps) p.mutable_grad() = at::full(p.sizes(), g[s]);
      opt.step(0.1);
      CHECK(ps[0].second.item<double>() == Approx(expected_matrix[s]).margin(1e-6));
      CHECK(ps[1].second.item<double>() == Approx(expected_vector[s]).margin(1e-6));
    }
    const auto st = opt.state_tensors();
    CHECK(st.at("exp_avg.m").item<double>() == Approx(0.02).margin(1e-7));
    CHECK(st.at("exp_avg_sq.m").item<double>() == Approx(0.0031).margin(1e-8));
  }
}

TEST_CASE("AdamW: weight decay applies to matrices only", "[optimizer]") {
  // With zero grads the Adam update is 0 / (0 + eps) = 0: only the decay moves anything.
  REQUIRE(mt::is_no_decay_param(at::zeros({7})));
  REQUIRE(mt::is_no_decay_param(at::zeros({})));
  REQUIRE_FALSE(mt::is_no_decay_param(at::zeros({2, 3})));
  for (bool fused : {true, false}) {
    INFO((fused ? "fused" : "reference"));
    const Params init = make_params(3);
    Params ps = clone_params(init);
    mt::AdamW opt(ps, options(fused, 0.1));
    for (auto& [name, p] : ps) p.mutable_grad() = at::zeros_like(p);
    opt.step(0.5);
    for (size_t i = 0; i < ps.size(); ++i) {
      INFO("param " << ps[i].first);
      if (ps[i].second.dim() < 2) CHECK(at::equal(ps[i].second, init[i].second));
      else CHECK(max_diff(ps[i].second, init[i].second * (1 - 0.5 * 0.1)) <= 1e-7);
    }
  }
}

TEST_CASE("AdamW: parameters without a grad are left alone", "[optimizer]") {
  const Params init = make_params(4);
  Params ps = clone_params(init);
  mt::AdamW opt(ps, options(true));
  ps[0].second.mutable_grad() = at::ones_like(ps[0].second);
  opt.step(0.1);
  CHECK_FALSE(at::equal(ps[0].second, init[0].second));
  for (size_t i = 1; i < ps.size(); ++i) CHECK(at::equal(ps[i].second, init[i].second));
  CHECK(opt.step() == 1);
}

TEST_CASE("AdamW: state saved after 3 steps and loaded resumes bit for bit", "[optimizer]") {
  for (bool fused : {true, false}) {
    INFO((fused ? "fused" : "reference"));
    const Params init = make_params(5);
    const auto grads = make_grads(init, 6, 6);
    const auto lr = lrs(6);

    Params straight = clone_params(init);
    mt::AdamW opt_straight(straight, options(fused));
    run_steps(opt_straight, straight, grads, lr, 0, 6);

    // 3 steps, then the state through a safetensors file and a JSON string, as a checkpoint does.
    Params first = clone_params(init);
    mt::AdamW opt_first(first, options(fused));
    run_steps(opt_first, first, grads, lr, 0, 3);
    const auto dir = mt::test::temp_dir("adamw_state");
    mt::NamedTensors saved;
    for (const auto& [name, t] : opt_first.state_tensors()) saved.emplace_back(name, t.detach().cpu());
    mt::write_safetensors(dir / "optimizer.safetensors", saved);
    const std::string meta_text = opt_first.state_meta().dump();

    Params resumed = clone_params(first);
    mt::AdamW opt_resumed(resumed, options(fused));
    mt::SafetensorsFile file(dir / "optimizer.safetensors");
    std::map<std::string, at::Tensor> loaded;
    for (const auto& info : file.header().tensors) loaded[info.name] = file.load(info.name);
    opt_resumed.load_state(loaded, nlohmann::json::parse(meta_text), "optimizer.safetensors");
    REQUIRE(opt_resumed.step() == 3);
    run_steps(opt_resumed, resumed, grads, lr, 3, 6);
    REQUIRE(opt_resumed.step() == 6);

    const auto s1 = opt_straight.state_tensors(), s2 = opt_resumed.state_tensors();
    for (size_t i = 0; i < init.size(); ++i) {
      INFO("param " << init[i].first);
      CHECK(at::equal(straight[i].second, resumed[i].second));
      CHECK(at::equal(s1.at("exp_avg." + init[i].first), s2.at("exp_avg." + init[i].first)));
      CHECK(at::equal(s1.at("exp_avg_sq." + init[i].first), s2.at("exp_avg_sq." + init[i].first)));
    }
    CHECK(opt_resumed.state_meta() == opt_straight.state_meta());
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("AdamW: state metadata lists step, options and parameters", "[optimizer]") {
  Params ps = make_params(7);
  mt::AdamW opt(ps, options(false, 0.05));
  const nlohmann::json meta = opt.state_meta();
  CHECK(meta.at("step") == 0);
  CHECK(meta.at("beta1").get<double>() == 0.9);
  CHECK(meta.at("beta2").get<double>() == 0.95);
  CHECK(meta.at("eps").get<double>() == 1e-8);
  CHECK(meta.at("weight_decay").get<double>() == 0.05);
  CHECK(meta.at("fused") == false);
  CHECK(meta.at("params") == nlohmann::json({"w1", "norm", "w2", "bias"}));
  CHECK(opt.state_tensors().size() == 8);
}

TEST_CASE("AdamW: load_state rejects state that does not fit", "[optimizer]") {
  Params ps = make_params(8);
  const auto grads = make_grads(ps, 1, 9);
  mt::AdamW source_opt(ps, options(true));
  run_steps(source_opt, ps, grads, lrs(1), 0, 1);
  std::map<std::string, at::Tensor> good;
  for (const auto& [name, t] : source_opt.state_tensors()) good[name] = t.clone();
  const nlohmann::json meta = source_opt.state_meta();

  Params fresh = clone_params(ps);
  mt::AdamW opt(fresh, options(true));
  const std::string src = "run/optimizer.safetensors";
  auto load = [&](const std::map<std::string, at::Tensor>& t, const nlohmann::json& m) { opt.load_state(t, m, src); };

  SECTION("missing tensor") {
    auto t = good;
    t.erase("exp_avg_sq.w2");
    mt::test::require_error([&] { load(t, meta); }, {src, "exp_avg_sq.w2", "missing"});
  }
  SECTION("wrong shape") {
    auto t = good;
    t["exp_avg.w1"] = at::zeros({5, 8});
    mt::test::require_error([&] { load(t, meta); }, {src, "exp_avg.w1", "[5, 8]", "[8, 5]"});
  }
  SECTION("wrong dtype") {
    auto t = good;
    t["exp_avg.bias"] = t["exp_avg.bias"].to(at::kBFloat16);
    mt::test::require_error([&] { load(t, meta); }, {src, "exp_avg.bias", "BFloat16"});
  }
  SECTION("unknown extra tensor") {
    auto t = good;
    t["exp_avg.lm_head"] = at::zeros({2, 2});
    mt::test::require_error([&] { load(t, meta); }, {src, "exp_avg.lm_head", "unknown"});
  }
  SECTION("changed beta") {
    auto m = meta;
    m["beta2"] = 0.999;
    mt::test::require_error([&] { load(good, m); }, {src, "beta2", "0.999", "0.95"});
  }
  SECTION("changed weight decay") {
    auto m = meta;
    m["weight_decay"] = 0.0;
    mt::test::require_error([&] { load(good, m); }, {src, "weight_decay"});
  }
  SECTION("different parameter set") {
    auto m = meta;
    m["params"] = {"w1", "norm", "w2"};
    mt::test::require_error([&] { load(good, m); }, {src, "bias"});
  }
  SECTION("malformed metadata") {
    auto m = meta;
    m["step"] = "three";
    mt::test::require_error([&] { load(good, m); }, {src, "step"});
    m = meta;
    m["eps"] = "tiny";
    mt::test::require_error([&] { load(good, m); }, {src});
  }
  // A failed load leaves the optimizer untouched; the good state then loads.
  CHECK(opt.step() == 0);
  for (const auto& [name, t] : opt.state_tensors()) CHECK(t.abs().sum().item<double>() == 0.0);
  load(good, meta);
  CHECK(opt.step() == 1);
  for (const auto& [name, t] : opt.state_tensors()) CHECK(at::equal(t, good.at(name)));
}

TEST_CASE("clip_grad_norm: global norm, scaling above max_norm only", "[optimizer]") {
  // Grads (3, 4) and (12): global norm sqrt(9 + 16 + 144) = 13.
  auto make = [] {
    std::vector<at::Tensor> ps = {at::zeros({2}).set_requires_grad(true), at::zeros({1, 1}).set_requires_grad(true),
                                  at::zeros({3}).set_requires_grad(true)};
    ps[0].mutable_grad() = at::tensor({3.0f, 4.0f});
    ps[1].mutable_grad() = at::full({1, 1}, 12.0f);
    return ps;  // ps[2] has no grad: ignored
  };
  SECTION("below max_norm: unchanged") {
    auto ps = make();
    CHECK(mt::clip_grad_norm(ps, 26.0) == Approx(13.0).epsilon(1e-7));
    CHECK(at::equal(ps[0].grad(), at::tensor({3.0f, 4.0f})));
    CHECK(ps[1].grad().item<float>() == 12.0f);
  }
  SECTION("max_norm 0: off") {
    auto ps = make();
    CHECK(mt::clip_grad_norm(ps, 0.0) == Approx(13.0).epsilon(1e-7));
    CHECK(ps[1].grad().item<float>() == 12.0f);
  }
  SECTION("above max_norm: scaled by max_norm / (norm + 1e-6)") {
    auto ps = make();
    CHECK(mt::clip_grad_norm(ps, 6.5) == Approx(13.0).epsilon(1e-7));
    const double coef = 6.5 / (13.0 + 1e-6);
    CHECK(ps[0].grad()[0].item<double>() == Approx(3.0 * coef).epsilon(1e-6));
    CHECK(ps[0].grad()[1].item<double>() == Approx(4.0 * coef).epsilon(1e-6));
    CHECK(ps[1].grad().item<double>() == Approx(12.0 * coef).epsilon(1e-6));
    // The clipped norm is max_norm (to the 1e-6).
    CHECK(mt::clip_grad_norm(ps, 100.0) == Approx(6.5).epsilon(1e-6));
  }
  SECTION("bf16 grads: the norm is accumulated in fp32") {
    // 4096 grads of 1/64 in bf16 (exact): norm 1. A bf16 result could not hold 1 +- 2^-9 anyway;
    // the point is that it matches the fp32 computation.
    at::Tensor p = at::zeros({4096}, at::kBFloat16).set_requires_grad(true);
    p.mutable_grad() = at::full({4096}, 1.0 / 64, at::kBFloat16);
    at::Tensor q = at::zeros({1}, at::kFloat).set_requires_grad(true);
    q.mutable_grad() = at::full({1}, 0.5f);
    CHECK(mt::clip_grad_norm({p, q}, 0.0) == Approx(std::sqrt(1.25)).epsilon(1e-6));
  }
  SECTION("non-finite grads: norm returned, grads left alone") {
    for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
      auto ps = make();
      ps[1].mutable_grad() = at::full({1, 1}, bad);
      const double norm = mt::clip_grad_norm(ps, 1.0);
      if (std::isnan(bad)) CHECK(std::isnan(norm));
      else CHECK(std::isinf(norm));
      CHECK(at::equal(ps[0].grad(), at::tensor({3.0f, 4.0f})));
    }
  }
  SECTION("no grads at all") {
    std::vector<at::Tensor> ps = {at::zeros({2}).set_requires_grad(true)};
    CHECK(mt::clip_grad_norm(ps, 1.0) == 0.0);
  }
}

TEST_CASE("AdamW: pure bf16 parameters on the fused path stay close to fp32", "[optimizer]") {
  const Params init = make_params(10);
  const auto grads = make_grads(init, 10, 11);
  Params bf16 = clone_params(init, at::kBFloat16), fp32 = clone_params(bf16, at::kFloat);
  mt::AdamW opt_bf16(bf16, options(true)), opt_fp32(fp32, options(false));
  run_steps(opt_bf16, bf16, grads, lrs(10), 0, 10);
  run_steps(opt_fp32, fp32, grads, lrs(10), 0, 10);
  const auto state = opt_bf16.state_tensors();
  for (size_t i = 0; i < init.size(); ++i) {
    INFO("param " << init[i].first);
    REQUIRE(bf16[i].second.scalar_type() == at::kBFloat16);
    REQUIRE(state.at("exp_avg." + init[i].first).scalar_type() == at::kBFloat16);
    // Each step rounds the parameter to bf16 (at most half an ulp, 2^-9 relative), and with lr
    // ~1e-2 an update is one or two ulps of a parameter near 1, so the rounding errors of
    // consecutive steps share a sign: bound each element by 10 steps of half an ulp (measured:
    // up to 0.041 on a parameter near 2.2, 1.9% relative).
    const at::Tensor ref = fp32[i].second;
    const at::Tensor diff = (bf16[i].second.to(at::kFloat) - ref).abs();
    CHECK((diff <= ref.abs() * (10.0 / 512) + 1e-3).all().item<bool>());
    CHECK(max_diff(fp32[i].second, clone_params(init, at::kBFloat16)[i].second) > 0.05);  // it did move
  }
}

TEST_CASE("AdamW and clip_grad_norm match PyTorch's torch.optim.AdamW and clip_grad_norm_", "[optimizer]") {
  const std::string py = MT_PYTHON;
  if (py.empty()) FAIL("MT_PYTHON is empty: configure with -DMT_PYTHON=<python with torch> (scripts/build.sh does)");
  const int steps = 5;
  const double max_norm = 2.0;  // grad norms ~0.9 at step 0 (not clipped), then ~5 to ~18 (clipped)
  const std::vector<std::pair<std::string, at::ScalarType>> scenarios = {{"f32", at::kFloat}, {"bf16", at::kBFloat16}};

  // One input file and one Python run for both scenarios.
  std::map<std::string, Params> init;
  std::map<std::string, std::vector<std::vector<at::Tensor>>> grads;
  mt::NamedTensors inputs;
  nlohmann::json names = nlohmann::json::array(), scenario_names = nlohmann::json::array();
  for (const auto& [sc, dtype] : scenarios) {
    scenario_names.push_back(sc);
    init[sc] = clone_params(make_params(12), dtype);
    grads[sc] = make_grads(init[sc], steps, 13);
    for (auto& step : grads[sc])
      for (auto& g : step) g = g.to(dtype);
    for (size_t i = 0; i < init[sc].size(); ++i) {
      const std::string& name = init[sc][i].first;
      if (sc == "f32") names.push_back(name);
      inputs.emplace_back(sc + ".param." + name, init[sc][i].second.detach());
      for (int s = 0; s < steps; ++s) inputs.emplace_back(sc + ".grad." + std::to_string(s) + "." + name, grads[sc][s][i]);
    }
  }
  const auto dir = mt::test::temp_dir("adamw_torch");
  mt::write_safetensors(dir / "in.safetensors", inputs);
  const auto o = options(true);
  const nlohmann::json cfg = {{"scenarios", scenario_names}, {"names", names}, {"lr", lrs(steps)},
                              {"beta1", o.beta1},            {"beta2", o.beta2}, {"eps", o.eps},
                              {"weight_decay", o.weight_decay}, {"max_norm", max_norm}};
  mt::test::write_file(dir / "config.json", cfg.dump());
  const auto script = std::filesystem::path(MT_SOURCE_DIR) / "tests" / "adamw_reference.py";
  const auto r = mt::test::run_command(mt::test::quoted(py) + " " + mt::test::quoted(script) + " " +
                                       mt::test::quoted(dir / "in.safetensors") + " " +
                                       mt::test::quoted(dir / "config.json") + " " +
                                       mt::test::quoted(dir / "out.safetensors") + " " + mt::test::quoted(dir / "norms.json"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  mt::SafetensorsFile torch_out(dir / "out.safetensors");
  const nlohmann::json torch_norms = mt::test::read_json(dir / "norms.json");

  for (const auto& [sc, dtype] : scenarios) {
    for (bool fused : {false, true}) {
      const std::string mode = fused ? "fused" : "reference";
      INFO("scenario " << sc << ", " << mode);
      Params ps = clone_params(init[sc]);
      mt::AdamW opt(ps, options(fused));
      const std::vector<at::Tensor> leaves = tensors_of(ps);
      for (int s = 0; s < steps; ++s) {
        for (size_t i = 0; i < ps.size(); ++i) ps[i].second.mutable_grad() = grads[sc][s][i].clone();
        const double norm = mt::clip_grad_norm(leaves, max_norm);
        // fp32 grads: the same per-tensor and total norms as PyTorch; bf16: PyTorch keeps its norms
        // in bf16 (2^-8 relative) where ours are fp32.
        CHECK(norm == Approx(torch_norms.at(sc).at(mode).at(s).get<double>()).epsilon(dtype == at::kFloat ? 1e-6 : 8e-3));
        opt.step(lrs(steps)[s]);
      }
      const auto state = opt.state_tensors();
      for (const auto& [name, p] : ps) {
        INFO("param " << name);
        // fp32: the same ops in the same order. bf16: PyTorch clips with a bf16-rounded norm, so the
        // clipped grads differ slightly, and a parameter may round to a neighbouring bf16 value.
        const double tol = dtype == at::kFloat ? 1e-6 : 2e-2;
        const std::string prefix = sc + "." + mode + ".";
        CHECK(max_diff(p, torch_out.load(prefix + "param." + name)) <= tol);
        CHECK(max_diff(state.at("exp_avg." + name), torch_out.load(prefix + "exp_avg." + name)) <= tol);
        CHECK(max_diff(state.at("exp_avg_sq." + name), torch_out.load(prefix + "exp_avg_sq." + name)) <= tol);
      }
    }
  }
  std::filesystem::remove_all(dir);
}
