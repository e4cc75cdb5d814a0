// Internal to trainer/config/: how one config key is defined. A key's value type (Value, Kind), how
// its value is checked (ValueSpec and its constructors), the key itself (KeyDef: path, check, doc,
// resume rule, accessors) and make_key, which derives the kind from the field it points at. Also the
// declarations the config/ files share: the key tables (schema_keys.cpp) and value rendering
// (yaml_write.cpp).
#pragma once
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "trainer/config/config.h"

namespace mt::config_detail {

namespace fs = std::filesystem;

constexpr size_t kMaxShownChars = 60;  // longer values and keys are cut in error messages

// ---------------------------------------------------------------------------------------------
// Values and how a key's value is checked
// ---------------------------------------------------------------------------------------------

using Value = std::variant<bool, int64_t, double, std::string, std::vector<DataSourceConfig>, std::vector<std::string>>;

enum class Kind { Bool, Int, Float, String, Path, Enum, Sources, EnumList };

struct Bounds {
  std::optional<double> min, max;
  bool min_exclusive = false, max_exclusive = false;
  std::optional<double> sentinel;  // one more value accepted outside the range ("-1 = off")

  bool holds(double v) const {
    if (sentinel && v == *sentinel) return true;
    if (min && (min_exclusive ? !(v > *min) : !(v >= *min))) return false;
    if (max && (max_exclusive ? !(v < *max) : !(v <= *max))) return false;
    return true;
  }
  std::string text() const {  // "> 0", ">= 1", "in [0, 1)", "-1 or in [0, 1]"; "" when unbounded
    const std::string or_sentinel = sentinel ? fmt::format("{} or ", *sentinel) : "";
    if (min && max)
      return fmt::format("{}in {}{}, {}{}", or_sentinel, min_exclusive ? '(' : '[', *min, *max,
                         max_exclusive ? ')' : ']');
    if (min) return fmt::format("{}{} {}", or_sentinel, min_exclusive ? ">" : ">=", *min);
    if (max) return fmt::format("{}{} {}", or_sentinel, max_exclusive ? "<" : "<=", *max);
    return "";
  }
};

struct ValueSpec {
  std::optional<Kind> kind;  // unset: from the field's C++ type
  Bounds bounds;             // Int, Float
  std::vector<std::string> choices;                           // Enum, EnumList
  std::vector<std::pair<std::string, std::string>> aliases;   // Enum: accepted spelling -> stored name
  bool non_empty = false;    // String, Path
};

inline ValueSpec any_value() { return {}; }
inline ValueSpec at_least(double min) { ValueSpec s; s.bounds.min = min; return s; }
inline ValueSpec above(double min) { ValueSpec s; s.bounds.min = min; s.bounds.min_exclusive = true; return s; }
inline ValueSpec in_range(double min, double max, bool max_exclusive) {
  ValueSpec s;
  s.bounds.min = min;
  s.bounds.max = max;
  s.bounds.max_exclusive = max_exclusive;
  return s;
}
inline ValueSpec off_or_in_range(double off, double min, double max) {
  ValueSpec s = in_range(min, max, false);
  s.bounds.sentinel = off;
  return s;
}
inline ValueSpec path_value(bool non_empty = false) { ValueSpec s; s.kind = Kind::Path; s.non_empty = non_empty; return s; }
inline ValueSpec field_name() { ValueSpec s; s.non_empty = true; return s; }
inline ValueSpec list_of(std::vector<std::string> choices) {
  ValueSpec s;
  s.kind = Kind::EnumList;
  s.choices = std::move(choices);
  return s;
}
inline std::vector<std::string> with_auto_and_from_model(std::vector<std::string> names) {
  names.insert(names.begin(), {"auto", "from_model"});
  return names;
}
inline ValueSpec one_of(std::vector<std::string> choices, std::vector<std::pair<std::string, std::string>> aliases = {}) {
  ValueSpec s;
  s.kind = Kind::Enum;
  s.choices = std::move(choices);
  s.aliases = std::move(aliases);
  return s;
}

// ---------------------------------------------------------------------------------------------
// The key table
// ---------------------------------------------------------------------------------------------

// The pipeline stage that first reads a key (trainer/method/stage_keys.h): the key's value goes
// into that stage's key and, by the chain, counts for every later stage. "" = no stage: the key does
// not change what any stage computes (where the run is written, how often it logs or checkpoints).
// demo_too: with demo.enabled, stage 0 reads it as well (it sizes its tokenizer by the model and
// trains it on the pipeline's prompt texts).
struct FirstReader {
  const char* stage;
  bool demo_too = false;
};
inline constexpr FirstReader kNoStage{""}, kDemo{"demo"}, kSeed{"seed"}, kRounds{"rounds"},
    kSynthesis{"synthesis"}, kFilter{"filter"}, kFinal{"final"};
inline constexpr FirstReader kSeedAndDemo{"seed", true}, kFilterAndDemo{"filter", true},
    kFinalAndDemo{"final", true};
// The alignment loss term counts for the trainings its `stages` list names (seed, rounds, final).
inline constexpr FirstReader kAlignmentStages{"alignment.stages"};

// One key: its YAML path, how its value is checked, its doc, whether it may change on resume, and
// an accessor pair into the object it configures (PipelineConfig, or DataSourceConfig for source keys).
template <typename Obj>
struct KeyDef {
  std::string path;  // "training.seed"; source keys: "format" (relative to their entry)
  Kind kind = Kind::String;
  ValueSpec spec;
  std::string doc;
  bool resume_safe = false;
  bool read_by_train = false;  // a TrainConfig field (train_key): train writes and compares it
  FirstReader first_reader = kSeed;  // the pipeline stage that first reads it (key tables: always given)
  std::string default_text;  // shown instead of the rendered default ("" = render it)
  std::function<Value(const Obj&)> get;
  std::function<void(Obj&, const Value&)> set;

  std::string section() const { return path.substr(0, path.find('.')); }
  std::string leaf() const { return path.substr(path.find('.') + 1); }
};

inline Value to_value(bool v) { return v; }
inline Value to_value(int64_t v) { return v; }
inline Value to_value(double v) { return v; }
inline Value to_value(const std::string& v) { return v; }
inline Value to_value(const fs::path& v) { return v.string(); }
inline Value to_value(const std::vector<DataSourceConfig>& v) { return v; }
inline Value to_value(const std::vector<std::string>& v) { return v; }

template <typename T>
void assign(T& field, const Value& v) { field = std::get<T>(v); }
inline void assign(fs::path& field, const Value& v) { field = std::get<std::string>(v); }

template <typename T>
constexpr Kind natural_kind() {
  if constexpr (std::is_same_v<T, bool>) return Kind::Bool;
  else if constexpr (std::is_same_v<T, int64_t>) return Kind::Int;
  else if constexpr (std::is_same_v<T, double>) return Kind::Float;
  else if constexpr (std::is_same_v<T, std::string>) return Kind::String;
  else if constexpr (std::is_same_v<T, fs::path>) return Kind::Path;
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) return Kind::EnumList;
  else {
    static_assert(std::is_same_v<T, std::vector<DataSourceConfig>>, "no config value kind for this field type");
    return Kind::Sources;
  }
}

template <typename Obj, typename Access>
KeyDef<Obj> make_key(std::string path, Access access, ValueSpec spec, std::string doc, bool resume_safe,
                     std::string default_text = "") {
  using Field = std::remove_cv_t<std::remove_reference_t<decltype(access(std::declval<Obj&>()))>>;
  constexpr Kind natural = natural_kind<Field>();
  const Kind kind = spec.kind.value_or(natural);
  const bool stringish = natural == Kind::String || natural == Kind::Path;
  const bool fits = kind == natural || ((kind == Kind::Path || kind == Kind::Enum) && stringish);
  if (!fits) throw std::logic_error("config key " + path + ": value kind does not match its field");
  KeyDef<Obj> k;
  k.path = std::move(path);
  k.kind = kind;
  k.spec = std::move(spec);
  k.doc = std::move(doc);
  k.resume_safe = resume_safe;
  k.default_text = std::move(default_text);
  k.get = [access](const Obj& o) -> Value { return to_value(access(o)); };
  k.set = [access](Obj& o, const Value& v) { assign(access(o), v); };
  return k;
}

// A key of a TrainConfig section: its accessor only sees the TrainConfig part, so a key cannot be
// marked as read by train unless TrainConfig holds it (the compiler checks).
template <typename Access>
KeyDef<PipelineConfig> make_train_key(std::string path, Access access, ValueSpec spec, std::string doc,
                                      bool resume_safe, std::string default_text = "") {
  auto train_part = [access](auto& c) -> auto& {
    using Train = std::conditional_t<std::is_const_v<std::remove_reference_t<decltype(c)>>, const TrainConfig, TrainConfig>;
    return access(static_cast<Train&>(c));
  };
  KeyDef<PipelineConfig> k = make_key<PipelineConfig>(std::move(path), train_part, std::move(spec), std::move(doc),
                                                      resume_safe, std::move(default_text));
  k.read_by_train = true;
  return k;
}

constexpr bool kResumeSafe = true;   // may differ between a run and its resumption
constexpr bool kFixed = false;       // must stay as the run started

// The key tables (schema_keys.cpp), in schema order.
const std::vector<KeyDef<DataSourceConfig>>& source_keys();
const std::vector<KeyDef<PipelineConfig>>& config_keys();
const std::vector<std::string>& section_names();  // config_keys' sections, in order
const KeyDef<PipelineConfig>* find_config_key(const std::string& path);  // nullptr when unknown
const KeyDef<DataSourceConfig>* find_source_key(const std::string& name);  // nullptr when unknown

// Values rendered as YAML (yaml_write.cpp).
std::string format_float(double v);  // shortest text that reads back as the same double
void emit_value(YAML::Emitter& out, const Value& value);
std::string render(const Value& value);  // one value as one line of YAML

}  // namespace mt::config_detail
