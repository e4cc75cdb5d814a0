// Stage 4: mutual filtering — every eligible candidate scored by both directions (and the
// self-curation rating and alignment scorer where a rule uses them); each compared rule keeps the
// same budget; scored.jsonl lists every candidate with every component.
#include "trainer/method/stages.h"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "models/atomic_file.h"
#include "models/error.h"
#include "models/json_read.h"
#include "trainer/engine/alignment.h"
#include "trainer/method/chunked_inference.h"
#include "trainer/method/demo_tasks.h"
#include "trainer/method/mutual_filter.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"

namespace mt::pipeline {
namespace {

std::vector<json> read_candidates(const Context& ctx) {
  std::vector<json> cands;
  const fs::path file = synthesis_dir(ctx) / "candidates.jsonl";
  std::ifstream in(file, std::ios::binary);
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n)
    cands.push_back(parse_json(line, fmt::format("{}:{}", file.string(), n)));
  return cands;
}

Pair pair_of(const json& candidate) { return {candidate["instruction"], candidate["response"]}; }

// Eligibility: a non-empty instruction, not a repeat of an earlier candidate or of a seed pair.
// Marks scores[i].eligible and returns each candidate's drop reason ("" = eligible).
std::vector<std::string> eligibility(const Context& ctx, const std::vector<json>& cands,
                                     std::vector<CandidateScores>& scores) {
  const auto& fc = ctx.config.filter;
  const size_t n = cands.size();
  std::vector<std::string> drop_reason(n);
  std::set<std::string> seen;
  for (const auto& p : ctx.seed) seen.insert(dedupe_key(p.instruction, p.response) + "\x1eseed");
  std::set<std::string> seen_candidates;
  for (size_t i = 0; i < n; ++i) {
    const std::string instr = cands[i]["instruction"], resp = cands[i]["response"];
    const std::string key = dedupe_key(instr, resp);
    if (cands[i]["finish_reason"] == "skipped") drop_reason[i] = "too_long";
    else if (trim(instr).empty()) drop_reason[i] = "empty";
    else if (fc.drop_seed_pairs && seen.count(key + "\x1eseed")) drop_reason[i] = "seed_pair";
    else if (fc.dedupe && !seen_candidates.insert(key).second) drop_reason[i] = "duplicate";
    scores[i].eligible = drop_reason[i].empty();
  }
  return drop_reason;
}

// self_curation: the seed forward model rates each pair; the expected rating over "1".."5" from the
// probabilities of the five digits (NaN when not eligible or not scorable).
std::vector<double> self_curation_ratings(const Context& ctx, const fs::path& dir, const std::vector<json>& cands,
                                          const std::vector<CandidateScores>& scores, Throughput& tp) {
  const size_t n = cands.size();
  std::vector<double> rating(n, std::nan(""));
  std::vector<ScoreRequest> req;
  for (size_t i = 0; i < n; ++i)
    for (int d = 1; d <= 5; ++d) {
      if (!scores[i].eligible) {
        req.emplace_back();
        continue;
      }
      std::string user = replace_all(ctx.config.filter.self_curation_template, "{instruction}",
                                     cands[i]["instruction"].get<std::string>());
      user = replace_all(user, "{response}", cands[i]["response"].get<std::string>());
      // The rating as the model's whole answer, rendered as training renders answers (a plain
      // encode of the digit would add a SentencePiece "▁" that ChatML or Alpaca never put there).
      req.push_back(score_request(ctx, {"", user, std::to_string(d)}));
    }
  const auto res = score_chunked(ctx, dir / "self_curation_scores", model_of_round(ctx, 0, false), req, tp,
                                 "stage4.self_curation");
  for (size_t i = 0; i < n; ++i) {
    if (!scores[i].eligible) continue;
    double lse_max = -HUGE_VAL;
    std::array<double, 5> lp{};
    for (int d = 0; d < 5; ++d) {
      const auto& r = res[i * 5 + static_cast<size_t>(d)];
      lp[static_cast<size_t>(d)] = std::isfinite(r.nll_sum) ? -r.nll_sum : -HUGE_VAL;
      lse_max = std::max(lse_max, lp[static_cast<size_t>(d)]);
    }
    if (!std::isfinite(lse_max)) continue;
    double z = 0, e = 0;
    for (int d = 0; d < 5; ++d) {
      const double w = std::exp(lp[static_cast<size_t>(d)] - lse_max);
      z += w;
      e += w * (d + 1);
    }
    rating[i] = e / z;
  }
  return rating;
}

// The learned alignment scorer of the last forward model: s(I, R) of each eligible candidate, the
// instruction and the response encoded apart exactly as in training (prompt and target tokens).
std::vector<double> alignment_scores(const Context& ctx, const fs::path& fwd_model, const std::vector<ScoreRequest>& fwd_req,
                                     const std::vector<CandidateScores>& scores) {
  const size_t n = scores.size();
  std::vector<double> align(n, std::nan(""));
  const LoadedModel fm = load_for_inference(ctx, fwd_model);
  const auto scorer = load_alignment_scorer(fwd_model, fm.model.config.hidden_size, ctx.device);
  if (!scorer)
    throw Error(fmt::format("{}: no {} (the filter uses the alignment scorer: alignment.stages must include the "
                            "stage that trains this model, with a positive alignment weight)",
                            fwd_model.string(), kAlignmentScorerFile));
  std::vector<std::vector<int64_t>> instr, resp;
  std::vector<size_t> which;
  for (size_t i = 0; i < n; ++i)
    if (scores[i].eligible && !fwd_req[i].target_ids.empty()) {
      instr.push_back(fwd_req[i].prompt_ids);
      resp.push_back(fwd_req[i].target_ids);
      which.push_back(i);
    }
  const auto ta = std::chrono::steady_clock::now();
  const auto s = alignment_pair_scores(fm.model, *scorer, instr, resp, ctx.config.pipeline.batch_size);
  for (size_t k = 0; k < which.size(); ++k) align[which[k]] = s[k];
  log(fmt::format("stage 4: alignment scorer on {} candidates in {:.1f} s", which.size(), seconds_since(ta)));
  return align;
}

// Every compared rule's score of every candidate and the pairs it keeps, all at the budget of the
// primary rule (filter.rule under filter.keep).
struct Selection {
  std::vector<std::string> rules;
  std::map<std::string, std::vector<double>> rule_score;
  std::map<std::string, std::vector<bool>> kept;
  int64_t budget = 0;
};

Selection select_by_rules(const Context& ctx, const std::vector<CandidateScores>& scores) {
  const auto& fc = ctx.config.filter;
  FilterOptions fo;
  fo.keep = fc.keep;
  fo.threshold = fc.threshold;
  fo.top_k = fc.top_k;
  fo.quantile = fc.quantile;
  fo.forward_weight = fc.forward_weight;
  fo.reverse_weight = fc.reverse_weight;
  fo.alignment_weight = fc.alignment_weight;
  fo.normalize = fc.normalize;
  fo.seed = static_cast<uint64_t>(ctx.config.training.seed);
  Selection sel;
  sel.rules = compared_filter_rules(fc);
  for (const auto& rule : sel.rules) sel.rule_score[rule] = rule_scores(rule, scores, fo);
  sel.budget = keep_count(sel.rule_score[fc.rule], scores, fo);
  for (const auto& rule : sel.rules) {
    std::vector<bool> k(scores.size(), false);
    for (const int64_t i : select_best(sel.rule_score[rule], scores, sel.budget)) k[static_cast<size_t>(i)] = true;
    sel.kept[rule] = k;
  }
  return sel;
}

// Everything stage 4 wrote down about the candidates, for scored.jsonl and stage.json.
struct ScoredCandidates {
  std::vector<json> cands;
  std::vector<CandidateScores> scores;
  std::vector<std::string> drop_reason;
  std::vector<NllResult> fwd, rev;
  std::vector<double> rating, align;
};

// scored.jsonl (every candidate with every component, kept or not) and kept_<rule>.jsonl; returns
// stage.json's per-rule record and counts.
json write_scored(const Context& ctx, const fs::path& dir, const ScoredCandidates& sc, const Selection& sel) {
  const size_t n = sc.cands.size();
  std::vector<bool> eligible(n);
  for (size_t i = 0; i < n; ++i) eligible[i] = sc.scores[i].eligible;
  std::vector<double> fz(n), rz(n);
  {
    std::vector<double> f(n), r(n);
    for (size_t i = 0; i < n; ++i) {
      f[i] = sc.scores[i].forward_nll;
      r[i] = sc.scores[i].reverse_nll;
    }
    fz = zscores(f, eligible);
    rz = zscores(r, eligible);
  }
  std::string text;
  std::map<std::string, std::vector<Pair>> kept_pairs;
  std::map<std::string, int64_t> kept_correct;
  int64_t eligible_count = 0, eligible_correct = 0;
  std::map<std::string, int64_t> drops;
  for (size_t i = 0; i < n; ++i) {
    const Pair p = pair_of(sc.cands[i]);
    const CandidateScores& s = sc.scores[i];
    json rec{{"id", sc.cands[i]["id"]},
             {"response_id", sc.cands[i]["response_id"]},
             {"instruction", p.instruction},
             {"response", p.response},
             {"eligible", s.eligible},
             {"drop_reason", sc.drop_reason[i].empty() ? json() : json(sc.drop_reason[i])},
             {"forward_nll", number_or_null(s.forward_nll)},
             {"reverse_nll", number_or_null(s.reverse_nll)},
             {"forward_tokens", sc.fwd[i].n_tokens},
             {"reverse_tokens", sc.rev[i].n_tokens},
             {"forward_z", s.eligible ? number_or_null(fz[i]) : json()},
             {"reverse_z", s.eligible ? number_or_null(rz[i]) : json()},
             {"self_rating", number_or_null(sc.rating[i])},
             {"alignment_score", number_or_null(sc.align[i])}};
    json rs = json::object(), ks = json::object();
    for (const auto& rule : sel.rules) {
      rs[rule] = s.eligible ? number_or_null(sel.rule_score.at(rule)[i]) : json();
      ks[rule] = static_cast<bool>(sel.kept.at(rule)[i]);
    }
    rec["scores"] = rs;
    rec["kept"] = ks;
    bool correct = false;
    if (ctx.demo_checker) {
      correct = check_demo_pair(p.instruction, p.response);
      rec["correct"] = correct;
    }
    if (!sc.drop_reason[i].empty()) ++drops[sc.drop_reason[i]];
    if (s.eligible) {
      ++eligible_count;
      eligible_correct += correct;
    }
    for (const auto& rule : sel.rules)
      if (sel.kept.at(rule)[i]) {
        kept_pairs[rule].push_back(p);
        kept_correct[rule] += correct;
      }
    text += rec.dump() + "\n";
  }
  write_text_file_atomically(dir / "scored.jsonl", text);
  json per_rule = json::object();
  for (const auto& rule : sel.rules) {
    write_pairs(dir / fmt::format("kept_{}.jsonl", rule), kept_pairs[rule]);
    const int64_t k = static_cast<int64_t>(kept_pairs[rule].size());
    per_rule[rule] = {{"kept", k},
                      {"precision", ctx.demo_checker && k > 0 ? json(static_cast<double>(kept_correct[rule]) / static_cast<double>(k)) : json()}};
  }
  return json{{"eligible", eligible_count},
              {"dropped", drops},
              {"eligible_precision", ctx.demo_checker && eligible_count > 0
                                         ? json(static_cast<double>(eligible_correct) / static_cast<double>(eligible_count))
                                         : json()},
              {"rules", per_rule}};
}

}  // namespace

void run_stage4(const Context& ctx) {
  const fs::path dir = filter_dir(ctx);
  if (stage_complete(dir)) return;
  fs::create_directories(dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto& fc = ctx.config.filter;
  ScoredCandidates sc;
  sc.cands = read_candidates(ctx);
  const size_t n = sc.cands.size();
  const fs::path fwd_model = model_of_round(ctx, ctx.config.rounds.count, false);
  const fs::path rev_model = model_of_round(ctx, ctx.config.rounds.count, true);
  sc.scores.resize(n);
  sc.drop_reason = eligibility(ctx, sc.cands, sc.scores);
  // Both directions score every eligible candidate (the others get no score).
  std::vector<ScoreRequest> fwd_req(n), rev_req(n);
  for (size_t i = 0; i < n; ++i) {
    if (!sc.scores[i].eligible) continue;
    const Pair p = pair_of(sc.cands[i]);
    fwd_req[i] = score_request(ctx, forward_turns(ctx, p));
    rev_req[i] = score_request(ctx, reverse_turns(ctx, p));
  }
  Throughput tp;
  sc.fwd = score_chunked(ctx, dir / "forward_scores", fwd_model, fwd_req, tp, "stage4.forward");
  sc.rev = score_chunked(ctx, dir / "reverse_scores", rev_model, rev_req, tp, "stage4.reverse");
  for (size_t i = 0; i < n; ++i) {
    sc.scores[i].forward_nll = mean_nll(sc.fwd[i]);
    sc.scores[i].reverse_nll = mean_nll(sc.rev[i]);
  }
  sc.rating = filter_rule_used(fc, "self_curation") ? self_curation_ratings(ctx, dir, sc.cands, sc.scores, tp)
                                                    : std::vector<double>(n, std::nan(""));
  for (size_t i = 0; i < n; ++i) sc.scores[i].self_rating = sc.rating[i];
  const bool alignment_used = filter_rule_used(fc, "alignment") || fc.alignment_weight > 0;
  sc.align = alignment_used ? alignment_scores(ctx, fwd_model, fwd_req, sc.scores) : std::vector<double>(n, std::nan(""));
  for (size_t i = 0; i < n; ++i) sc.scores[i].alignment_score = sc.align[i];

  const Selection sel = select_by_rules(ctx, sc.scores);
  const json counts = write_scored(ctx, dir, sc, sel);
  const json& per_rule = counts["rules"];
  const int64_t eligible_count = counts["eligible"].get<int64_t>();
  json record{{"stage", "filter"},
              {"rule", fc.rule},
              {"keep", fc.keep},
              {"budget", sel.budget},
              {"candidates", n},
              {"eligible", eligible_count},
              {"dropped", counts["dropped"]},
              {"eligible_precision", counts["eligible_precision"]},
              {"rules", per_rule},
              {"forward_model", fwd_model.string()},
              {"reverse_model", rev_model.string()},
              {"scoring", tp.to_json()},
              {"seconds", seconds_since(t0)}};
  std::string line;
  for (const auto& rule : sel.rules)
    line += fmt::format(" {} {}{}", rule, per_rule[rule]["kept"].get<int64_t>(),
                        per_rule[rule]["precision"].is_null() ? "" : fmt::format(" (precision {:.3f})", per_rule[rule]["precision"].get<double>()));
  log(fmt::format("stage 4: {} eligible of {} candidates; kept:{}; scoring {:.0f} tok/s", eligible_count, n, line,
                  tp.per_second()));
  if (sel.budget == 0)
    log("stage 4: warning: the filter keeps no pair (filter.keep / threshold / top_k / quantile); the final models "
        "train on the seed pairs only");
  mark_stage_complete(dir, record);
}

}  // namespace mt::pipeline
