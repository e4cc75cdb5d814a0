// Checks on a loaded config: the required keys are set (check_train_config_complete), the pipeline's
// sections agree with each other (check_pipeline_config), and the filter rules stage 4 scores
// (compared_filter_rules, filter_rule_used).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "models/error.h"
#include "trainer/config/config.h"

namespace mt {

void check_train_config_complete(const TrainConfig& config) {
  std::vector<std::string> missing;
  if (config.model.path.empty())
    missing.push_back("model.path is not set (the base model dir: 'path:' under 'model:', or --set model.path=DIR)");
  if (config.output.run_dir.empty())
    missing.push_back("output.run_dir is not set ('run_dir:' under 'output:', or --run-dir DIR)");
  if (config.data.sources.empty())
    missing.push_back("data.sources is empty (list the training files under 'data: sources:', or --set "
                      "data.sources=[FILE])");
  if (!missing.empty()) throw Error(fmt::format("incomplete config: {}", fmt::join(missing, "; ")));
}

void check_pipeline_config(const PipelineConfig& c) {
  std::vector<std::string> problems;
  const auto rules = compared_filter_rules(c.filter);
  for (const auto& m : c.final_tuning.models)
    if (std::find(rules.begin(), rules.end(), m) == rules.end())
      problems.push_back(fmt::format("final.models lists '{}', which is neither filter.rule nor in filter.compare", m));
  if (!(c.final_tuning.alpha == -1.0 || (c.final_tuning.alpha >= 0 && c.final_tuning.alpha <= 1)))
    problems.push_back(fmt::format("final.alpha must be -1 or in [0, 1], got {}", c.final_tuning.alpha));
  if (c.pipeline.reverse_template.find("{response}") == std::string::npos)
    problems.push_back("pipeline.reverse_template has no {response} placeholder");
  if (filter_rule_used(c.filter, "self_curation") && (c.filter.self_curation_template.find("{instruction}") == std::string::npos ||
                                        c.filter.self_curation_template.find("{response}") == std::string::npos))
    problems.push_back("filter.self_curation_template needs both {instruction} and {response}");
  if (c.filter.keep == "top_k" && c.filter.top_k <= 0) problems.push_back("filter.keep is top_k but filter.top_k is 0");
  if (c.filter.rule == "mutual" || filter_rule_used(c.filter, "mutual"))
    if (!(c.filter.forward_weight + c.filter.reverse_weight > 0))
      problems.push_back("filter.forward_weight + filter.reverse_weight must be positive for the mutual rule");
  if (filter_rule_used(c.filter, "alignment") || c.filter.alignment_weight > 0) {
    const char* stage = c.rounds.count > 0 ? "rounds" : "seed";
    const auto& st = c.alignment.stages;
    if (std::find(st.begin(), st.end(), stage) == st.end() || !(c.alignment.lambda_align > 0 || c.alignment.lambda_cons > 0))
      problems.push_back(fmt::format("the filter uses the alignment scorer, which the last forward model ({}) only has "
                                     "when alignment.stages includes {} and alignment.lambda_align or lambda_cons is "
                                     "positive",
                                     c.rounds.count > 0 ? "of the last round" : "of stage 1", stage));
  }
  if (c.pipeline.checker == "demo_tasks" && !c.demo.enabled && c.data.eval_sources.empty())
    problems.push_back("pipeline.checker is demo_tasks but there are no held-out pairs (data.eval_sources) and the demo is off");
  if (c.model.path.empty()) problems.push_back("model.path is not set (the base model dir)");
  if (c.output.run_dir.empty()) problems.push_back("output.run_dir is not set ('run_dir:' under 'output:', or --run-dir DIR)");
  if (!c.demo.enabled) {
    if (c.data.sources.empty()) problems.push_back("data.sources (the seed pairs) is empty");
    if (c.pipeline.unlabeled.empty()) problems.push_back("pipeline.unlabeled (the unlabeled responses) is empty");
  }
  if (!problems.empty()) throw Error(fmt::format("pipeline config: {}", fmt::join(problems, "; ")));
}

std::vector<std::string> compared_filter_rules(const FilterSection& filter) {
  std::vector<std::string> rules = filter.compare;
  if (std::find(rules.begin(), rules.end(), filter.rule) == rules.end()) rules.insert(rules.begin(), filter.rule);
  return rules;
}

bool filter_rule_used(const FilterSection& filter, const std::string& rule) {
  const auto rules = compared_filter_rules(filter);
  return std::find(rules.begin(), rules.end(), rule) != rules.end();
}

}  // namespace mt
