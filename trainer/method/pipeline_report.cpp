// The pipeline report (see pipeline_report.h): the stages' records read back, summary.json, the
// SVG plots, then report.md section by section. Markdown by hand: tables, the plots as <img> links
// to SVG files, and samples as escaped table cells.
#include "trainer/method/pipeline_report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "models/atomic_file.h"
#include "models/error.h"
#include "models/json_read.h"
#include "trainer/base/jsonl.h"
#include "trainer/method/run_layout.h"
#include "trainer/report/svg_plot.h"

namespace mt {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string num(const json& v, const char* fmt_spec = "{:.4f}") {
  if (!v.is_number()) return "n/a";
  return fmt::format(fmt::runtime(fmt_spec), v.get<double>());
}

std::string pct(const json& v) {
  if (!v.is_number()) return "not measured";
  return fmt::format("{:.1f}%", 100.0 * v.get<double>());
}

// A Markdown table cell: no pipes or newlines, bounded length.
std::string cell(const std::string& s, size_t max_chars = 80) {
  std::string out;
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80) ++chars;
    if (chars > max_chars) {
      out += "…";
      break;
    }
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r' || c == '\t') out += ' ';
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '`') out += "'";
    else out += static_cast<char>(c);
  }
  return out.empty() ? "(empty)" : out;
}

double tokens_per_s(const json& tp) {
  return tp.is_object() && tp.contains("tokens_per_s") && tp["tokens_per_s"].is_number() ? tp["tokens_per_s"].get<double>() : NAN;
}

// The stages' records, read back from the run directory (null where a stage left none).
struct StageRecords {
  json demo, s1, s3, s4, s5;
  std::vector<json> rounds;  // stage2_round_K, K = 1..rounds.count
};

StageRecords read_stage_records(const fs::path& run_dir, const PipelineConfig& config) {
  StageRecords recs;
  recs.demo = read_json_or_null(run_dir / kStage0Demo / kStageRecordFile);
  recs.s1 = read_json_or_null(run_dir / kStage1SeedModels / kStageRecordFile);
  for (int64_t k = 1; k <= config.rounds.count; ++k)
    recs.rounds.push_back(read_json_or_null(run_dir / round_stage(k) / kStageRecordFile));
  recs.s3 = read_json_or_null(run_dir / kStage3Synthesis / kStageRecordFile);
  recs.s4 = read_json_or_null(run_dir / kStage4Filter / kStageRecordFile);
  recs.s5 = read_json_or_null(run_dir / kStage5Final / kStageRecordFile);
  if (recs.s1.is_null() || recs.s3.is_null() || recs.s4.is_null() || recs.s5.is_null())
    throw Error(fmt::format("{}: report: a stage record is missing (the pipeline has not finished)", run_dir.string()));
  return recs;
}

// summary.json: what scripts compare across runs.
void write_summary_json(const fs::path& dir, const PipelineConfig& config, const StageRecords& recs) {
  const json& s4 = recs.s4;
  const json& s5 = recs.s5;
  json summary;
  summary["filter"] = json::object();
  for (const auto& [rule, r] : s4["rules"].items()) summary["filter"][rule] = {{"kept", r["kept"]}, {"precision", r["precision"]}};
  summary["final"] = json::object();
  for (const auto& [rule, m] : s5["models"].items())
    summary["final"][rule] = {{"accuracy", m["accuracy"]}, {"synthetic_pairs", m["synthetic_pairs"]}, {"heldout_nll", m["heldout_nll"]}};
  summary["seed_forward"] = {{"accuracy", s5["seed_forward"].is_object() ? s5["seed_forward"]["accuracy"] : json()}};
  summary["candidates"] = s4["candidates"];
  summary["eligible"] = s4["eligible"];
  summary["budget"] = s4["budget"];
  summary["eligible_precision"] = s4["eligible_precision"];
  summary["rounds"] = config.rounds.count;
  summary["checker"] = config.pipeline.checker;
  write_text_file_atomically(dir / kReportSummaryFile, summary.dump(2) + "\n");
}

// Held-out losses per round (round 0 = the seed models).
void plot_losses_per_round(const fs::path& dir, const StageRecords& recs) {
  PlotSeries f{"forward NLL(R | I)", {}, {}}, r{"reverse NLL(I | R)", {}, {}};
  auto add = [&](double x, const json& rec) {
    if (!rec.is_object()) return;
    const json& h = rec["heldout_nll"];
    if (h["forward"].is_number()) {
      f.x.push_back(x);
      f.values.push_back(h["forward"].get<double>());
    }
    if (h["reverse"].is_number()) {
      r.x.push_back(x);
      r.values.push_back(h["reverse"].get<double>());
    }
  };
  add(0, recs.s1);
  for (size_t k = 0; k < recs.rounds.size(); ++k) add(static_cast<double>(k + 1), recs.rounds[k]);
  PlotOptions o;
  o.title = "Held-out mean NLL per round (0 = seed models)";
  o.x_label = "round";
  o.y_label = "mean NLL per token";
  write_text_file_atomically(dir / "losses_per_round.svg", svg_line_chart({f, r}, o));
}

// The scored candidates of stage 4, one JSON object per line (unreadable lines left out).
std::vector<json> read_scored(const fs::path& run_dir) {
  std::vector<json> scored;
  std::ifstream in(run_dir / kStage4Filter / "scored.jsonl", std::ios::binary);
  std::string line;
  while (std::getline(in, line)) {
    json j = parse_json_or_discarded(line);
    if (!j.is_discarded()) scored.push_back(std::move(j));
  }
  return scored;
}

// A histogram of `value` over the eligible candidates: kept by `rule` vs dropped, or (by_truth)
// correct vs wrong pairs.
void write_histogram(const fs::path& dir, const std::vector<json>& scored, const std::string& rule,
                     const std::string& file, const std::string& title, const std::string& x_label,
                     const std::function<json(const json&)>& value, bool by_truth) {
  PlotSeries a, b;
  if (by_truth) {
    a.label = "correct pair (ground truth)";
    b.label = "wrong pair";
  } else {
    a.label = fmt::format("kept by {}", rule);
    b.label = "dropped";
  }
  for (const auto& c : scored) {
    if (!c.value("eligible", false)) continue;
    const json v = value(c);
    if (!v.is_number()) continue;
    const bool first = by_truth ? c.value("correct", false) : c["kept"].value(rule, false);
    (first ? a : b).values.push_back(v.get<double>());
  }
  PlotOptions o;
  o.title = title;
  o.x_label = x_label;
  o.y_label = "candidates";
  write_text_file_atomically(dir / file, svg_histogram({a, b}, o));
}

// Score distributions from the scored candidates; with a checker, each rule's by ground truth too.
void plot_score_distributions(const fs::path& dir, const std::vector<json>& scored, const std::string& rule,
                              bool checked, const json& s4) {
  write_histogram(dir, scored, rule, "forward_nll.svg", "Forward mean NLL of the response given the instruction",
                  "mean NLL", [](const json& c) { return c["forward_nll"]; }, false);
  write_histogram(dir, scored, rule, "reverse_nll.svg", "Reverse mean NLL of the instruction given the response",
                  "mean NLL", [](const json& c) { return c["reverse_nll"]; }, false);
  write_histogram(dir, scored, rule, "rule_score.svg", fmt::format("Score of rule '{}' (higher is kept first)", rule),
                  "score", [&](const json& c) { return c["scores"][rule]; }, false);
  if (checked)
    for (const std::string r : {"forward", "reverse", "mutual"})
      if (s4["rules"].contains(r))
        write_histogram(dir, scored, rule, fmt::format("truth_{}.svg", r),
                        fmt::format("Score of rule '{}' for correct and wrong pairs", r), "score",
                        [r](const json& c) { return c["scores"][r]; }, true);
}

// The title, the run, and the demo task suite when there is one.
std::string md_introduction(const fs::path& run_dir, const PipelineConfig& config, const json& demo) {
  std::string md;
  md += "# MAIN pipeline report\n\n";
  md += fmt::format("Run directory: `{}`. Filter rule: **{}** (keep: {}), {} mutual round(s), alpha schedule {}.\n\n",
                    run_dir.string(), config.filter.rule, config.filter.keep, config.rounds.count, config.rounds.alpha_schedule);
  if (!demo.is_null())
    md += fmt::format("Demo task suite: {} seed pairs, {} unlabeled responses ({} of them noise that no instruction "
                      "yields), {} held-out pairs, SentencePiece tokenizer of {} pieces, {} task families.\n\n",
                      demo["seed_pairs"].dump(), demo["unlabeled"].dump(), demo["unlabeled_noise"].dump(),
                      demo["eval_pairs"].dump(), demo["tokenizer_vocab"].dump(), demo["families"].size());
  return md;
}

std::string md_filter_rules(const json& s4, bool checked) {
  std::string md = "## Filter rules on the same candidates (equal data budget)\n\n";
  md += fmt::format("{} candidates, {} eligible after dropping empty instructions, repeats and seed pairs ({}); every rule "
                    "keeps the same number of pairs: **{}**.{}\n\n",
                    s4["candidates"].dump(), s4["eligible"].dump(), s4["dropped"].dump(), s4["budget"].dump(),
                    checked ? fmt::format(" Precision = the fraction of kept pairs whose instruction really yields the "
                                          "response (checked by the demo task suite). Precision of all eligible "
                                          "candidates: {}.",
                                          pct(s4["eligible_precision"]))
                            : " Precision: not measured (no ground-truth checker; pipeline.checker is none).");
  md += "| rule | kept | precision |\n|---|---:|---:|\n";
  for (const auto& [r, v] : s4["rules"].items()) md += fmt::format("| {} | {} | {} |\n", r, v["kept"].dump(), pct(v["precision"]));
  md += "\n";
  return md;
}

std::string md_final_models(const PipelineConfig& config, const StageRecords& recs, bool checked) {
  const json& s1 = recs.s1;
  const json& s5 = recs.s5;
  std::string md = "## Final models\n\n";
  md += fmt::format("Each trained from the base model for {} steps on the seed pairs plus one rule's kept pairs "
                    "(synthetic weight alpha = {}{}). Accuracy = exact match on the held-out instructions ({}).\n\n",
                    config.final_tuning.steps, config.final_tuning.alpha, config.final_tuning.source_tags ? ", with source tags" : "",
                    checked ? "checked by the task suite" : "against the reference responses");
  md += "| model | synthetic pairs | held-out NLL | accuracy |\n|---|---:|---:|---:|\n";
  for (const auto& [r, m] : s5["models"].items())
    md += fmt::format("| seed + {} | {} | {} | {} |\n", r, m["synthetic_pairs"].dump(), num(m["heldout_nll"]), pct(m["accuracy"]));
  if (s5["seed_forward"].is_object())
    md += fmt::format("| stage-1 forward model (seed only, {} steps) | 0 | {} | {} |\n", config.pipeline.seed_steps,
                      num(s1["heldout_nll"]["forward"]), pct(s5["seed_forward"]["accuracy"]));
  md += "\n";
  return md;
}

// What the numbers say about mutual filtering, stated from the numbers (with a checker and the
// mutual rule only; "" otherwise).
std::string md_mutual_verdict(const json& s4, const json& s5, bool checked) {
  if (!checked || !s4["rules"].contains("mutual")) return "";
  std::string md = "## Does mutual filtering win?\n\n";
  const double pm = s4["rules"]["mutual"]["precision"].is_number() ? s4["rules"]["mutual"]["precision"].get<double>() : NAN;
  for (const auto& [r, v] : s4["rules"].items()) {
    if (r == "mutual" || !v["precision"].is_number()) continue;
    const double p = v["precision"].get<double>();
    md += fmt::format("- Precision, mutual vs {}: {:.1f}% vs {:.1f}% — {}.\n", r, 100 * pm, 100 * p,
                      pm > p ? "mutual is higher" : (pm == p ? "equal" : "mutual is **lower**"));
  }
  if (s5["models"].contains("mutual") && s5["models"].contains("none") && s5["models"]["mutual"]["accuracy"].is_number() &&
      s5["models"]["none"]["accuracy"].is_number()) {
    const double am = s5["models"]["mutual"]["accuracy"].get<double>(), an = s5["models"]["none"]["accuracy"].get<double>();
    md += fmt::format("- Final accuracy, seed + mutual vs seed + none: {:.1f}% vs {:.1f}% — {}.\n", 100 * am, 100 * an,
                      am > an ? "mutual is higher" : (am == an ? "equal" : "mutual is **lower**"));
  }
  md += "\nThese are single runs on one seed; differences of a few points are within run-to-run noise.\n\n";
  return md;
}

std::string md_stage_table(const PipelineConfig& config, const StageRecords& recs) {
  const json& s1 = recs.s1;
  const json& s3 = recs.s3;
  const json& s4 = recs.s4;
  const json& s5 = recs.s5;
  std::string md = "## Counts and losses per stage\n\n";
  md += "| stage | what | held-out NLL forward | held-out NLL reverse | alpha (fwd / rev) | seconds |\n|---|---|---:|---:|---|---:|\n";
  md += fmt::format("| 1 seed models | {} seed pairs, {} steps each | {} | {} | - | {} |\n", s1["seed_pairs"].dump(),
                    s1["steps"].dump(), num(s1["heldout_nll"]["forward"]), num(s1["heldout_nll"]["reverse"]),
                    num(s1["seconds"], "{:.0f}"));
  for (const auto& r : recs.rounds) {
    if (!r.is_object()) continue;
    md += fmt::format("| 2 round {} | {} synthetic instructions, {} synthetic responses ({} / {} empty), {} steps, init {} "
                      "| {} | {} | {} / {} | {} |\n",
                      r["round"].dump(), r["synthetic_pairs"]["forward"].dump(), r["synthetic_pairs"]["reverse"].dump(),
                      r["empty"]["instructions"].dump(), r["empty"]["responses"].dump(), r["steps"].dump(),
                      r["init"].get<std::string>(), num(r["heldout_nll"]["forward"]), num(r["heldout_nll"]["reverse"]),
                      num(r["alpha"]["forward"], "{:.3f}"), num(r["alpha"]["reverse"], "{:.3f}"), num(r["seconds"], "{:.0f}"));
  }
  md += fmt::format("| 3 synthesis | {} candidates for {} responses ({} empty, {} too long) | | | | {} |\n",
                    s3["candidates"].dump(), s3["unlabeled"].dump(), s3["empty"].dump(), s3["too_long"].dump(),
                    num(s3["seconds"], "{:.0f}"));
  md += fmt::format("| 4 filter | {} eligible, {} kept per rule | | | | {} |\n", s4["eligible"].dump(), s4["budget"].dump(),
                    num(s4["seconds"], "{:.0f}"));
  md += fmt::format("| 5 final | {} model(s) | | | | {} |\n\n", s5["models"].size(), num(s5["seconds"], "{:.0f}"));
  md += fmt::format("Held-out losses are measured on {}.\n\n",
                    config.data.eval_sources.empty() && recs.demo.is_null()
                        ? "the seed pairs (no data.eval_sources: these are training pairs)"
                        : "the held-out pairs");
  md += "![losses per round](losses_per_round.svg)\n\n";
  return md;
}

std::string md_score_plots(const json& s4, bool checked) {
  std::string md = "## Score distributions\n\n";
  md += "![forward NLL](forward_nll.svg)\n\n![reverse NLL](reverse_nll.svg)\n\n![rule score](rule_score.svg)\n\n";
  if (checked)
    for (const std::string r : {"forward", "reverse", "mutual"})
      if (s4["rules"].contains(r)) md += fmt::format("![{} score by ground truth](truth_{}.svg)\n\n", r, r);
  return md;
}

// A table of candidates with their scores under `rule` (and, with a checker, whether each is correct).
std::string sample_rows(const std::vector<const json*>& rows, const std::string& rule, bool checked) {
  std::string out = fmt::format("| instruction (generated) | response | forward NLL | reverse NLL | {} score |{}\n",
                                rule, checked ? " correct |" : "");
  out += fmt::format("|---|---|---:|---:|---:|{}\n", checked ? "---|" : "");
  for (const json* c : rows)
    out += fmt::format("| {} | {} | {} | {} | {} |{}\n", cell((*c)["instruction"].get<std::string>()),
                       cell((*c)["response"].get<std::string>()), num((*c)["forward_nll"]), num((*c)["reverse_nll"]),
                       num((*c)["scores"][rule]), checked ? fmt::format(" {} |", (*c).value("correct", false) ? "yes" : "no") : "");
  return out;
}

// Samples: the best kept and the worst dropped eligible candidates under the rule.
std::string md_samples(const std::vector<json>& scored, const std::string& rule, bool checked) {
  std::vector<const json*> eligible;
  for (const auto& c : scored)
    if (c.value("eligible", false) && c["scores"][rule].is_number()) eligible.push_back(&c);
  std::stable_sort(eligible.begin(), eligible.end(), [&](const json* a, const json* b) {
    return (*a)["scores"][rule].get<double>() > (*b)["scores"][rule].get<double>();
  });
  const size_t n_samples = std::min<size_t>(8, eligible.size() / 2);
  std::string md = fmt::format("## Samples under rule '{}'\n\nBest-scored kept pairs:\n\n", rule);
  md += sample_rows(std::vector<const json*>(eligible.begin(), eligible.begin() + static_cast<std::ptrdiff_t>(n_samples)),
                    rule, checked);
  md += "\nWorst-scored dropped pairs:\n\n";
  md += sample_rows(std::vector<const json*>(eligible.end() - static_cast<std::ptrdiff_t>(n_samples), eligible.end()),
                    rule, checked);
  md += "\nEvery candidate with every score component, kept or not: `stage4_filter/scored.jsonl`.\n\n";
  return md;
}

std::string md_throughput(const StageRecords& recs) {
  std::string md = "## Throughput\n\n| stage | generation tok/s | scoring tok/s |\n|---|---:|---:|\n";
  auto tput = [](double v) { return std::isfinite(v) ? fmt::format("{:.0f}", v) : std::string("-"); };
  for (const auto& r : recs.rounds)
    if (r.is_object())
      md += fmt::format("| round {} | {} | {} |\n", r["round"].dump(), tput(tokens_per_s(r["generation"])), tput(tokens_per_s(r["scoring"])));
  md += fmt::format("| synthesis | {} | - |\n", tput(tokens_per_s(recs.s3["generation"])));
  md += fmt::format("| filter | - | {} |\n\n", tput(tokens_per_s(recs.s4["scoring"])));
  md += "Generation counts generated tokens; scoring counts prompt + target tokens. Figures from the chunks computed in "
        "the process that ran each stage.\n";
  return md;
}

}  // namespace

void write_pipeline_report(const fs::path& run_dir, const PipelineConfig& config) {
  const fs::path dir = run_dir / kReportDir;
  fs::create_directories(dir);
  const StageRecords recs = read_stage_records(run_dir, config);
  const bool checked = config.pipeline.checker != "none";
  write_summary_json(dir, config, recs);
  plot_losses_per_round(dir, recs);
  const std::vector<json> scored = read_scored(run_dir);
  const std::string rule = config.filter.rule;
  plot_score_distributions(dir, scored, rule, checked, recs.s4);
  const std::string md = md_introduction(run_dir, config, recs.demo) + md_filter_rules(recs.s4, checked) +
                         md_final_models(config, recs, checked) + md_mutual_verdict(recs.s4, recs.s5, checked) +
                         md_stage_table(config, recs) + md_score_plots(recs.s4, checked) +
                         md_samples(scored, rule, checked) + md_throughput(recs);
  write_text_file_atomically(dir / "report.md", md);
}

}  // namespace mt
