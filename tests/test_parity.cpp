// Golden parity with Hugging Face transformers on the committed tiny fixtures (LLaMA-3 with llama3
// rope scaling + GQA + sharded weights, Mistral with a sliding window shorter than the sequence,
// Qwen2 with q/k/v bias and tied embeddings): fp32 logits on CPU within 1e-4, per-token NLL,
// greedy continuations token for token, and KV-cache decoding equal to a full forward pass.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <nlohmann/json.hpp>

#include <cstdio>

#include "models/checkpoint_dir.h"
#include "models/generate.h"
#include "models/safetensors.h"
#include "models/score.h"
#include "tests/parity_fixtures.h"
#include "tests/test_util.h"

namespace {

using mt::test::kParityFamilies;
using mt::test::positions_for;

// A fixture model in fp32 on CPU with its transformers outputs (expected.safetensors).
struct Golden {
  mt::LoadedModel loaded;
  at::Tensor input_ids, logits, token_nll;
  explicit Golden(const char* family)
      : loaded(mt::load_model_dir(mt::test::fixture(family), c10::kCPU, at::kFloat)) {
    mt::SafetensorsFile expected(mt::test::fixture(family) / "expected.safetensors");
    input_ids = expected.load("input_ids");
    logits = expected.load("logits");
    token_nll = expected.load("token_nll");
  }
};

}  // namespace

TEST_CASE("parity: fp32 logits on CPU within 1e-4 of transformers", "[parity]") {
  for (const char* family : kParityFamilies) {
    INFO("fixture " << family);
    Golden g(family);
    const mt::LoadedModel& m = g.loaded;
    const at::Tensor& ids = g.input_ids;
    const at::Tensor& want = g.logits;
    c10::NoGradGuard no_grad;
    at::Tensor got = mt::transformer_logits(m.model, mt::transformer_hidden(m.model, ids, positions_for(ids)));
    REQUIRE(got.sizes() == want.sizes());
    const double max_diff = (got - want).abs().max().item<double>();
    std::printf("parity %-8s fp32 CPU logits max|diff| = %.3g\n", family, max_diff);
    CHECK(max_diff < 1e-4);
  }
}

TEST_CASE("parity: per-token NLL equals transformers' cross entropy", "[parity]") {
  for (const char* family : kParityFamilies) {
    INFO("fixture " << family);
    Golden g(family);
    const mt::LoadedModel& m = g.loaded;
    const at::Tensor& ids = g.input_ids;
    at::Tensor token_nll = g.token_nll.to(at::kDouble);
    c10::NoGradGuard no_grad;
    std::vector<mt::ScoreRequest> reqs;
    for (int64_t b = 0; b < ids.size(0); ++b) {
      std::vector<int64_t> row(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + ids.size(1));
      // Split at different points: the NLL of the target part is the tail of the per-token NLL.
      for (int64_t split : {1, 7}) {
        reqs.push_back({std::vector<int64_t>(row.begin(), row.begin() + split),
                        std::vector<int64_t>(row.begin() + split, row.end())});
      }
    }
    auto results = mt::score_nll(m.model, reqs, /*batch_size=*/3);
    size_t r = 0;
    for (int64_t b = 0; b < ids.size(0); ++b) {
      for (int64_t split : {1, 7}) {
        const double want = token_nll[b].narrow(0, split - 1, ids.size(1) - split).sum().item<double>();
        CHECK(results[r].n_tokens == ids.size(1) - split);
        CHECK(std::abs(results[r].nll_sum - want) < 1e-3);
        ++r;
      }
    }
  }
}

TEST_CASE("parity: greedy continuations identical to transformers, batched and alone", "[parity][generate]") {
  for (const char* family : kParityFamilies) {
    INFO("fixture " << family);
    const auto dir = mt::test::fixture(family);
    mt::LoadedModel m = mt::load_model_dir(dir, c10::kCPU, at::kFloat);
    const nlohmann::json g = nlohmann::json::parse(mt::test::read_file(dir / "expected_generate.json"));
    const auto prompts = g["prompts"].get<std::vector<std::vector<int64_t>>>();
    const auto want = g["greedy"].get<std::vector<std::vector<int64_t>>>();
    mt::SamplingConfig s;
    s.max_new_tokens = g["max_new_tokens"].get<int64_t>();
    c10::NoGradGuard no_grad;
    // All prompts together (left padding, different lengths) ...
    CHECK(mt::generate(m.model, prompts, s) == want);
    // ... and each alone.
    for (size_t i = 0; i < prompts.size(); ++i) CHECK(mt::generate(m.model, {prompts[i]}, s)[0] == want[i]);
  }
}

TEST_CASE("kv cache: incremental decoding equals the full forward pass", "[parity][kv_cache]") {
  for (const char* family : kParityFamilies) {
    INFO("fixture " << family);
    Golden g(family);
    const mt::LoadedModel& m = g.loaded;
    const at::Tensor& ids = g.input_ids;  // [2, 24]: longer than Mistral's window of 8
    c10::NoGradGuard no_grad;
    at::Tensor pos = positions_for(ids);
    at::Tensor full = mt::transformer_logits(m.model, mt::transformer_hidden(m.model, ids, pos));
    mt::KVCache cache = mt::make_kv_cache(m.model, ids.size(0), ids.size(1));
    const int64_t prefill = 5;
    std::vector<at::Tensor> parts;
    parts.push_back(mt::transformer_logits(
        m.model, mt::transformer_hidden(m.model, ids.narrow(1, 0, prefill), pos.narrow(1, 0, prefill), {}, &cache)));
    for (int64_t t = prefill; t < ids.size(1); ++t)
      parts.push_back(mt::transformer_logits(
          m.model, mt::transformer_hidden(m.model, ids.narrow(1, t, 1), pos.narrow(1, t, 1), {}, &cache)));
    at::Tensor incremental = at::cat(parts, 1);
    const double max_diff = (incremental - full).abs().max().item<double>();
    CHECK(cache.length == ids.size(1));
    CHECK(max_diff < 1e-4);  // fp32 rounding of different matmul shapes, same bound as HF parity
  }
}

TEST_CASE("packing: documents packed in one row give the logits they get alone", "[parity][packing]") {
  for (const char* family : kParityFamilies) {  // mistral: documents longer than the sliding window
    INFO("fixture " << family);
    Golden g(family);
    c10::NoGradGuard no_grad;
    const int64_t lens[] = {11, 3, 10};  // 24 tokens of row 0 split into three documents
    at::Tensor row = g.input_ids.narrow(0, 0, 1);
    std::vector<at::Tensor> pos_parts, doc_parts;
    for (int64_t d = 0; d < 3; ++d) {
      pos_parts.push_back(at::arange(lens[d], at::kLong));
      doc_parts.push_back(at::full({lens[d]}, d, at::kLong));
    }
    at::Tensor pos = at::cat(pos_parts).unsqueeze(0), docs = at::cat(doc_parts).unsqueeze(0);
    at::Tensor packed = mt::transformer_logits(g.loaded.model, mt::transformer_hidden(g.loaded.model, row, pos, {}, nullptr, docs));
    int64_t start = 0;
    for (int64_t d = 0; d < 3; ++d) {
      at::Tensor ids = row.narrow(1, start, lens[d]);
      at::Tensor alone = mt::transformer_logits(g.loaded.model, mt::transformer_hidden(g.loaded.model, ids, positions_for(ids)));
      CHECK((packed.narrow(1, start, lens[d]) - alone).abs().max().item<double>() < 1e-4);
      start += lens[d];
    }
    // Without doc ids the later documents see the earlier ones, so the logits differ.
    at::Tensor leaky = mt::transformer_logits(g.loaded.model, mt::transformer_hidden(g.loaded.model, row, pos));
    CHECK((leaky - packed).abs().max().item<double>() > 1e-2);
  }
}

TEST_CASE("generate: seeded sampling is reproducible and respects top-k, stop ids and max tokens", "[generate]") {
  mt::LoadedModel m = mt::load_model_dir(mt::test::fixture("llama3"), c10::kCPU, at::kFloat);
  c10::NoGradGuard no_grad;
  const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3}, {4, 5, 6, 7, 8, 9}};
  mt::SamplingConfig s;
  s.greedy = false;
  s.temperature = 0.8;
  s.top_k = 20;
  s.top_p = 0.9;
  s.seed = 1234;
  s.max_new_tokens = 12;
  auto a = mt::generate(m.model, prompts, s);
  auto b = mt::generate(m.model, prompts, s);
  CHECK(a == b);
  s.seed = 999;
  CHECK(mt::generate(m.model, prompts, s) != a);
  for (const auto& o : a) CHECK(o.size() == 12);

  // top_k = 1 is greedy whatever the seed.
  mt::SamplingConfig k1 = s;
  k1.top_k = 1;
  mt::SamplingConfig greedy;
  greedy.max_new_tokens = 12;
  CHECK(mt::generate(m.model, prompts, k1) == mt::generate(m.model, prompts, greedy));

  // Stop ids: stop right after the first greedy token of prompt 0; prompt 1 goes on.
  auto g = mt::generate(m.model, prompts, greedy);
  mt::SamplingConfig stop = greedy;
  stop.stop_ids = {g[0][0]};
  auto st = mt::generate(m.model, prompts, stop);
  CHECK(st[0] == std::vector<int64_t>{g[0][0]});
  // Prompt 1 stops at its own first occurrence of that token, else runs to the limit.
  auto it = std::find(g[1].begin(), g[1].end(), g[0][0]);
  std::vector<int64_t> want1(g[1].begin(), it == g[1].end() ? g[1].end() : it + 1);
  CHECK(st[1] == want1);
}

TEST_CASE("generate: filter_logits keeps exactly the top-k and the top-p nucleus", "[generate]") {
  at::Tensor logits = at::log(at::tensor({0.5, 0.2, 0.15, 0.1, 0.05}, at::kFloat)).unsqueeze(0);
  mt::SamplingConfig s;
  s.top_k = 2;
  at::Tensor f = mt::filter_logits(logits, s);
  CHECK(at::isfinite(f).sum().item<int64_t>() == 2);
  s.top_k = 0;
  s.top_p = 0.8;  // 0.5 + 0.2 = 0.7 < 0.8, so 0.15 is needed too
  f = mt::filter_logits(logits, s);
  CHECK(at::isfinite(f).sum().item<int64_t>() == 3);
  CHECK(std::isinf(f[0][3].item<float>()));
  s.top_p = 0.01;  // keeps at least the most likely token
  f = mt::filter_logits(logits, s);
  CHECK(at::isfinite(f).sum().item<int64_t>() == 1);
  CHECK(std::isfinite(f[0][0].item<float>()));
}

TEST_CASE("generate: bad prompts are errors, not crashes", "[generate][bad-input]") {
  mt::LoadedModel m = mt::load_model_dir(mt::test::fixture("qwen2"), c10::kCPU, at::kFloat);
  mt::SamplingConfig s;
  s.max_new_tokens = 2;
  mt::test::require_error([&] { mt::generate(m.model, {{1, 2}, {}}, s); }, {"prompt 1 is empty"});
  mt::test::require_error([&] { mt::generate(m.model, {{1, 256}}, s); }, {"token id 256", "vocabulary"});
  mt::test::require_error([&] { mt::generate(m.model, {{-3}}, s); }, {"token id -3"});
  s.max_new_tokens = 300;
  mt::test::require_error([&] { mt::generate(m.model, {{1}}, s); }, {"max_position_embeddings"});
}
