// The differentiable alignment scorer (docs/method.md, "The alignment scorer"). An instruction and a
// response are each encoded alone by the model being trained; their final hidden states are pooled
// (mean over tokens, or the last token), projected by a head of their own and L2-normalized; the
// score is s(I, R) = cosine / temperature. Its losses over the B pairs of a micro-batch:
//   L_infonce     symmetric InfoNCE over in-batch negatives (instruction -> response and back);
//   L_consistency the pair scores' standardized distance to the pairs' likelihood signal (detached:
//                 pointwise mutual information or forward log-likelihood per token), plus the
//                 symmetric KL between the two InfoNCE directions' distributions.
// The functions on tensors are the reference-tested pieces (tests/alignment_reference.py); the
// heads live beside the model's parameters in the optimizer and in checkpoints.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/transformer.h"
#include "trainer/data/packing.h"

namespace mt {

// Parameter names in checkpoints and in a model dir's alignment_scorer.safetensors.
constexpr const char* kAlignmentInstructionProj = "alignment.instruction_proj.weight";
constexpr const char* kAlignmentResponseProj = "alignment.response_proj.weight";
constexpr const char* kAlignmentLogitScale = "alignment.logit_scale";
constexpr const char* kAlignmentScorerFile = "alignment_scorer.safetensors";
// The learned inverse temperature is used capped at 100 (as CLIP), so the scores stay bounded.
constexpr double kAlignmentMaxInverseTemperature = 100.0;

struct AlignmentScorer {
  at::Tensor instruction_proj;  // [dim, hidden] fp32
  at::Tensor response_proj;     // [dim, hidden] fp32
  at::Tensor logit_scale;       // 0-dim fp32: log(1 / temperature)
  std::string pooling = "mean"; // "mean" | "last"
  bool defined() const { return instruction_proj.defined(); }
  // The three tensors under their names (kAlignment*), in a fixed order.
  std::vector<std::pair<std::string, at::Tensor>> named_tensors() const;
};

// Heads drawn from normal(0, 1/sqrt(hidden)) with a generator seeded by `seed`; logit_scale = log(1 / temperature).
AlignmentScorer init_alignment_scorer(int64_t hidden, int64_t dim, double temperature, const std::string& pooling,
                                      uint64_t seed, const c10::TensorOptions& options);

// The scorer from named tensors (a checkpoint's or a file's): the three names present, shapes
// [dim, hidden] twice and [], finite values; errors are mt::Error naming `source`.
AlignmentScorer alignment_scorer_from_tensors(const std::map<std::string, at::Tensor>& tensors, int64_t hidden,
                                              const std::string& pooling, const std::string& source);

// The same heads on `device`.
AlignmentScorer alignment_scorer_on(const AlignmentScorer& scorer, const c10::Device& device);

// model_dir/alignment_scorer.safetensors (fp32, pooling in the metadata), written atomically.
void save_alignment_scorer(const AlignmentScorer& scorer, const std::filesystem::path& model_dir);
// Reads it; nullopt when the file does not exist. A damaged file is an mt::Error naming it.
std::optional<AlignmentScorer> load_alignment_scorer(const std::filesystem::path& model_dir, int64_t hidden,
                                                     const c10::Device& device);

// The instruction and response documents of pairs, padded: rows 0..N-1 hold the instructions,
// rows N..2N-1 the responses, each from position 0 with nothing of the other in view.
struct AlignmentDocs {
  at::Tensor ids, positions, valid;  // [2N, L] int64, int64, bool (CPU)
  int64_t pairs = 0;
  // For the likelihood signal: the batch's flattened target rows (index into [B*S]) that belong
  // to a pair, in pair order, the pair of each, and whether it is its pair's first response token.
  at::Tensor target_rows, target_pair, target_first;  // [T] int64, int64, bool (CPU)
};

// The pairs of a packed batch: each document with at least one prompt token and one target gives a
// pair; the instruction is the document's tokens before its first target token, the response its
// target tokens (for a multi-turn conversation: every assistant turn, in order).
AlignmentDocs alignment_docs_from_batch(const PackedBatch& batch);
// Pairs given as token ids (the filter, `maintune score`): empty instructions or responses are an
// mt::Error naming the pair.
AlignmentDocs alignment_docs_from_tokens(const std::vector<std::vector<int64_t>>& instructions,
                                         const std::vector<std::vector<int64_t>>& responses);

// --- the reference-tested pieces ----------------------------------------------------------------

// [N, L, H] hidden states and [N, L] validity -> [N, H] fp32: the mean over valid positions, or
// the hidden state at the last valid position.
at::Tensor pool_hidden(const at::Tensor& hidden, const at::Tensor& valid, const std::string& pooling);
// normalize(pooled @ proj^T) along the last dim (eps 1e-12, as torch.nn.functional.normalize).
at::Tensor project_embeddings(const at::Tensor& pooled, const at::Tensor& proj);
// 1 / temperature = exp(min(logit_scale, log 100)), a 0-dim tensor (differentiable).
at::Tensor inverse_temperature(const at::Tensor& logit_scale);
// [N, N] scores inverse_temperature(logit_scale) * e_instr @ e_resp^T; row i is instruction i.
at::Tensor alignment_logits(const at::Tensor& e_instr, const at::Tensor& e_resp, const at::Tensor& logit_scale);
// 0.5 * (CE(logits, diag) + CE(logits^T, diag)), means over rows.
at::Tensor infonce_loss(const at::Tensor& logits);
// 0.5 * (KL(P || Q) + KL(Q || P)) with P = softmax over each row / N and Q = softmax over each
// column / N: both are distributions over the N x N pairs; 0 when the two directions agree.
at::Tensor direction_agreement_loss(const at::Tensor& logits);
// mean over pairs with a finite signal of (z(scores) - z(signal))^2, z = (x - mean) / sqrt(var + e)
// (population variance over those pairs), e = kRankScoreVarianceFloor for the scores and 1e-8 for
// the signal, which is detached. Once the scores spread over more than a logit this is close to
// 2 * (1 - Pearson r). 0 (no gradient) with fewer than 2 such pairs or a constant signal.
constexpr double kRankScoreVarianceFloor = 1.0;
at::Tensor rank_consistency_loss(const at::Tensor& scores, const at::Tensor& signal);

// Diagnostics of a batch's [N, N] scores (N >= 2): how many instructions rank their own response
// first, and the mean true-pair score minus the mean score of the other pairings.
struct InBatchStats {
  double retrieval_hits = 0, score_gap = 0;
};
InBatchStats in_batch_stats(const at::Tensor& logits);

// --- the scorer on a model -----------------------------------------------------------------------

struct PairEncoding {
  at::Tensor instruction, response;  // [N, dim] fp32, unit norm
  at::Tensor response_hidden;        // [N, L, H] final hidden states of the response documents
};
// Encodes both halves of every pair with one forward pass over the 2N documents.
PairEncoding encode_pairs(const Transformer& model, const AlignmentScorer& scorer, const AlignmentDocs& docs,
                          const ForwardOptions& options = {});

// Per-pair scores s(I_i, R_i) (no gradient), in batches of `batch_size` pairs.
std::vector<double> alignment_pair_scores(const Transformer& model, const AlignmentScorer& scorer,
                                          const std::vector<std::vector<int64_t>>& instructions,
                                          const std::vector<std::vector<int64_t>>& responses, int64_t batch_size);

}  // namespace mt
