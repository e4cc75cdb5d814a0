// The alignment scorer and its losses (see alignment.h; the formulas are docs/method.md's).
#include "trainer/engine/alignment.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "models/error.h"
#include "models/safetensors.h"

namespace mt {
namespace fs = std::filesystem;

std::vector<std::pair<std::string, at::Tensor>> AlignmentScorer::named_tensors() const {
  return {{kAlignmentInstructionProj, instruction_proj},
          {kAlignmentResponseProj, response_proj},
          {kAlignmentLogitScale, logit_scale}};
}

namespace {

void check_pooling(const std::string& pooling) {
  if (pooling != "mean" && pooling != "last")
    throw Error(fmt::format("alignment.pooling must be mean or last, got '{}'", pooling));
}

}  // namespace

AlignmentScorer init_alignment_scorer(int64_t hidden, int64_t dim, double temperature, const std::string& pooling,
                                      uint64_t seed, const c10::TensorOptions& options) {
  check_pooling(pooling);
  if (hidden <= 0 || dim <= 0) throw Error(fmt::format("alignment scorer: bad sizes hidden {} dim {}", hidden, dim));
  if (!(temperature > 0)) throw Error(fmt::format("alignment.temperature must be > 0, got {}", temperature));
  // A generator of its own: the heads do not shift the model's random stream.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed ^ 0xa11e9a11e9ull);
  const double std = 1.0 / std::sqrt(static_cast<double>(hidden));
  AlignmentScorer s;
  s.pooling = pooling;
  s.instruction_proj = at::normal(0.0, std, {dim, hidden}, gen, at::TensorOptions().dtype(at::kFloat)).to(options.device());
  s.response_proj = at::normal(0.0, std, {dim, hidden}, gen, at::TensorOptions().dtype(at::kFloat)).to(options.device());
  s.logit_scale = at::full({}, std::log(1.0 / temperature), at::TensorOptions().dtype(at::kFloat).device(options.device()));
  return s;
}

AlignmentScorer alignment_scorer_from_tensors(const std::map<std::string, at::Tensor>& tensors, int64_t hidden,
                                              const std::string& pooling, const std::string& source) {
  check_pooling(pooling);
  auto get = [&](const char* name) {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw Error(fmt::format("{}: alignment scorer tensor '{}' is missing", source, name));
    if (!at::isfinite(it->second).all().item<bool>())
      throw Error(fmt::format("{}: alignment scorer tensor '{}' holds NaN or Inf", source, name));
    return it->second.to(at::kFloat);
  };
  AlignmentScorer s;
  s.pooling = pooling;
  s.instruction_proj = get(kAlignmentInstructionProj);
  s.response_proj = get(kAlignmentResponseProj);
  s.logit_scale = get(kAlignmentLogitScale);
  for (const auto* t : {&s.instruction_proj, &s.response_proj})
    if (t->dim() != 2 || t->size(1) != hidden || t->size(0) != s.instruction_proj.size(0))
      throw Error(fmt::format("{}: alignment projection heads have shapes {} and {}; expected [dim, {}] both", source,
                              fmt::join(s.instruction_proj.sizes(), "x"), fmt::join(s.response_proj.sizes(), "x"),
                              hidden));
  if (s.logit_scale.dim() != 0)
    throw Error(fmt::format("{}: '{}' must be a scalar, got shape {}", source, kAlignmentLogitScale,
                            fmt::join(s.logit_scale.sizes(), "x")));
  return s;
}

void save_alignment_scorer(const AlignmentScorer& scorer, const fs::path& model_dir) {
  NamedTensors out;
  for (const auto& [name, t] : scorer.named_tensors())
    out.emplace_back(name, t.detach().to(at::kCPU, at::kFloat).contiguous());
  write_safetensors(model_dir / kAlignmentScorerFile, out, {{"format", "pt"}, {"pooling", scorer.pooling}});
}

std::optional<AlignmentScorer> load_alignment_scorer(const fs::path& model_dir, int64_t hidden,
                                                     const c10::Device& device) {
  const fs::path file = model_dir / kAlignmentScorerFile;
  if (!fs::exists(file)) return std::nullopt;
  SafetensorsFile st(file);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& info : st.header().tensors) tensors[info.name] = st.load(info.name);
  const auto it = st.header().metadata.find("pooling");
  if (it == st.header().metadata.end())
    throw Error(fmt::format("{}: no 'pooling' in the metadata (mean or last)", file.string()));
  if (it->second != "mean" && it->second != "last")
    throw Error(fmt::format("{}: metadata pooling '{}' is neither mean nor last", file.string(), it->second));
  return alignment_scorer_on(alignment_scorer_from_tensors(tensors, hidden, it->second, file.string()), device);
}

AlignmentScorer alignment_scorer_on(const AlignmentScorer& scorer, const c10::Device& device) {
  AlignmentScorer s = scorer;
  s.instruction_proj = s.instruction_proj.to(device);
  s.response_proj = s.response_proj.to(device);
  s.logit_scale = s.logit_scale.to(device);
  return s;
}

namespace {

// Pads token lists into the [2N, L] document batch.
AlignmentDocs pad_docs(const std::vector<std::vector<int64_t>>& instructions,
                       const std::vector<std::vector<int64_t>>& responses) {
  AlignmentDocs d;
  d.pairs = static_cast<int64_t>(instructions.size());
  size_t longest = 1;
  for (const auto* side : {&instructions, &responses})
    for (const auto& doc : *side) longest = std::max(longest, doc.size());
  const auto rows = 2 * d.pairs;
  const auto len = static_cast<int64_t>(longest);
  d.ids = at::zeros({rows, len}, at::kLong);
  d.positions = at::zeros({rows, len}, at::kLong);
  d.valid = at::zeros({rows, len}, at::kBool);
  auto ids = d.ids.accessor<int64_t, 2>();
  auto pos = d.positions.accessor<int64_t, 2>();
  auto valid = d.valid.accessor<bool, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    const auto& doc = r < d.pairs ? instructions[static_cast<size_t>(r)] : responses[static_cast<size_t>(r - d.pairs)];
    for (size_t t = 0; t < doc.size(); ++t) {
      ids[r][static_cast<int64_t>(t)] = doc[t];
      pos[r][static_cast<int64_t>(t)] = static_cast<int64_t>(t);
      valid[r][static_cast<int64_t>(t)] = true;
    }
  }
  return d;
}

}  // namespace

AlignmentDocs alignment_docs_from_batch(const PackedBatch& batch) {
  const at::Tensor ids_t = batch.input_ids.to(at::kCPU).contiguous();
  const at::Tensor doc_t = batch.doc_ids.to(at::kCPU).contiguous();
  const at::Tensor tgt_t = batch.targets.to(at::kCPU).contiguous();
  const int64_t B = ids_t.size(0), S = ids_t.size(1);
  auto ids = ids_t.accessor<int64_t, 2>();
  auto doc = doc_t.accessor<int64_t, 2>();
  auto tgt = tgt_t.accessor<int64_t, 2>();
  std::vector<std::vector<int64_t>> instructions, responses;
  std::vector<int64_t> rows, pair_of;
  std::vector<uint8_t> first;
  for (int64_t b = 0; b < B; ++b) {
    int64_t a = 0;
    while (a < S) {
      if (doc[b][a] < 0) {  // padding
        ++a;
        continue;
      }
      int64_t e = a;
      while (e < S && doc[b][e] == doc[b][a]) ++e;
      // Document [a, e): a target at t means token t + 1 is a response token (targets never cross
      // a document).
      std::vector<int64_t> resp, resp_rows;
      int64_t first_resp = -1;
      for (int64_t t = a; t < e; ++t)
        if (tgt[b][t] != kIgnoreIndex) {
          if (first_resp < 0) first_resp = t + 1;
          resp.push_back(ids[b][t + 1]);
          resp_rows.push_back(b * S + t);
        }
      if (first_resp > a && !resp.empty()) {
        const auto pair = static_cast<int64_t>(instructions.size());
        instructions.emplace_back(&ids[b][a], &ids[b][a] + (first_resp - a));
        responses.push_back(std::move(resp));
        for (size_t k = 0; k < resp_rows.size(); ++k) {
          rows.push_back(resp_rows[k]);
          pair_of.push_back(pair);
          first.push_back(k == 0);
        }
      }
      a = e;
    }
  }
  AlignmentDocs d = pad_docs(instructions, responses);
  d.target_rows = at::tensor(rows, at::kLong);
  d.target_pair = at::tensor(pair_of, at::kLong);
  d.target_first = at::tensor(std::vector<int64_t>(first.begin(), first.end()), at::kLong).to(at::kBool);
  return d;
}

AlignmentDocs alignment_docs_from_tokens(const std::vector<std::vector<int64_t>>& instructions,
                                         const std::vector<std::vector<int64_t>>& responses) {
  if (instructions.size() != responses.size())
    throw Error(fmt::format("alignment pairs: {} instructions but {} responses", instructions.size(), responses.size()));
  for (size_t i = 0; i < instructions.size(); ++i)
    if (instructions[i].empty() || responses[i].empty())
      throw Error(fmt::format("alignment pair {}: the {} has no token", i, instructions[i].empty() ? "instruction" : "response"));
  return pad_docs(instructions, responses);
}

at::Tensor pool_hidden(const at::Tensor& hidden, const at::Tensor& valid, const std::string& pooling) {
  check_pooling(pooling);
  const at::Tensor h = hidden.to(at::kFloat);
  const at::Tensor v = valid.to(hidden.device());
  if (pooling == "mean") {
    const at::Tensor w = v.to(at::kFloat).unsqueeze(-1);
    return (h * w).sum(1) / w.sum(1).clamp_min(1.0);
  }
  // The last valid position of each row (rows are valid from position 0 on).
  const at::Tensor last = (v.to(at::kLong).sum(1) - 1).clamp_min(0);
  return h.index({at::arange(h.size(0), last.options()), last});
}

at::Tensor project_embeddings(const at::Tensor& pooled, const at::Tensor& proj) {
  const at::Tensor x = at::matmul(pooled.to(at::kFloat), proj.t());
  return x / x.norm(2, {-1}, /*keepdim=*/true).clamp_min(1e-12);
}

at::Tensor inverse_temperature(const at::Tensor& logit_scale) {
  return logit_scale.clamp_max(std::log(kAlignmentMaxInverseTemperature)).exp();
}

at::Tensor alignment_logits(const at::Tensor& e_instr, const at::Tensor& e_resp, const at::Tensor& logit_scale) {
  return at::matmul(e_instr, e_resp.t()) * inverse_temperature(logit_scale);
}

InBatchStats in_batch_stats(const at::Tensor& logits) {
  c10::NoGradGuard no_grad;
  const at::Tensor l = logits.detach();
  const int64_t n = l.size(0);
  const auto nd = static_cast<double>(n);
  const double diag = l.diagonal().sum().item<double>();
  InBatchStats s;
  s.retrieval_hits = l.argmax(1).eq(at::arange(n, l.options().dtype(at::kLong))).sum().item<double>();
  s.score_gap = diag / nd - (l.sum().item<double>() - diag) / (nd * (nd - 1));
  return s;
}

at::Tensor infonce_loss(const at::Tensor& logits) {
  const int64_t n = logits.size(0);
  const at::Tensor labels = at::arange(n, logits.options().dtype(at::kLong));
  return 0.5 * (at::cross_entropy_loss(logits, labels) + at::cross_entropy_loss(logits.t(), labels));
}

at::Tensor direction_agreement_loss(const at::Tensor& logits) {
  const auto n = static_cast<double>(logits.size(0));
  const at::Tensor log_rows = at::log_softmax(logits, 1);  // instruction -> response
  const at::Tensor log_cols = at::log_softmax(logits, 0);  // response -> instruction
  // P = exp(log_rows) / N, Q = exp(log_cols) / N: log P - log Q = log_rows - log_cols, and the
  // symmetric KL is 0.5 * sum (P - Q)(log P - log Q).
  return 0.5 * ((log_rows.exp() - log_cols.exp()) * (log_rows - log_cols)).sum() / n;
}

at::Tensor rank_consistency_loss(const at::Tensor& scores, const at::Tensor& signal) {
  const at::Tensor m = signal.detach().to(scores.device(), at::kFloat);
  const at::Tensor keep = at::isfinite(m);
  const int64_t n = keep.sum().item<int64_t>();
  const at::Tensor zero = (scores * 0).sum();  // keeps the graph and dtype; its gradient is 0
  if (n < 2) return zero;
  const at::Tensor s = scores.to(at::kFloat).masked_select(keep);
  const at::Tensor t = m.masked_select(keep);
  if ((t.max() - t.min()).item<double>() == 0) return zero;
  auto z = [](const at::Tensor& x, double floor) {
    const at::Tensor c = x - x.mean();
    return c / (c.pow(2).mean() + floor).sqrt();
  };
  // The scores' spread is floored at one logit: at initialization the pair scores are nearly
  // equal, and dividing by their ~0 spread would make the gradient unbounded.
  return (z(s, kRankScoreVarianceFloor) - z(t, 1e-8)).pow(2).mean();
}

PairEncoding encode_pairs(const Transformer& model, const AlignmentScorer& scorer, const AlignmentDocs& docs,
                          const ForwardOptions& options) {
  const at::Device device = model.embed.device();
  const at::Tensor valid = docs.valid.to(device);
  const at::Tensor hidden =
      transformer_hidden(model, docs.ids.to(device), docs.positions.to(device), valid, nullptr, {}, options);
  const int64_t n = docs.pairs;
  PairEncoding out;
  out.instruction = project_embeddings(pool_hidden(hidden.narrow(0, 0, n), valid.narrow(0, 0, n), scorer.pooling),
                                       scorer.instruction_proj);
  out.response = project_embeddings(pool_hidden(hidden.narrow(0, n, n), valid.narrow(0, n, n), scorer.pooling),
                                    scorer.response_proj);
  out.response_hidden = hidden.narrow(0, n, n);
  return out;
}

std::vector<double> alignment_pair_scores(const Transformer& model, const AlignmentScorer& scorer,
                                          const std::vector<std::vector<int64_t>>& instructions,
                                          const std::vector<std::vector<int64_t>>& responses, int64_t batch_size) {
  if (batch_size <= 0) throw Error("alignment scores: batch size must be positive");
  c10::NoGradGuard no_grad;
  std::vector<double> out;
  const auto n = static_cast<int64_t>(instructions.size());
  for (int64_t a = 0; a < n; a += batch_size) {
    const int64_t b = std::min(n, a + batch_size);
    const std::vector<std::vector<int64_t>> in(instructions.begin() + a, instructions.begin() + b);
    const std::vector<std::vector<int64_t>> re(responses.begin() + a, responses.begin() + b);
    const PairEncoding e = encode_pairs(model, scorer, alignment_docs_from_tokens(in, re));
    const at::Tensor s =
        ((e.instruction * e.response).sum(1) * inverse_temperature(scorer.logit_scale)).to(at::kCPU, at::kDouble).contiguous();
    out.insert(out.end(), s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
  }
  return out;
}

}  // namespace mt
