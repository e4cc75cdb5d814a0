// The alignment scorer (trainer/engine/alignment.h) and its loss terms in the training step: each term's
// value and gradients against a plain PyTorch implementation (tests/alignment_reference.py),
// invariance under a permutation of the batch's pairs, zero weights giving exactly the plain SFT
// gradients, each weight adding exactly its term's gradient, the likelihood signals against the
// scorer of models/score.h, and a few steps on a toy set raising the gap between aligned and
// shuffled pairs.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>

#include "models/hf_config.h"
#include "models/safetensors.h"
#include "models/score.h"
#include "trainer/engine/alignment.h"
#include "trainer/engine/cross_entropy.h"
#include "trainer/engine/mixed_precision.h"
#include "trainer/engine/optimizer.h"
#include "trainer/data/packing.h"
#include "trainer/engine/train_step.h"
#include "tests/test_util.h"
#include "tests/tiny_model.h"

namespace {

using mt::test::tiny_model;

mt::AlignmentScorer trainable_scorer(const mt::Transformer& m, const std::string& pooling = "mean") {
  mt::AlignmentScorer s = mt::init_alignment_scorer(m.config.hidden_size, 16, 0.1, pooling, 5, at::TensorOptions());
  s.instruction_proj.requires_grad_(true);
  s.response_proj.requires_grad_(true);
  s.logit_scale.requires_grad_(true);
  return s;
}

// Pairs whose response is a function of the instruction (its tokens reversed, shifted by 100), so
// that aligned and shuffled pairs differ; examples are instruction ++ response with the response
// as the target.
struct ToyPairs {
  std::vector<std::vector<int64_t>> instructions, responses;
  mt::TokenizedDataset data;
};

ToyPairs toy_pairs(int n, uint64_t seed) {
  ToyPairs p;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  for (int i = 0; i < n; ++i) {
    const int64_t len = 3 + at::randint(5, {1}, gen, at::kLong).item<int64_t>();
    const at::Tensor ids = at::randint(3, 100, {len}, gen, at::kLong);
    std::vector<int64_t> instr = {1}, resp;  // BOS first, as a chat prompt
    for (int64_t t = 0; t < len; ++t) instr.push_back(ids[t].item<int64_t>());
    for (int64_t t = len - 1; t >= 0; --t) resp.push_back(ids[t].item<int64_t>() + 100);
    resp.push_back(2);  // end of turn
    mt::TokenizedExample e;
    for (int64_t id : instr) {
      e.ids.push_back(static_cast<uint32_t>(id));
      e.loss_mask.push_back(0);
    }
    for (int64_t id : resp) {
      e.ids.push_back(static_cast<uint32_t>(id));
      e.loss_mask.push_back(1);
    }
    p.data.add(e);
    p.instructions.push_back(instr);
    p.responses.push_back(resp);
  }
  return p;
}

// Every example packed first-fit into rows of 32 tokens: several pairs per row.
mt::PackedBatch packed(const mt::TokenizedDataset& data) {
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < data.size(); ++i) lengths.push_back(data.view().length(i));
  return mt::make_padded_batch(data.view(), mt::pack_rows(lengths, 32, "first_fit"), 32);
}

std::vector<at::Tensor> grads_of(const std::vector<at::Tensor>& leaves) {
  std::vector<at::Tensor> out;
  for (const auto& p : leaves) out.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return out;
}

std::vector<at::Tensor> leaves_of(const mt::Transformer& m, const mt::AlignmentScorer& s) {
  std::vector<at::Tensor> out = mt::parameter_tensors(m);
  for (const auto& [name, t] : s.named_tensors()) out.push_back(t);
  return out;
}

void clear(const std::vector<at::Tensor>& leaves) {
  for (auto p : leaves) p.mutable_grad().reset();
}

double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }

}  // namespace

TEST_CASE("alignment losses match the PyTorch reference in value and gradient - mean and last pooling",
          "[alignment]") {
  const std::string py = MT_PYTHON;
  if (py.empty()) FAIL("MT_PYTHON is empty: configure with -DMT_PYTHON=<python with torch> (scripts/build.sh does)");
  at::manual_seed(17);
  const int64_t N = 6, L = 7, H = 12, D = 5;
  // fp32 values (what our code computes in), handed to the reference as fp64.
  std::map<std::string, at::Tensor> in = {
      {"hidden_instr", at::randn({N, L, H})}, {"hidden_resp", at::randn({N, L, H})},
      {"proj_instr", at::randn({D, H}) * 0.3}, {"proj_resp", at::randn({D, H}) * 0.3},
      {"logit_scale", at::full({}, std::log(1.0 / 0.2))}, {"signal", at::randn({N})}};
  in["signal"][3] = std::nan("");  // a pair without a signal is left out of the rank term
  // Documents of different lengths, valid from position 0.
  const std::vector<int64_t> len_i = {7, 3, 5, 1, 6, 2}, len_r = {2, 7, 4, 6, 1, 5};
  at::Tensor valid_i = at::zeros({N, L}, at::kBool), valid_r = at::zeros({N, L}, at::kBool);
  for (int64_t i = 0; i < N; ++i) {
    valid_i[i].narrow(0, 0, len_i[static_cast<size_t>(i)]).fill_(true);
    valid_r[i].narrow(0, 0, len_r[static_cast<size_t>(i)]).fill_(true);
  }
  mt::NamedTensors file;
  for (const auto& [k, v] : in) file.emplace_back(k, v.to(at::kDouble).contiguous());
  file.emplace_back("valid_instr", valid_i.to(at::kByte));
  file.emplace_back("valid_resp", valid_r.to(at::kByte));
  const auto dir = mt::test::temp_dir("alignment_ref");
  mt::write_safetensors(dir / "in.safetensors", file);
  const auto script = std::filesystem::path(MT_SOURCE_DIR) / "tests" / "alignment_reference.py";
  const auto r = mt::test::run_command(mt::test::quoted(py) + " " + mt::test::quoted(script) + " " +
                                       mt::test::quoted(dir / "in.safetensors") + " " +
                                       mt::test::quoted(dir / "out.safetensors"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  mt::SafetensorsFile ref(dir / "out.safetensors");

  const std::vector<std::string> floats = {"hidden_instr", "hidden_resp", "proj_instr", "proj_resp", "logit_scale"};
  for (const std::string pooling : {"mean", "last"}) {
    for (const std::string loss_name : {"infonce", "direction", "rank"}) {
      INFO(pooling << " pooling, " << loss_name);
      std::map<std::string, at::Tensor> x;
      for (const auto& k : floats) x[k] = in[k].clone().requires_grad_(true);
      const at::Tensor e_i = mt::project_embeddings(mt::pool_hidden(x["hidden_instr"], valid_i, pooling), x["proj_instr"]);
      const at::Tensor e_r = mt::project_embeddings(mt::pool_hidden(x["hidden_resp"], valid_r, pooling), x["proj_resp"]);
      const at::Tensor logits = mt::alignment_logits(e_i, e_r, x["logit_scale"]);
      CHECK(max_abs(logits.to(at::kDouble) - ref.load(pooling + ".logits")) < 1e-4);
      const at::Tensor loss = loss_name == "infonce"     ? mt::infonce_loss(logits)
                              : loss_name == "direction" ? mt::direction_agreement_loss(logits)
                                                         : mt::rank_consistency_loss(logits.diagonal(), in["signal"]);
      const double want = ref.load(pooling + "." + loss_name).item<double>();
      CHECK(loss.item<double>() == Approx(want).epsilon(1e-5).margin(1e-6));
      CHECK(want > 1e-3);  // a term that is not trivially 0 on these inputs
      std::vector<at::Tensor> inputs;
      for (const auto& k : floats) inputs.push_back(x[k]);
      const auto grads = torch::autograd::grad({loss}, inputs);
      for (size_t k = 0; k < floats.size(); ++k) {
        INFO("gradient of " << floats[k]);
        const at::Tensor want_g = ref.load(pooling + "." + loss_name + ".grad." + floats[k]);
        // The rank term is invariant to the temperature up to its eps: that gradient is ~1e-9 and
        // compared in absolute terms.
        const double scale = std::max(max_abs(want_g), 1e-2);
        INFO("reference max |grad| " << max_abs(want_g));
        CHECK(max_abs(grads[k].to(at::kDouble) - want_g) / scale < 1e-4);
      }
    }
  }
}

TEST_CASE("alignment losses are invariant under a permutation of the pairs", "[alignment]") {
  at::manual_seed(5);
  const int64_t N = 8;
  const at::Tensor e_i = mt::project_embeddings(at::randn({N, 10}), at::randn({6, 10}));
  const at::Tensor e_r = mt::project_embeddings(at::randn({N, 10}), at::randn({6, 10}));
  const at::Tensor scale = at::full({}, 2.0);
  const at::Tensor signal = at::randn({N});
  const at::Tensor perm = at::randperm(N, at::kLong);
  const at::Tensor a = mt::alignment_logits(e_i, e_r, scale);
  const at::Tensor b = mt::alignment_logits(e_i.index_select(0, perm), e_r.index_select(0, perm), scale);
  CHECK(max_abs(b - a.index_select(0, perm).index_select(1, perm)) < 1e-6);
  CHECK(mt::infonce_loss(b).item<double>() == Approx(mt::infonce_loss(a).item<double>()).epsilon(1e-6));
  CHECK(mt::direction_agreement_loss(b).item<double>() ==
        Approx(mt::direction_agreement_loss(a).item<double>()).epsilon(1e-5));
  CHECK(mt::rank_consistency_loss(b.diagonal(), signal.index_select(0, perm)).item<double>() ==
        Approx(mt::rank_consistency_loss(a.diagonal(), signal).item<double>()).epsilon(1e-6));
  // Moving only the responses breaks the pairing: the loss changes.
  const at::Tensor c = mt::alignment_logits(e_i, e_r.index_select(0, perm), scale);
  CHECK(std::abs(mt::infonce_loss(c).item<double>() - mt::infonce_loss(a).item<double>()) > 1e-4);

  // Whole training rows shuffled: the window's alignment terms and gradients are the same.
  const ToyPairs toy = toy_pairs(12, 9);
  mt::Transformer m = tiny_model();
  mt::AlignmentScorer s = trainable_scorer(m);
  const std::vector<at::Tensor> leaves = leaves_of(m, s);
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < toy.data.size(); ++i) lengths.push_back(toy.data.view().length(i));
  auto rows = mt::pack_rows(lengths, 32, "first_fit");
  REQUIRE(rows.size() >= 3);
  mt::AlignmentTerms terms{&s, 0.7, 0.4, "pmi"};
  const mt::PackedBatch batch = mt::make_padded_batch(toy.data.view(), rows, 32);
  const mt::WindowResult r1 = mt::forward_backward(m, {batch}, batch.target_tokens, {}, {}, terms);
  const auto g1 = grads_of(leaves);
  clear(leaves);
  std::reverse(rows.begin(), rows.end());
  for (auto& row : rows) std::reverse(row.begin(), row.end());
  const mt::PackedBatch shuffled = mt::make_padded_batch(toy.data.view(), rows, 32);
  const mt::WindowResult r2 = mt::forward_backward(m, {shuffled}, shuffled.target_tokens, {}, {}, terms);
  const auto g2 = grads_of(leaves);
  clear(leaves);
  REQUIRE(r1.align_pairs == 12);
  CHECK(r2.align_pairs == 12);
  CHECK(r2.infonce_sum == Approx(r1.infonce_sum).epsilon(1e-5));
  CHECK(r2.consistency_sum == Approx(r1.consistency_sum).epsilon(1e-4));
  for (size_t k = 0; k < g1.size(); ++k) {
    INFO("leaf " << k);
    CHECK(max_abs(g1[k] - g2[k]) <= 1e-4 * std::max(max_abs(g1[k]), 1e-6));
  }
}

TEST_CASE("alignment weights of 0 give exactly the plain SFT gradients - each weight adds exactly its term",
          "[alignment]") {
  const ToyPairs toy = toy_pairs(10, 4);
  const mt::PackedBatch batch = packed(toy.data);
  mt::Transformer m = tiny_model();
  mt::AlignmentScorer s = trainable_scorer(m);
  const std::vector<at::Tensor> leaves = leaves_of(m, s);
  const std::vector<at::Tensor> model_leaves = mt::parameter_tensors(m);
  const int64_t tokens = batch.target_tokens;

  const mt::WindowResult plain = mt::forward_backward(m, {batch}, tokens, {});
  const auto g_plain = grads_of(leaves);
  clear(leaves);
  const mt::WindowResult zero = mt::forward_backward(m, {batch}, tokens, {}, {}, {&s, 0.0, 0.0, "pmi"});
  const auto g_zero = grads_of(leaves);
  clear(leaves);
  CHECK(zero.loss_sum == plain.loss_sum);
  CHECK(zero.align_pairs == 0);
  for (size_t k = 0; k < g_plain.size(); ++k) CHECK(at::equal(g_plain[k], g_zero[k]));  // bitwise
  for (const auto& [name, t] : s.named_tensors()) CHECK_FALSE(t.grad().defined());

  // lambda_align alone: SFT gradients + lambda * d L_infonce, the latter computed directly.
  const double lambda = 0.6;
  const mt::WindowResult with = mt::forward_backward(m, {batch}, tokens, {}, {}, {&s, lambda, 0.0, "pmi"});
  const auto g_with = grads_of(leaves);
  clear(leaves);
  REQUIRE(with.align_pairs == 10);
  CHECK(with.loss_sum == Approx(plain.loss_sum).epsilon(1e-6));
  const mt::AlignmentDocs docs = mt::alignment_docs_from_batch(batch);
  REQUIRE(docs.pairs == 10);
  {
    const mt::PairEncoding e = mt::encode_pairs(m, s, docs);
    const at::Tensor loss = mt::infonce_loss(mt::alignment_logits(e.instruction, e.response, s.logit_scale));
    CHECK(with.infonce_sum / 10 == Approx(loss.item<double>()).epsilon(1e-5));
    torch::autograd::backward({loss * lambda});
  }
  const auto g_term = grads_of(leaves);
  clear(leaves);
  double moved = 0;
  for (size_t k = 0; k < g_with.size(); ++k) {
    INFO("leaf " << k);
    const at::Tensor want = g_plain[k] + g_term[k];
    CHECK(max_abs(g_with[k] - want) <= 1e-5 * std::max(max_abs(want), 1e-6));
    if (k < model_leaves.size()) moved = std::max(moved, max_abs(g_with[k] - g_plain[k]));
  }
  CHECK(moved > 1e-6);  // the term reaches the model's own weights, not only the heads

  // lambda_cons alone: + lambda * d (rank(pmi signal) + direction agreement).
  const mt::WindowResult cons = mt::forward_backward(m, {batch}, tokens, {}, {}, {&s, 0.0, lambda, "pmi"});
  const auto g_cons = grads_of(leaves);
  clear(leaves);
  {
    at::Tensor nll;
    {
      c10::NoGradGuard no_grad;
      const at::Tensor h = mt::transformer_hidden(m, batch.input_ids, batch.positions, batch.valid, nullptr, batch.doc_ids);
      const at::Tensor rows = docs.target_rows;
      nll = mt::linear_cross_entropy_rows(h.reshape({-1, h.size(-1)}).index_select(0, rows), m.lm_head,
                                          batch.targets.reshape({-1}).index_select(0, rows));
    }
    const mt::PairEncoding e = mt::encode_pairs(m, s, docs);
    const at::Tensor logits = mt::alignment_logits(e.instruction, e.response, s.logit_scale);
    const at::Tensor signal = mt::alignment_signal(m, docs, nll, e.response_hidden.detach(), "pmi", 4096);
    const at::Tensor loss = mt::rank_consistency_loss(logits.diagonal(), signal) + mt::direction_agreement_loss(logits);
    CHECK(cons.consistency_sum / 10 == Approx(loss.item<double>()).epsilon(1e-4));
    torch::autograd::backward({loss * lambda});
  }
  const auto g_cons_term = grads_of(leaves);
  clear(leaves);
  for (size_t k = 0; k < g_cons.size(); ++k) {
    INFO("leaf " << k);
    const at::Tensor want = g_plain[k] + g_cons_term[k];
    CHECK(max_abs(g_cons[k] - want) <= 1e-5 * std::max(max_abs(want), 1e-6));
  }
}

TEST_CASE("alignment signals - forward log-likelihood and PMI per token - match the NLL scorer", "[alignment]") {
  const ToyPairs toy = toy_pairs(6, 21);
  const mt::PackedBatch batch = packed(toy.data);
  const mt::Transformer m = tiny_model(8);
  const mt::AlignmentScorer s = mt::init_alignment_scorer(m.config.hidden_size, 8, 0.1, "last", 1, at::TensorOptions());
  const mt::AlignmentDocs docs = mt::alignment_docs_from_batch(batch);
  REQUIRE(docs.pairs == 6);
  c10::NoGradGuard no_grad;
  const at::Tensor h = mt::transformer_hidden(m, batch.input_ids, batch.positions, batch.valid, nullptr, batch.doc_ids);
  const at::Tensor nll = mt::linear_cross_entropy_rows(h.reshape({-1, h.size(-1)}).index_select(0, docs.target_rows),
                                                       m.lm_head, batch.targets.reshape({-1}).index_select(0, docs.target_rows));
  const mt::PairEncoding e = mt::encode_pairs(m, s, docs);
  const at::Tensor fwd = mt::alignment_signal(m, docs, nll, e.response_hidden, "forward", 4096);
  const at::Tensor pmi = mt::alignment_signal(m, docs, nll, e.response_hidden, "pmi", 3);  // small chunks
  // The docs' pair order is the packing's; match pairs by their instruction tokens.
  for (int64_t i = 0; i < docs.pairs; ++i) {
    const int64_t len = docs.valid[i].sum().item<int64_t>();
    std::vector<int64_t> instr;
    for (int64_t t = 0; t < len; ++t) instr.push_back(docs.ids[i][t].item<int64_t>());
    const auto it = std::find(toy.instructions.begin(), toy.instructions.end(), instr);
    REQUIRE(it != toy.instructions.end());
    const auto& resp = toy.responses[static_cast<size_t>(it - toy.instructions.begin())];
    const std::vector<int64_t> first(resp.begin(), resp.begin() + 1), rest(resp.begin() + 1, resp.end());
    const auto scored = mt::score_nll(m, {{instr, resp}, {instr, first}, {first, rest}});
    INFO("pair " << i);
    CHECK(fwd[i].item<double>() == Approx(-scored[0].nll_mean()).epsilon(1e-5));
    const double cond = -(scored[0].nll_sum - scored[1].nll_sum), uncond = -scored[2].nll_sum;
    CHECK(pmi[i].item<double>() == Approx((cond - uncond) / static_cast<double>(rest.size())).epsilon(1e-4));
  }
}

TEST_CASE("alignment: a few steps on a toy set raise the score gap between aligned and shuffled pairs",
          "[alignment]") {
  const ToyPairs train = toy_pairs(48, 1), held = toy_pairs(24, 2);
  mt::Transformer m = tiny_model();
  mt::AlignmentScorer s = trainable_scorer(m);
  std::vector<std::pair<std::string, at::Tensor>> named = m.params;
  for (const auto& nt : s.named_tensors()) named.push_back(nt);
  mt::AdamWOptions ao;
  mt::AdamW opt(named, ao);
  const std::vector<at::Tensor> leaves = leaves_of(m, s);
  // The gap on held-out pairs: mean score of the true pairs minus the mean over shuffled pairings.
  auto gap = [&]() {
    std::vector<std::vector<int64_t>> shuffled(held.responses.begin() + 1, held.responses.end());
    shuffled.push_back(held.responses.front());
    const auto aligned = mt::alignment_pair_scores(m, s, held.instructions, held.responses, 8);
    const auto wrong = mt::alignment_pair_scores(m, s, held.instructions, shuffled, 8);
    double g = 0;
    for (size_t i = 0; i < aligned.size(); ++i) g += aligned[i] - wrong[i];
    return g / static_cast<double>(aligned.size());
  };
  const double before = gap();
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < train.data.size(); ++i) lengths.push_back(train.data.view().length(i));
  const auto rows = mt::pack_rows(lengths, 32, "first_fit");
  const mt::PackedBatch batch = mt::make_padded_batch(train.data.view(), rows, 32);
  double first_infonce = 0, last_infonce = 0;
  for (int step = 0; step < 30; ++step) {
    clear(leaves);
    const mt::WindowResult r = mt::forward_backward(m, {batch}, batch.target_tokens, {}, {}, {&s, 1.0, 0.2, "forward"});
    if (step == 0) first_infonce = r.infonce_sum / static_cast<double>(r.align_pairs);
    last_infonce = r.infonce_sum / static_cast<double>(r.align_pairs);
    opt.step(3e-3);
  }
  const double after = gap();
  INFO("held-out gap before " << before << ", after " << after << "; InfoNCE " << first_infonce << " -> " << last_infonce);
  CHECK(last_infonce < first_infonce - 0.5);
  CHECK(after > before + 1.0);
  CHECK(after > 1.0);
}

TEST_CASE("alignment scorer files: round trip, and bad files are errors that name the file and the problem",
          "[alignment]") {
  const auto dir = mt::test::temp_dir("align_file");
  const mt::AlignmentScorer s = mt::init_alignment_scorer(32, 8, 0.1, "last", 2, at::TensorOptions());
  mt::save_alignment_scorer(s, dir);
  const auto back = mt::load_alignment_scorer(dir, 32, at::kCPU);
  REQUIRE(back.has_value());
  CHECK(back->pooling == "last");
  CHECK(at::equal(back->instruction_proj, s.instruction_proj));
  CHECK(at::equal(back->logit_scale, s.logit_scale));
  CHECK_FALSE(mt::load_alignment_scorer(dir / "none", 32, at::kCPU).has_value());  // no file: no scorer
  const std::string file = (dir / mt::kAlignmentScorerFile).string();
  // Heads for another hidden size.
  mt::test::require_error([&] { mt::load_alignment_scorer(dir, 64, at::kCPU); }, {file, "[dim, 64]"});
  // No pooling in the metadata; an unknown pooling; a missing tensor; NaN weights.
  mt::NamedTensors tensors = s.named_tensors();
  mt::write_safetensors(dir / mt::kAlignmentScorerFile, tensors);
  mt::test::require_error([&] { mt::load_alignment_scorer(dir, 32, at::kCPU); }, {file, "pooling"});
  mt::write_safetensors(dir / mt::kAlignmentScorerFile, tensors, {{"pooling", "max"}});
  mt::test::require_error([&] { mt::load_alignment_scorer(dir, 32, at::kCPU); }, {file, "'max'"});
  mt::write_safetensors(dir / mt::kAlignmentScorerFile, {tensors[0], tensors[2]}, {{"pooling", "mean"}});
  mt::test::require_error([&] { mt::load_alignment_scorer(dir, 32, at::kCPU); }, {file, mt::kAlignmentResponseProj, "missing"});
  tensors[1].second = tensors[1].second.clone();
  tensors[1].second[0][0] = std::nan("");
  mt::write_safetensors(dir / mt::kAlignmentScorerFile, tensors, {{"pooling", "mean"}});
  mt::test::require_error([&] { mt::load_alignment_scorer(dir, 32, at::kCPU); }, {file, "NaN"});
  std::filesystem::remove_all(dir);
}
