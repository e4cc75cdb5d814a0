// `maintune score`: negative log-likelihood of target tokens given a prompt for each JSONL line
// ({"prompt_ids", "target_ids"}, {"prompt", "target"} texts, or {"instruction", "response"} through
// the chat template), printing {"nll_sum", "nll_mean", "n_tokens"} per line; with --alignment also
// the learned alignment scorer's s(I, R) of the prompt and the target encoded apart
// (trainer/engine/alignment.h; the model dir must hold alignment_scorer.safetensors, a checkpoint
// its heads).
// Log-probabilities are taken in fp32 (the default dtype on CPU is fp32 end to end).
#include <fmt/format.h>

#include "models/error.h"
#include "models/score.h"
#include "trainer/engine/alignment.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/input_command.h"
#include "trainer/cli/output.h"
#include "trainer/base/jsonl.h"

namespace mt::cli {

int cmd_score(int argc, char** argv) {
  const std::vector<OptionSpec> spec = input_command_options({
      {"data", true,
       "JSONL file (- = stdin) or a .json file holding an array of prompt_ids/target_ids, prompt/target or "
       "instruction/response; an id, key or question_id field is copied to the output",
       ""},
      {"batch-size", true, "lines scored together", "8"},
      {"alignment", false, "also print alignment_score: the alignment scorer's cosine / temperature of prompt and target", ""},
  });
  const auto parsed = parse_command_line(argc, argv, spec, "usage: maintune score --model DIR|CHECKPOINT|RUN --data FILE [options]");
  if (!parsed) return 0;
  const Args& args = *parsed;
  const CommandInputs inputs = read_command_inputs(args);
  const int64_t batch = inputs.batch_size;
  const auto& records = inputs.in.records;
  const auto& where = inputs.in.where;
  const TextSetup& text = inputs.in.text;
  std::vector<ScoreRequest> requests;
  for (size_t i = 0; i < records.size(); ++i) {
    auto [prompt, target] = score_pair_from_json(records[i], text.context, where[i]);
    requests.push_back({std::move(prompt), std::move(target)});
  }
  CommandModel command_model = load_model_from_args(args, inputs.model, args.has("alignment"));
  LoadedModel& loaded = command_model.loaded;
  // Validate each line on its own first so an error names the line, not a batch.
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    check_token_ids(r.prompt_ids, loaded.model.config, where[i], "prompt_ids");
    // An empty target has no NLL to report (a 0 would read as a perfect score).
    if (r.target_ids.empty()) throw Error(fmt::format("{}: the target is empty (no tokens): nothing to score", where[i]));
    check_token_ids(r.target_ids, loaded.model.config, where[i], "target_ids");
    if (static_cast<int64_t>(r.prompt_ids.size() + r.target_ids.size()) > loaded.model.config.max_position_embeddings)
      throw Error(fmt::format("{}: prompt + target exceed max_position_embeddings {}", where[i],
                              loaded.model.config.max_position_embeddings));
  }
  std::vector<double> alignment;
  if (args.has("alignment")) {
    const auto& scorer = command_model.scorer;
    if (!scorer && inputs.model.path.is_checkpoint)
      throw Error(fmt::format("{}: --alignment needs the alignment scorer's heads, which this checkpoint does not "
                              "hold (its run had alignment.lambda_align and lambda_cons at 0)",
                              inputs.model.path.dir.string()));
    if (!scorer)
      throw Error(fmt::format("{}: --alignment needs {} (saved by a training run with alignment.lambda_align or "
                              "lambda_cons > 0)",
                              inputs.model.path.dir.string(), kAlignmentScorerFile));
    std::vector<std::vector<int64_t>> prompts, targets;
    for (size_t i = 0; i < requests.size(); ++i) {
      prompts.push_back(requests[i].prompt_ids);
      targets.push_back(requests[i].target_ids);
    }
    alignment = alignment_pair_scores(loaded.model, *scorer, prompts, targets, batch);
  }
  const std::vector<NllResult> results = score_nll(loaded.model, requests, batch);
  for (size_t i = 0; i < results.size(); ++i) {
    const NllResult& r = results[i];
    nlohmann::json j = {{"nll_sum", r.nll_sum}, {"nll_mean", r.nll_mean()}, {"n_tokens", r.n_tokens}};
    if (!alignment.empty()) j["alignment_score"] = alignment[i];
    copy_record_id(records[i], j);
    out().write_line(j.dump());
  }
  return 0;
}

}  // namespace mt::cli
