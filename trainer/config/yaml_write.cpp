// Writing a config as YAML: values rendered (floats kept recognizable as floats) and the whole
// resolved config written with every key (train_config_to_yaml, pipeline_config_to_yaml, config.h).
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "trainer/config/key_def.h"

namespace mt {
namespace config_detail {

// Shortest text that reads back as the same double, always recognizable as a float.
std::string format_float(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

void emit_value(YAML::Emitter& out, const Value& value) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, double>) {
          out << format_float(v);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          out << YAML::Flow << YAML::BeginSeq;
          for (const auto& item : v) out << item;
          out << YAML::EndSeq;
        } else if constexpr (std::is_same_v<T, std::vector<DataSourceConfig>>) {
          if (v.empty()) {
            out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
            return;
          }
          out << YAML::BeginSeq;
          for (const auto& source : v) {
            out << YAML::BeginMap;
            for (const auto& k : source_keys()) {
              out << YAML::Key << k.path << YAML::Value;
              emit_value(out, k.get(source));
            }
            out << YAML::EndMap;
          }
          out << YAML::EndSeq;
        } else {
          out << v;
        }
      },
      value);
}

// One value as one line of YAML ("2048", "\"\"", "[{path: a, ...}]").
std::string render(const Value& value) {
  YAML::Emitter out;
  out.SetSeqFormat(YAML::Flow);
  out.SetMapFormat(YAML::Flow);
  emit_value(out, value);
  return out.c_str();
}

}  // namespace config_detail

using namespace config_detail;

namespace {

// Every key `keep` accepts, by section in schema order.
template <typename Keep>
std::string config_keys_to_yaml(const PipelineConfig& config, Keep keep) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string section;
  for (const auto& key : config_keys()) {
    if (!keep(key)) continue;
    if (key.section() != section) {
      if (!section.empty()) out << YAML::EndMap;
      section = key.section();
      out << YAML::Key << section << YAML::Value << YAML::BeginMap;
    }
    out << YAML::Key << key.leaf() << YAML::Value;
    emit_value(out, key.get(config));
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace

std::string train_config_to_yaml(const TrainConfig& config) {
  PipelineConfig whole;
  static_cast<TrainConfig&>(whole) = config;
  return config_keys_to_yaml(whole, [](const KeyDef<PipelineConfig>& key) { return key.read_by_train; });
}

std::string pipeline_config_to_yaml(const PipelineConfig& config) {
  return config_keys_to_yaml(config, [](const KeyDef<PipelineConfig>&) { return true; });
}

}  // namespace mt
