// Checks on a loaded config: the required keys are set (check_train_config_complete), and the
// filter rules stage 4 scores (compared_filter_rules, filter_rule_used).
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
