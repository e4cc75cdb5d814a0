// The MAIN method's source-weighted loss (training.synthetic_weight = alpha): with a tiny random
// model, forward_backward's gradients equal autograd of the formula written by hand (full logits,
// per-token at::cross_entropy, the two means taken separately); micro-batches split the window
// without changing them; alpha 1 and 0 drop a kind; a one-kind window is the plain loss; alpha -1
// is bit-identical to the step as it was; the config checks the range; and a run with a synthetic
// source writes loss_real / loss_synthetic to metrics.jsonl.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <limits>

#include "models/hf_config.h"
#include "trainer/config/config.h"
#include "trainer/engine/cross_entropy.h"
#include "trainer/engine/mixed_precision.h"
#include "trainer/data/packing.h"
#include "trainer/loop/train.h"
#include "trainer/engine/train_step.h"
#include "tests/run_fixtures.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace fs = std::filesystem;

namespace {

using mt::test::clear_grads;
using mt::test::eight_examples;
using mt::test::ExampleSources;
using mt::test::grads_of;
using mt::test::max_rel_diff;
using mt::test::rows_of;
using mt::test::tiny_model;

bool is_synthetic_example(int64_t e) { return e % 2 == 1; }

bool bit_identical(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!at::equal(a[i], b[i])) return false;
  return true;
}

// Where a batch's targets come from synthetic examples, worked out from its doc ids and rows (not
// from batch.synthetic, so that the packer is checked too).
at::Tensor synthetic_positions(const mt::PackedBatch& b) {
  const at::Tensor doc = b.doc_ids.contiguous(), tgt = b.targets.contiguous();
  at::Tensor out = at::zeros(b.targets.sizes(), at::kBool);
  const int64_t B = b.targets.size(0), S = b.targets.size(1);
  for (int64_t r = 0; r < B; ++r)
    for (int64_t t = 0; t < S; ++t) {
      const int64_t d = doc[r][t].item<int64_t>();
      if (d < 0 || tgt[r][t].item<int64_t>() == mt::kIgnoreIndex) continue;
      out[r][t] = is_synthetic_example(b.examples[static_cast<size_t>(r)][static_cast<size_t>(d)]);
    }
  return out;
}

// Per-token cross-entropy of a padded batch from full logits (0 where ignored), flattened.
at::Tensor per_token_ce(const mt::Transformer& m, const mt::PackedBatch& b) {
  const at::Tensor h = mt::transformer_hidden(m, b.input_ids, b.positions, b.valid, nullptr, b.doc_ids);
  const at::Tensor logits = at::matmul(h.reshape({-1, h.size(-1)}), m.lm_head.t()).to(at::kFloat);
  return at::cross_entropy_loss(logits, b.targets.reshape({-1}), {}, at::Reduction::None, mt::kIgnoreIndex);
}

struct Reference {
  at::Tensor loss;           // alpha * mean_syn + (1 - alpha) * mean_real, differentiable
  double sum_real = 0, sum_synthetic = 0;
  int64_t n_real = 0, n_synthetic = 0;
};

// The formula by hand on one batch holding the whole window. alpha < 0: the plain token mean.
Reference reference(const mt::Transformer& m, const mt::PackedBatch& b, double alpha) {
  const at::Tensor ce = per_token_ce(m, b);
  const at::Tensor target = b.targets.reshape({-1}) != mt::kIgnoreIndex;
  const at::Tensor syn = synthetic_positions(b).reshape({-1});
  const at::Tensor real_mask = target & syn.logical_not(), syn_mask = target & syn;
  Reference r;
  r.n_real = real_mask.sum().item<int64_t>();
  r.n_synthetic = syn_mask.sum().item<int64_t>();
  const at::Tensor sum_real = (ce * real_mask).sum(), sum_syn = (ce * syn_mask).sum();
  r.sum_real = sum_real.item<double>();
  r.sum_synthetic = sum_syn.item<double>();
  if (alpha < 0)
    r.loss = (sum_real + sum_syn) / static_cast<double>(r.n_real + r.n_synthetic);
  else
    r.loss = sum_syn / static_cast<double>(r.n_synthetic) * alpha +
             sum_real / static_cast<double>(r.n_real) * (1.0 - alpha);
  return r;
}

std::vector<at::Tensor> reference_grads(mt::Transformer& m, const mt::PackedBatch& b, double alpha) {
  clear_grads(m);
  torch::autograd::backward({reference(m, b, alpha).loss});
  std::vector<at::Tensor> g = grads_of(m);
  clear_grads(m);
  return g;
}

mt::SourceWeights weights_for(double alpha, const mt::PackedBatch& b) {
  mt::SourceWeights w;
  w.alpha = alpha;
  w.real_target_tokens = b.target_tokens - b.synthetic_target_tokens;
  w.synthetic_target_tokens = b.synthetic_target_tokens;
  return w;
}

// The whole window in one batch: packed rows with padding, real and synthetic documents mixed.
mt::PackedBatch whole_window(const mt::TokenizedDataset& data) {
  return mt::make_padded_batch(data.view(), {{0, 1}, {2, 3}, {4, 5}, {6}, {7}}, 40);
}

// forward_backward as it was before source weights, op for op: the -1 path must equal it bit for bit.
double step_before_source_weights(const mt::Transformer& master, const std::vector<mt::PackedBatch>& batches,
                                  int64_t global_target_tokens) {
  double loss_sum = 0;
  const double scale = 1.0 / static_cast<double>(global_target_tokens);
  for (const mt::PackedBatch& batch : batches) {
    if (batch.target_tokens == 0) continue;
    const mt::Transformer model = mt::compute_view(master, at::kFloat);
    at::Tensor hidden = mt::transformer_hidden(model, batch.input_ids, batch.positions, batch.valid, nullptr,
                                               batch.doc_ids);
    at::Tensor targets = batch.targets.reshape({-1});
    at::Tensor rows = (targets != mt::kIgnoreIndex).nonzero().squeeze(1);
    at::Tensor h = hidden.reshape({-1, hidden.size(-1)}).index_select(0, rows);
    at::Tensor sum = mt::chunked_linear_cross_entropy(h, model.lm_head, targets.index_select(0, rows), 4096);
    loss_sum += sum.item<double>();
    torch::autograd::backward({sum * scale});
  }
  return loss_sum;
}

}  // namespace

TEST_CASE("source weight: alpha = 0.3 gives the gradients of the formula computed by hand", "[source_weight]") {
  const mt::TokenizedDataset data = eight_examples(ExampleSources::alternating);
  mt::Transformer m = tiny_model();
  const mt::PackedBatch b = whole_window(data);
  CHECK(at::equal(b.synthetic, synthetic_positions(b)));
  REQUIRE(b.synthetic_target_tokens > 0);
  REQUIRE(b.synthetic_target_tokens < b.target_tokens);

  const std::vector<at::Tensor> g_ref = reference_grads(m, b, 0.3);
  const Reference ref = reference(m, b, 0.3);
  const mt::WindowResult r = mt::forward_backward(m, {b}, b.target_tokens, {}, weights_for(0.3, b));
  CHECK(max_rel_diff(g_ref, grads_of(m)) < 1e-5);
  CHECK(r.real_target_tokens == ref.n_real);
  CHECK(r.synthetic_target_tokens == ref.n_synthetic);
  CHECK(r.loss_sum_real == Approx(ref.sum_real).epsilon(1e-5));
  CHECK(r.loss_sum_synthetic == Approx(ref.sum_synthetic).epsilon(1e-5));
  CHECK(r.loss_sum == Approx(ref.sum_real + ref.sum_synthetic).epsilon(1e-5));
  // The weighted loss really differs from the token mean here (else the test would prove little).
  const std::vector<at::Tensor> g_plain = reference_grads(m, b, -1);
  CHECK(max_rel_diff(g_ref, g_plain) > 1e-3);
}

TEST_CASE("source weight: micro-batches of one example give the window's gradients", "[source_weight]") {
  const mt::TokenizedDataset data = eight_examples(ExampleSources::alternating);
  mt::Transformer m = tiny_model();
  const mt::PackedBatch big = whole_window(data);
  const mt::SourceWeights w = weights_for(0.3, big);
  const mt::WindowResult r_big = mt::forward_backward(m, {big}, big.target_tokens, {}, w);
  const std::vector<at::Tensor> g_big = grads_of(m);
  clear_grads(m);

  std::vector<mt::PackedBatch> smalls;
  int64_t real = 0, synthetic = 0;
  for (int64_t i = 0; i < 8; ++i) {
    smalls.push_back(mt::make_padded_batch(data.view(), rows_of({i}), 32));
    synthetic += smalls.back().synthetic_target_tokens;
    real += smalls.back().target_tokens - smalls.back().synthetic_target_tokens;
    // Each micro-batch holds one kind only: the weights must come from the window, not the batch.
    CHECK((smalls.back().synthetic_target_tokens == 0 ||
           smalls.back().synthetic_target_tokens == smalls.back().target_tokens));
  }
  REQUIRE(real == w.real_target_tokens);
  REQUIRE(synthetic == w.synthetic_target_tokens);
  const mt::WindowResult r_small = mt::forward_backward(m, smalls, big.target_tokens, {}, w);
  CHECK(max_rel_diff(g_big, grads_of(m)) < 1e-5);
  CHECK(r_small.loss_sum_real == Approx(r_big.loss_sum_real).epsilon(1e-5));
  CHECK(r_small.loss_sum_synthetic == Approx(r_big.loss_sum_synthetic).epsilon(1e-5));
  CHECK(r_small.real_target_tokens == r_big.real_target_tokens);
  CHECK(r_small.synthetic_target_tokens == r_big.synthetic_target_tokens);
}

TEST_CASE("source weight: alpha = 1 ignores real targets, alpha = 0 synthetic ones", "[source_weight]") {
  const mt::TokenizedDataset data = eight_examples(ExampleSources::alternating);
  mt::Transformer m = tiny_model();
  const mt::PackedBatch b = whole_window(data);
  for (const double alpha : {1.0, 0.0}) {
    INFO("alpha " << alpha);
    // By hand: the mean over the kept kind's tokens only.
    clear_grads(m);
    const at::Tensor ce = per_token_ce(m, b);
    const at::Tensor target = b.targets.reshape({-1}) != mt::kIgnoreIndex;
    const at::Tensor syn = synthetic_positions(b).reshape({-1});
    const at::Tensor kept = alpha == 1.0 ? (target & syn) : (target & syn.logical_not());
    torch::autograd::backward({(ce * kept).sum() / kept.sum().item<double>()});
    const std::vector<at::Tensor> g_ref = grads_of(m);
    clear_grads(m);
    mt::forward_backward(m, {b}, b.target_tokens, {}, weights_for(alpha, b));
    CHECK(max_rel_diff(g_ref, grads_of(m)) < 1e-5);
  }
}

TEST_CASE("source weight: a window of one kind only is the plain token mean", "[source_weight]") {
  for (const bool synthetic : {false, true}) {
    INFO((synthetic ? "only synthetic targets" : "only real targets"));
    const mt::TokenizedDataset data = eight_examples(synthetic ? ExampleSources::synthetic : ExampleSources::real);
    mt::Transformer m = tiny_model();
    const mt::PackedBatch b = whole_window(data);
    REQUIRE(b.synthetic_target_tokens == (synthetic ? b.target_tokens : 0));
    const mt::WindowResult plain = mt::forward_backward(m, {b}, b.target_tokens, {});
    const std::vector<at::Tensor> g_plain = grads_of(m);
    clear_grads(m);
    const mt::WindowResult weighted = mt::forward_backward(m, {b}, b.target_tokens, {}, weights_for(0.3, b));
    CHECK(max_rel_diff(g_plain, grads_of(m)) < 1e-6);
    CHECK(weighted.loss_sum == Approx(plain.loss_sum).epsilon(1e-6));
    CHECK((synthetic ? weighted.loss_sum_real : weighted.loss_sum_synthetic) == 0.0);
  }
}

TEST_CASE("source weight: alpha -1 is bit-identical to the step without source weights", "[source_weight]") {
  const mt::TokenizedDataset mixed = eight_examples(ExampleSources::alternating), real = eight_examples();
  mt::Transformer m = tiny_model();
  const mt::PackedBatch b_mixed = whole_window(mixed), b_real = whole_window(real);
  REQUIRE(at::equal(b_mixed.targets, b_real.targets));  // mask 2 is a target like 1

  const double before = step_before_source_weights(m, {b_real}, b_real.target_tokens);
  const std::vector<at::Tensor> g_before = grads_of(m);
  clear_grads(m);
  const mt::WindowResult off = mt::forward_backward(m, {b_mixed}, b_mixed.target_tokens, {});
  CHECK(off.loss_sum == before);
  CHECK(bit_identical(g_before, grads_of(m)));
  clear_grads(m);
  mt::SourceWeights w = weights_for(-1.0, b_mixed);
  REQUIRE_FALSE(w.enabled());
  const mt::WindowResult explicit_off = mt::forward_backward(m, {b_mixed}, b_mixed.target_tokens, {}, w);
  CHECK(explicit_off.loss_sum == before);
  CHECK(bit_identical(g_before, grads_of(m)));
}

TEST_CASE("source weight: per-token factors, one-kind windows, and alpha checked", "[source_weight]") {
  mt::SourceWeights w;
  w.alpha = 0.3;
  w.real_target_tokens = 70;
  w.synthetic_target_tokens = 30;
  mt::SourceScales s = mt::source_loss_scales(w);
  CHECK(s.real == Approx(0.7 / 70));
  CHECK(s.synthetic == Approx(0.3 / 30));
  w.synthetic_target_tokens = 0;  // only real: weight 1, whatever alpha
  s = mt::source_loss_scales(w);
  CHECK(s.real == 1.0 / 70);
  CHECK(s.synthetic == 0);
  w.alpha = 1.0;
  CHECK(mt::source_loss_scales(w).real == 1.0 / 70);
  w.real_target_tokens = 0;
  w.synthetic_target_tokens = 40;
  w.alpha = 0.0;
  s = mt::source_loss_scales(w);
  CHECK(s.synthetic == 1.0 / 40);
  CHECK(s.real == 0);
  w.synthetic_target_tokens = 0;
  s = mt::source_loss_scales(w);
  CHECK((s.real == 0 && s.synthetic == 0));
  for (const double bad : {1.5, -0.5, std::numeric_limits<double>::quiet_NaN()}) {
    w.alpha = bad;
    mt::test::require_error([&] { mt::source_loss_scales(w); }, {"training.synthetic_weight", "[0, 1]"});
  }
}

TEST_CASE("source weight: config range of training.synthetic_weight and the synthetic source key",
          "[source_weight][config]") {
  const fs::path dir = mt::test::temp_dir("source_weight_config");
  const fs::path cfg = dir / "run.yaml";
  const std::string sources = "data:\n  sources:\n    - path: real.jsonl\n    - path: gen.jsonl\n      synthetic: true\n";
  mt::test::write_file(cfg, sources + "training:\n  synthetic_weight: 1.5\n");
  mt::test::require_error([&] { mt::load_train_config(cfg); },
                          {"run.yaml:7:", "training.synthetic_weight: must be -1 or in [0, 1], got 1.5"});
  mt::test::write_file(cfg, sources);
  mt::test::require_error([&] { mt::load_train_config("", {"training.synthetic_weight=-0.5"}); },
                          {"--set training.synthetic_weight=-0.5", "training.synthetic_weight: must be -1 or in "
                                                                    "[0, 1], got -0.5"});
  CHECK(mt::TrainConfig().training.synthetic_weight == -1.0);  // off by default
  for (const char* ok : {"-1", "0", "0.3", "1"}) {
    const mt::TrainConfig c = mt::load_train_config(cfg, {std::string("training.synthetic_weight=") + ok});
    CHECK(c.training.synthetic_weight == std::stod(ok));
    REQUIRE(c.data.sources.size() == 2);
    CHECK_FALSE(c.data.sources[0].synthetic);
    CHECK(c.data.sources[1].synthetic);
    // The YAML written back keeps both.
    mt::test::write_file(dir / "back.yaml", mt::train_config_to_yaml(c));
    const mt::TrainConfig back = mt::load_train_config(dir / "back.yaml");
    CHECK(back.training.synthetic_weight == c.training.synthetic_weight);
    CHECK(back.data.sources[1].synthetic);
  }
  fs::remove_all(dir);
}

namespace {

using mt::test::write_reverse_pairs;

// A short run of the tiny model on a real and a generated source; returns metrics.jsonl's step lines.
std::vector<nlohmann::json> run_two_sources(const fs::path& dir, const std::string& name, bool mark_synthetic,
                                            double alpha) {
  const fs::path real = write_reverse_pairs(dir / "real.jsonl", {"apple", "river", "stone", "cloud"}, "The reversed word is ", 24);
  const fs::path gen = write_reverse_pairs(dir / "gen.jsonl", {"maple", "tiger", "lemon", "piano"}, "Reversed: ", 24);
  const fs::path cfg = dir / (name + ".yaml");
  mt::test::write_file(
      cfg, mt::test::tiny_model_section() +
               "data:\n  sources:\n    - path: " + real.string() + "\n      format: alpaca\n    - path: " + gen.string() +
               "\n      format: alpaca\n      synthetic: " + (mark_synthetic ? "true" : "false") +
               "\n  template: llama3\n  max_len: 96\n"
               "optimizer:\n  lr: 0.003\n"
               "training:\n  max_steps: 3\n  micro_batch_size: 2\n  grad_accum_steps: 2\n  seed: 5\n"
               "  synthetic_weight: " + fmt::format("{}", alpha) + "\n"
               "output:\n  run_dir: " + (dir / name).string() + "\n  export: false\n"
               "logging:\n  progress: none\n  tensorboard: false\n");
  mt::run_training(mt::load_train_config(cfg), "");
  return mt::test::step_lines(dir / name);
}

}  // namespace

TEST_CASE("source weight: a run with a synthetic source writes loss_real and loss_synthetic", "[source_weight][train]") {
  const fs::path dir = mt::test::temp_dir("source_weight_run");
  const auto weighted = run_two_sources(dir, "weighted", true, 0.3);
  REQUIRE(weighted.size() == 3);
  int both = 0;
  for (const auto& s : weighted) {
    INFO(s.dump());
    REQUIRE(s.contains("loss_real"));
    REQUIRE(s.contains("loss_synthetic"));
    if (!s["loss_real"].is_number() || !s["loss_synthetic"].is_number()) continue;  // a one-kind window
    ++both;
    const double real = s["loss_real"].get<double>(), syn = s["loss_synthetic"].get<double>();
    CHECK(real > 0);
    CHECK(syn > 0);
    CHECK(s["loss"].get<double>() == Approx(0.3 * syn + 0.7 * real).epsilon(1e-9));
  }
  CHECK(both > 0);

  // Off (-1): no per-kind keys, and marking the source changes nothing, bit for bit.
  const auto plain = run_two_sources(dir, "plain", false, -1);
  const auto marked_off = run_two_sources(dir, "marked_off", true, -1);
  REQUIRE(plain.size() == 3);
  REQUIRE(marked_off.size() == 3);
  for (size_t i = 0; i < plain.size(); ++i) {
    CHECK_FALSE(plain[i].contains("loss_real"));
    CHECK_FALSE(marked_off[i].contains("loss_synthetic"));
    CHECK(plain[i]["loss"].get<double>() == marked_off[i]["loss"].get<double>());
    CHECK(plain[i]["grad_norm"].get<double>() == marked_off[i]["grad_norm"].get<double>());
  }
  // The weighted run trains on the same data with other weights: a first window holding both
  // kinds gives another loss than the token mean.
  if (weighted[0]["loss_real"].is_number() && weighted[0]["loss_synthetic"].is_number())
    CHECK(weighted[0]["loss"].get<double>() != plain[0]["loss"].get<double>());
  fs::remove_all(dir);
}
