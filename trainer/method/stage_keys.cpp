// Stage keys (see stage_keys.h): which config parts each stage reads, hashed in a chain.
#include "trainer/method/stage_keys.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <map>
#include <set>

#include "trainer/base/hash.h"
#include "trainer/method/run_layout.h"

namespace mt {
namespace {

using nlohmann::json;

// The stage that first reads "section.key": the schema's first-reader column (config.h). Keys
// chain, so a key counts for its stage and every later one. A key this build does not know counts
// from stage 1 (the safe side).
std::string first_reader_of(const std::string& section, const std::string& key, bool demo) {
  const std::string path = section + "." + key;
  for (const auto& entry : config_schema())
    if (entry.path == path) return demo && entry.read_by_demo_stage ? "demo" : entry.first_stage;
  return "seed";
}

// Sections whose keys count for the trainings their `stages` list names (alignment).
bool counts_by_stages_list(const std::string& section) {
  for (const auto& entry : config_schema())
    if (entry.path.rfind(section + ".", 0) == 0) return entry.first_stage == "alignment.stages";
  return false;
}

json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return node.Scalar();
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& entry : node) out[entry.first.Scalar()] = yaml_to_json(entry.second);
      return out;
    }
    default: return json();
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> pipeline_stage_keys(const PipelineConfig& config) {
  return pipeline_stage_keys_of_yaml(pipeline_config_to_yaml(config));
}

std::vector<std::pair<std::string, std::string>> pipeline_stage_keys_of_yaml(const std::string& resolved_yaml) {
  const YAML::Node tree = YAML::Load(resolved_yaml);
  const bool demo = tree["demo"] && tree["demo"]["enabled"] && tree["demo"]["enabled"].as<bool>();
  const int64_t rounds = tree["rounds"] && tree["rounds"]["count"] ? tree["rounds"]["count"].as<int64_t>() : 0;
  // The config parts each stage reads, by the stage's kind.
  std::map<std::string, json> parts;
  for (const char* kind : {"demo", "seed", "rounds", "synthesis", "filter", "final"}) parts[kind] = json::object();
  for (const auto& section_entry : tree) {
    const std::string section = section_entry.first.Scalar();
    const YAML::Node& body = section_entry.second;
    if (counts_by_stages_list(section)) {
      // The alignment loss term counts only for the trainings its `stages` list names.
      std::set<std::string> stages;
      const YAML::Node listed = body.IsMap() ? body["stages"] : YAML::Node();
      if (listed && listed.IsSequence()) {
        for (const auto& s : listed) stages.insert(s.Scalar());
      } else {
        stages = {"seed", "rounds", "final"};  // not a list we know: count it everywhere
      }
      for (const char* kind : {"seed", "rounds", "final"})
        if (stages.count(kind)) parts[kind][section] = yaml_to_json(body);
      continue;
    }
    if (!body.IsMap()) {
      parts["seed"][section] = yaml_to_json(body);
      continue;
    }
    for (const auto& key_entry : body) {
      const std::string key = key_entry.first.Scalar();
      const std::string kind = first_reader_of(section, key, demo);
      if (kind.empty() || (kind == "demo" && !demo)) continue;  // no stage 0: nobody reads the demo's settings
      parts[kind][section + "." + key] = yaml_to_json(key_entry.second);
    }
  }
  std::vector<std::pair<std::string, std::string>> keys;
  json previous;  // null before the first stage
  auto add = [&](const std::string& stage, const json& part) {
    const std::string key = cache_key(json{{"stage", stage}, {"previous", previous}, {"config", part}, {"version", 1}});
    keys.emplace_back(stage, key);
    previous = key;
  };
  if (demo) add(kStage0Demo, parts["demo"]);
  add(kStage1SeedModels, parts["seed"]);
  for (int64_t k = 1; k <= rounds; ++k) add(round_stage(k), parts["rounds"]);
  add(kStage3Synthesis, parts["synthesis"]);
  add(kStage4Filter, parts["filter"]);
  add(kStage5Final, parts["final"]);
  return keys;
}

}  // namespace mt
