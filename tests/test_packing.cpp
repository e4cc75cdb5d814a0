// Packing (trainer/data/packing.h): exact targets, positions, doc ids and padding of a packed batch;
// the row plans of each mode; the flat cu_seqlens layout; and the equivalence test: per-example
// summed cross-entropy of a packed batch through the tiny LLaMA-3 fixture equals each example run
// alone, within 1e-4, and padding leaves gradients finite.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <map>
#include <random>

#include "models/checkpoint_dir.h"
#include "models/transformer.h"
#include "trainer/data/data_loader.h"
#include "trainer/data/packing.h"
#include "tests/test_util.h"

namespace {

std::vector<int64_t> to_vec(const at::Tensor& t) {
  at::Tensor c = t.contiguous().to(at::kLong);
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Synthetic examples with ids < vocab: a prompt (mask 0) then a response (mask 1).
mt::TokenizedDataset synthetic(const std::vector<int64_t>& lengths, uint32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);  // only the test's data: any fixed values do
  mt::TokenizedDataset ds;
  for (int64_t len : lengths) {
    mt::TokenizedExample e;
    const int64_t prompt = std::max<int64_t>(1, len * 2 / 5);
    for (int64_t t = 0; t < len; ++t) {
      e.ids.push_back(static_cast<uint32_t>(rng() % vocab));
      e.loss_mask.push_back(t >= prompt ? 1 : 0);
    }
    ds.add(e);
  }
  return ds;
}

}  // namespace

TEST_CASE("data: targets are the next token where its mask is set, never across documents", "[data]") {
  const uint32_t ids[] = {1, 10, 11, 20, 21, 2};
  const uint8_t mask[] = {0, 0, 0, 1, 1, 1};
  int64_t out[6];
  mt::document_targets(ids, mask, 6, out);
  CHECK(std::vector<int64_t>(out, out + 6) == std::vector<int64_t>{-100, -100, 20, 21, 2, -100});

  mt::TokenizedDataset ds;
  ds.add({{1, 10, 20, 2}, {0, 0, 1, 1}});
  ds.add({{1, 30, 40}, {0, 1, 1}});
  ds.add({{1, 50, 60, 70, 2}, {0, 0, 0, 1, 1}});
  const auto b = mt::make_padded_batch(ds.view(), {{0, 1}, {2}}, 8, /*pad_id=*/0);
  CHECK(b.input_ids.sizes() == at::IntArrayRef({2, 8}));
  CHECK(to_vec(b.input_ids) == std::vector<int64_t>{1, 10, 20, 2, 1, 30, 40, 0,  //
                                                    1, 50, 60, 70, 2, 0, 0, 0});
  CHECK(to_vec(b.positions) == std::vector<int64_t>{0, 1, 2, 3, 0, 1, 2, 0,  //
                                                    0, 1, 2, 3, 4, 0, 0, 0});
  CHECK(to_vec(b.doc_ids) == std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, -1,  //
                                                  0, 0, 0, 0, 0, -1, -1, -1});
  CHECK(to_vec(b.valid) == std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 0,  //
                                                1, 1, 1, 1, 1, 0, 0, 0});
  // The last token of each document predicts nothing: the next one belongs to another document.
  CHECK(to_vec(b.targets) == std::vector<int64_t>{-100, 20, 2, -100, 30, 40, -100, -100,  //
                                                  -100, -100, 70, 2, -100, -100, -100, -100});
  CHECK(b.target_tokens == 6);
  CHECK(b.examples == std::vector<std::vector<int64_t>>{{0, 1}, {2}});

  mt::test::require_error([&] { mt::make_padded_batch(ds.view(), {{0, 2}}, 8); }, {"row 0 holds 9 tokens"});
  mt::test::require_error([&] { mt::make_padded_batch(ds.view(), {{3}}, 8); }, {"example index 3"});

  // The flat layout: the same tokens back to back, cu_seqlens at the document starts.
  const auto f = mt::make_flat_batch(ds.view(), {{0, 1}, {2}});
  CHECK(to_vec(f.input_ids) == std::vector<int64_t>{1, 10, 20, 2, 1, 30, 40, 1, 50, 60, 70, 2});
  CHECK(to_vec(f.positions) == std::vector<int64_t>{0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 4});
  CHECK(to_vec(f.doc_ids) == std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2});
  CHECK(to_vec(f.targets) == std::vector<int64_t>{-100, 20, 2, -100, 30, 40, -100, -100, -100, 70, 2, -100});
  CHECK(to_vec(f.cu_seqlens) == std::vector<int64_t>{0, 4, 7, 12});
  CHECK(f.cu_seqlens.scalar_type() == at::kInt);
  CHECK(f.max_seqlen == 5);
  CHECK(f.target_tokens == 6);
  CHECK(f.valid.all().item<bool>());
  CHECK_FALSE(b.synthetic.any().item<bool>());  // masks of 1: nothing synthetic
  CHECK(b.synthetic_target_tokens == 0);
}

TEST_CASE("data: targets of synthetic examples (mask 2) are flagged in both layouts, and are targets like 1",
          "[data][source_weight]") {
  const uint32_t ids[] = {1, 10, 11, 20, 21, 2};
  const uint8_t mask[] = {0, 0, 0, 2, 2, 2};
  int64_t out[6];
  bool syn[6];
  mt::document_targets(ids, mask, 6, out, syn);
  CHECK(std::vector<int64_t>(out, out + 6) == std::vector<int64_t>{-100, -100, 20, 21, 2, -100});
  CHECK(std::vector<bool>(syn, syn + 6) == std::vector<bool>{false, false, true, true, true, false});

  // Example 1 is synthetic; 0 and 2 are real. Its targets are flagged, nothing else (padding and
  // the other documents' targets included).
  mt::TokenizedDataset ds;
  ds.add({{1, 10, 20, 2}, {0, 0, 1, 1}});
  ds.add({{1, 30, 40}, {0, 2, 2}});
  ds.add({{1, 50, 60, 70, 2}, {0, 0, 0, 1, 1}});
  const auto b = mt::make_padded_batch(ds.view(), {{0, 1}, {2}}, 8);
  CHECK(to_vec(b.targets) == std::vector<int64_t>{-100, 20, 2, -100, 30, 40, -100, -100,  //
                                                  -100, -100, 70, 2, -100, -100, -100, -100});
  CHECK(b.synthetic.scalar_type() == at::kBool);
  CHECK(to_vec(b.synthetic) == std::vector<int64_t>{0, 0, 0, 0, 1, 1, 0, 0,  //
                                                    0, 0, 0, 0, 0, 0, 0, 0});
  CHECK(b.target_tokens == 6);
  CHECK(b.synthetic_target_tokens == 2);
  const auto f = mt::make_flat_batch(ds.view(), {{0, 1}, {2}});
  CHECK(to_vec(f.targets) == std::vector<int64_t>{-100, 20, 2, -100, 30, 40, -100, -100, -100, 70, 2, -100});
  CHECK(to_vec(f.synthetic) == std::vector<int64_t>{0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0});
  CHECK(f.synthetic_target_tokens == 2);

  // mark_synthetic_targets: every target becomes 2, non-targets stay 0.
  mt::TokenizedDataset marked = ds;
  mt::mark_synthetic_targets(marked);
  CHECK(marked.masks == std::vector<uint8_t>{0, 0, 2, 2, 0, 2, 2, 0, 0, 0, 2, 2});
  CHECK(marked.tokens == ds.tokens);
}

TEST_CASE("data: row plans for first-fit, sequential and one example per row", "[data]") {
  const std::vector<int64_t> lengths = {6, 5, 4, 3, 2, 7};
  CHECK(mt::pack_rows(lengths, 10, "sequential") ==
        std::vector<std::vector<int64_t>>{{0}, {1, 2}, {3, 4}, {5}});
  // First-fit: 6 | 5 | 4 -> row 0 (10) | 3 -> row 1 (8) | 2 -> row 1 (10) | 7 -> row 2.
  CHECK(mt::pack_rows(lengths, 10, "first_fit") == std::vector<std::vector<int64_t>>{{0, 2}, {1, 3, 4}, {5}});
  CHECK(mt::pack_rows(lengths, 10, "none") == std::vector<std::vector<int64_t>>{{0}, {1}, {2}, {3}, {4}, {5}});
  mt::test::require_error([&] { mt::pack_rows({3, 11}, 10, "first_fit"); }, {"example 1 has 11 tokens"});
  mt::test::require_error([&] { mt::pack_rows({0}, 10, "sequential"); }, {"example 0 has 0 tokens"});
  mt::test::require_error([&] { mt::pack_rows({1}, 10, "best_fit"); }, {"\"best_fit\""});

  // Every example exactly once, in order within a row, no row over max_len; first-fit never uses
  // more rows than sequential.
  std::mt19937_64 rng(7);
  std::vector<int64_t> many;
  for (int i = 0; i < 2000; ++i) many.push_back(1 + static_cast<int64_t>(rng() % 512));
  for (const char* mode : {"first_fit", "sequential", "none"}) {
    INFO(mode);
    const auto rows = mt::pack_rows(many, 512, mode);
    std::vector<int> seen(many.size(), 0);
    bool ok = true;
    for (const auto& row : rows) {
      int64_t used = 0;
      for (size_t k = 0; k < row.size(); ++k) {
        ++seen[static_cast<size_t>(row[k])];
        used += many[static_cast<size_t>(row[k])];
        if (k > 0 && row[k] <= row[k - 1]) ok = false;
      }
      if (used > 512 || row.empty()) ok = false;
    }
    CHECK(ok);
    CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
  }
  CHECK(mt::pack_rows(many, 512, "first_fit").size() < mt::pack_rows(many, 512, "sequential").size());
}

TEST_CASE("data: a packed batch gives the per-example losses of the examples run alone", "[data][packing]") {
  mt::LoadedModel m = mt::load_model_dir(mt::test::fixture("llama3"), c10::kCPU, at::kFloat);
  const auto vocab = static_cast<uint32_t>(m.model.config.vocab_size);
  REQUIRE(vocab <= 256);
  const std::vector<int64_t> lengths = {7, 12, 5, 9, 16, 3, 11, 6};
  const mt::TokenizedDataset ds = synthetic(lengths, vocab, 42);
  const auto view = ds.view();
  std::vector<int64_t> lens(lengths.begin(), lengths.end());
  const auto rows = mt::pack_rows(lens, 24, "first_fit");
  REQUIRE(rows.size() < lengths.size());  // several documents share rows

  // Summed NLL of each target token: [B, S], zero where ignored.
  auto token_nll = [&](const mt::PackedBatch& b, bool with_docs) {
    at::Tensor h = mt::transformer_hidden(m.model, b.input_ids, b.positions, b.valid, nullptr,
                                          with_docs ? b.doc_ids : at::Tensor());
    at::Tensor logp = at::log_softmax(mt::transformer_logits(m.model, h).to(at::kFloat), -1);
    at::Tensor ignore = b.targets.eq(mt::kIgnoreIndex);
    at::Tensor nll = -logp.gather(-1, b.targets.clamp_min(0).unsqueeze(-1)).squeeze(-1);
    return at::where(ignore, at::zeros_like(nll), nll);
  };
  auto per_example = [&](const mt::PackedBatch& b, const at::Tensor& nll) {
    std::map<int64_t, double> out;
    const auto doc = to_vec(b.doc_ids);
    at::Tensor n = nll.contiguous();
    const int64_t S = b.input_ids.size(1);
    if (b.cu_seqlens.defined()) {  // flat: doc ids run across the batch
      std::vector<int64_t> order;
      for (const auto& row : b.examples) order.insert(order.end(), row.begin(), row.end());
      for (int64_t t = 0; t < S; ++t) out[order[static_cast<size_t>(doc[static_cast<size_t>(t)])]] += n[0][t].item<double>();
      return out;
    }
    for (size_t r = 0; r < b.examples.size(); ++r)
      for (int64_t t = 0; t < S; ++t) {
        const int64_t d = doc[r * static_cast<size_t>(S) + static_cast<size_t>(t)];
        if (d >= 0) out[b.examples[r][static_cast<size_t>(d)]] += n[static_cast<int64_t>(r)][t].item<double>();
      }
    return out;
  };

  c10::NoGradGuard no_grad;
  std::map<int64_t, double> alone;
  for (int64_t e = 0; e < view.num_examples; ++e) {
    const auto b = mt::make_padded_batch(view, {{e}}, view.length(e));  // no padding, one document
    alone[e] = token_nll(b, false).sum().item<double>();
  }
  const auto packed = mt::make_padded_batch(view, rows, 24);
  CHECK(packed.valid.logical_not().any().item<bool>());  // the test covers padding too
  const auto got = per_example(packed, token_nll(packed, true));
  const auto flat = mt::make_flat_batch(view, rows);
  const auto got_flat = per_example(flat, token_nll(flat, true));
  const auto leaky = per_example(packed, token_nll(packed, false));
  REQUIRE(got.size() == lengths.size());
  REQUIRE(got_flat.size() == lengths.size());
  double worst_leak = 0;
  for (int64_t e = 0; e < view.num_examples; ++e) {
    INFO("example " << e << " alone " << alone[e] << " packed " << got.at(e) << " flat " << got_flat.at(e));
    CHECK(std::abs(got.at(e) - alone[e]) < 1e-4);
    CHECK(std::abs(got_flat.at(e) - alone[e]) < 1e-4);
    worst_leak = std::max(worst_leak, std::abs(leaky.at(e) - alone[e]));
  }
  CHECK(worst_leak > 1e-2);  // without doc ids later documents see earlier ones: the test can fail
  CHECK(packed.target_tokens == flat.target_tokens);

  // Padding rows see no key at all; the loss and every gradient must still be finite.
  c10::AutoGradMode grad(true);
  for (auto& [name, t] : m.model.params) t.requires_grad_(true);
  at::Tensor loss = token_nll(packed, true).sum() / static_cast<double>(packed.target_tokens);
  loss.backward();
  CHECK(std::isfinite(loss.item<double>()));
  bool finite = true;
  for (auto& [name, t] : m.model.params)
    if (t.grad().defined() && !at::isfinite(t.grad()).all().item<bool>()) {
      finite = false;
      UNSCOPED_INFO("non-finite gradient in " << name);
    }
  CHECK(finite);
}
