// Loading a config: the YAML file read strictly against the key tables (file:line errors, unknown
// keys with a "did you mean"), `--set a.b=value` overrides applied on top, relative paths resolved,
// and the cross-key rules checked once everything is in (load_train_config, config.h).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/depthguard.h>  // YAML::DeepRecursion (not in yaml.h)
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "models/error.h"
#include "models/read_file.h"
#include "trainer/config/hints.h"
#include "trainer/config/key_def.h"

namespace mt {
using namespace config_detail;
namespace {

// A config is a few KB; anything near this is not one, and reading it whole would be wasteful.
constexpr size_t kMaxConfigBytes = size_t{16} << 20;

std::string shorten(const std::string& s) {
  if (s.size() <= kMaxShownChars) return s;
  size_t cut = kMaxShownChars;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return s.substr(0, cut) + fmt::format("... ({} bytes)", s.size());
}

// A config file (errors as FILE:LINE:COL, relative paths against its folder) or one --set
// override (errors prefixed with it, relative paths against the current directory).
struct Origin {
  std::string file;          // the config file as given
  std::string override_arg;  // "a.b=v"
  fs::path base_dir;         // absolute

  bool is_override() const { return !override_arg.empty(); }
  std::string at(const YAML::Mark& mark) const {
    if (is_override()) return "--set " + shorten(override_arg);
    if (mark.is_null() || mark.line < 0) return file;
    return fmt::format("{}:{}:{}", file, mark.line + 1, mark.column + 1);
  }
  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& what) const {
    throw Error(at(mark) + ": " + what);
  }
};

// The key whose value is being read: errors name it, at the value or (for a missing value) the key.
struct Place {
  const Origin& origin;
  YAML::Mark key_mark;
  std::string key;  // "training.seed", "data.sources[0].path"

  [[noreturn]] void fail(const YAML::Node& value, const std::string& what) const {
    const YAML::Mark mark = value.IsNull() || value.Mark().is_null() ? key_mark : value.Mark();
    origin.fail(mark, key + ": " + what);
  }
};

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Scalar:
      // A quoted scalar has the non-specific tag "!": it is a string even when it looks like a number.
      return node.Tag() == "!" ? fmt::format("the quoted string '{}'", shorten(node.Scalar()))
                               : fmt::format("'{}'", shorten(node.Scalar()));
    default: return "an undefined value";
  }
}

// `shown`: the key as written ("training.micro_bach_size", "data.sourcs[0].path"); `leaf`: the
// part after the section that names the key, for the suggestion.
[[noreturn]] void fail_unknown_key(const Origin& origin, const YAML::Mark& mark, const std::string& shown,
                                   const std::string& section, const std::string& leaf) {
  origin.fail(mark, fmt::format("unknown key '{}'{}", shorten(shown), did_you_mean(suggest_train_key(section, leaf))));
}

[[noreturn]] void fail_unknown_section(const Origin& origin, const YAML::Mark& mark, const std::string& name) {
  std::string suggestion = closest(name, section_names());
  if (suggestion.empty())  // a key written at the top level (lr: instead of optimizer: {lr: })
    for (const auto& k : config_keys())
      if (k.leaf() == name || k.path == name) suggestion = k.path;
  std::string hint;
  if (!suggestion.empty() && suggestion.find('.') != std::string::npos)
    hint = fmt::format(" (did you mean '{}'? keys go inside their section)", suggestion);
  else
    hint = did_you_mean(suggestion);
  origin.fail(mark, fmt::format("unknown section '{}'{}; the sections are {}", shorten(name), hint,
                                fmt::join(section_names(), ", ")));
}

// ---------------------------------------------------------------------------------------------
// Reading values
// ---------------------------------------------------------------------------------------------

// Calls fn(name, key node, value node) for every entry of a map, after checking that the key is a
// name and is not repeated (yaml-cpp keeps both entries of a repeated key; we refuse it).
template <typename Fn>
void for_each_entry(const YAML::Node& map, const Origin& origin, const std::string& prefix, Fn&& fn) {
  std::map<std::string, int> first_line;
  for (const auto& entry : map) {
    const YAML::Node key = entry.first;  // copies: yaml-cpp's iterator hands out temporaries
    if (!key.IsScalar()) origin.fail(key.Mark(), fmt::format("{}a key must be a name, got {}", prefix, describe(key)));
    const std::string name = key.Scalar();
    const auto [first, inserted] = first_line.emplace(name, key.Mark().line + 1);
    if (!inserted) {
      const std::string first_at = origin.is_override() ? "" : fmt::format(" (first at line {})", first->second);
      origin.fail(key.Mark(), fmt::format("duplicate key '{}{}'{}", prefix, shorten(name), first_at));
    }
    const YAML::Node value = entry.second;
    fn(name, key, value);
  }
}

// Typed values are plain YAML scalars: a quoted "5" is a string, not an integer.
const std::string& typed_scalar(const YAML::Node& node, const Place& place, const char* expected) {
  if (!node.IsScalar() || node.Tag() == "!") place.fail(node, fmt::format("{}, got {}", expected, describe(node)));
  return node.Scalar();
}

int64_t parse_int(const YAML::Node& node, const Place& place) {
  const std::string& text = typed_scalar(node, place, "expected an integer");
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin != end && *begin == '+') ++begin;
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec == std::errc::result_out_of_range)
    place.fail(node, fmt::format("integer out of range, got {}", describe(node)));
  if (ec != std::errc() || ptr != end || begin == end)
    place.fail(node, fmt::format("expected an integer, got {}", describe(node)));
  return v;
}

double parse_float(const YAML::Node& node, const Place& place) {
  const std::string& text = typed_scalar(node, place, "expected a number");
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (begin != end && *begin == '+') ++begin;
  double v = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, v, std::chars_format::general);
  if (ec != std::errc() || ptr != end || begin == end || !std::isfinite(v))
    place.fail(node, fmt::format("expected a finite number, got {}", describe(node)));
  return v;
}

bool parse_bool(const YAML::Node& node, const Place& place) {
  typed_scalar(node, place, "expected true or false");
  bool v = false;
  if (!YAML::convert<bool>::decode(node, v))
    place.fail(node, fmt::format("expected true or false, got {}", describe(node)));
  return v;
}

// A string value; `key:` with nothing is "". Control characters (tab and newline aside) are
// refused: they are never meant, and yaml-cpp 0.7 writes some of them back wrongly.
std::string parse_string(const YAML::Node& node, const Place& place, bool non_empty) {
  if (node.IsNull()) {
    if (non_empty) place.fail(node, "must not be empty");
    return "";
  }
  if (!node.IsScalar()) place.fail(node, fmt::format("expected a string, got {}", describe(node)));
  const std::string& s = node.Scalar();
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\n') || u == 0x7f)
      place.fail(node, fmt::format("contains the control character U+{:04X}", u));
  }
  if (non_empty && s.empty()) place.fail(node, "must not be empty");
  return s;
}

// Relative paths resolve against the origin's folder; stored absolute and lexically normal.
std::string resolve_path(const std::string& text, const YAML::Node& node, const Place& place) {
  if (text.empty()) return text;
  if (text == "~" || text.rfind("~/", 0) == 0)
    place.fail(node, fmt::format("'~' is not expanded; write the full path, got {}", describe(node)));
  fs::path p(text);
  if (p.is_relative()) p = place.origin.base_dir / p;
  p = p.lexically_normal();
  if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();  // "runs/a/" -> "runs/a"
  return p.string();
}

std::string parse_enum(const ValueSpec& spec, const YAML::Node& node, const Place& place) {
  std::string expected = fmt::format("expected one of {}", fmt::join(spec.choices, "|"));
  if (!spec.aliases.empty()) {
    std::vector<std::string> alias_names;
    for (const auto& [alias, name] : spec.aliases) alias_names.push_back(alias);
    expected += fmt::format(" (or {})", fmt::join(alias_names, "|"));
  }
  if (!node.IsScalar()) place.fail(node, fmt::format("{}, got {}", expected, describe(node)));
  const std::string& s = node.Scalar();
  if (std::find(spec.choices.begin(), spec.choices.end(), s) != spec.choices.end()) return s;
  for (const auto& [alias, name] : spec.aliases)
    if (s == alias) return name;
  place.fail(node, fmt::format("{}, got {}", expected, describe(node)));
}

std::vector<DataSourceConfig> parse_sources(const YAML::Node& node, const Place& place);
DataSourceConfig parse_source(const YAML::Node& node, const Place& place);

template <typename Obj>
Value parse_value(const KeyDef<Obj>& key, const YAML::Node& node, const Place& place) {
  const ValueSpec& spec = key.spec;
  auto check_bounds = [&](double v) {
    if (!spec.bounds.holds(v))
      place.fail(node, fmt::format("must be {}, got {}", spec.bounds.text(), shorten(node.Scalar())));
  };
  switch (key.kind) {
    case Kind::Bool: return parse_bool(node, place);
    case Kind::Int: {
      const int64_t v = parse_int(node, place);
      check_bounds(static_cast<double>(v));
      return v;
    }
    case Kind::Float: {
      const double v = parse_float(node, place);
      check_bounds(v);
      return v;
    }
    case Kind::String: return parse_string(node, place, spec.non_empty);
    case Kind::Path: return resolve_path(parse_string(node, place, spec.non_empty), node, place);
    case Kind::Enum: return parse_enum(spec, node, place);
    case Kind::Sources: return parse_sources(node, place);
    case Kind::EnumList: {
      if (!node.IsSequence())
        place.fail(node, fmt::format("expected a list of {}, got {}{}", fmt::join(spec.choices, "|"), describe(node),
                                     node.IsScalar() ? fmt::format(" (one item: [{}])", shorten(node.Scalar())) : ""));
      std::vector<std::string> items;
      for (size_t i = 0; i < node.size(); ++i) {
        const YAML::Node item = node[i];
        const std::string name = parse_enum(spec, item, Place{place.origin, item.Mark(), fmt::format("{}[{}]", place.key, i)});
        if (std::find(items.begin(), items.end(), name) != items.end())
          place.fail(item, fmt::format("'{}' is listed twice", name));
        items.push_back(name);
      }
      return items;
    }
  }
  throw std::logic_error("unhandled config value kind");
}

// The value of data.sources[N].on_malformed until the end of loading: "not given", so that it
// takes data.on_malformed, wherever that is set (later in the file, or by --set).
const std::string kOnMalformedUnset;

void set_source_key(DataSourceConfig& source, const std::string& name, const YAML::Node& key_node,
                    const YAML::Node& value, const Place& entry) {
  const KeyDef<DataSourceConfig>* key = find_source_key(name);
  if (key == nullptr) {
    std::vector<std::string> names;
    for (const auto& k : source_keys()) names.push_back(k.path);
    const std::string suggestion = closest(name, names);
    entry.origin.fail(key_node.Mark(),
                      fmt::format("unknown key '{}.{}'{}", entry.key, shorten(name),
                                  did_you_mean(suggestion.empty() ? "" : entry.key + "." + suggestion)));
  }
  const Place place{entry.origin, key_node.Mark(), entry.key + "." + name};
  key->set(source, parse_value(*key, value, place));
}

// One list entry: a path, or a map of source keys with at least `path`.
DataSourceConfig parse_source(const YAML::Node& node, const Place& entry) {
  DataSourceConfig source;
  source.on_malformed = kOnMalformedUnset;
  const KeyDef<DataSourceConfig>& path_key = *find_source_key("path");
  if (node.IsScalar()) {
    path_key.set(source, parse_value(path_key, node, Place{entry.origin, node.Mark(), entry.key + ".path"}));
    return source;
  }
  if (!node.IsMap())
    entry.fail(node, fmt::format("expected a source (a path, or a map with a 'path' key), got {}", describe(node)));
  for_each_entry(node, entry.origin, entry.key + ".",
                 [&](const std::string& name, const YAML::Node& key_node, const YAML::Node& value) {
                   set_source_key(source, name, key_node, value, entry);
                 });
  if (source.path.empty()) entry.origin.fail(node.Mark(), entry.key + ": 'path' is missing");
  return source;
}

std::vector<DataSourceConfig> parse_sources(const YAML::Node& node, const Place& place) {
  if (!node.IsSequence())
    place.fail(node, fmt::format("expected a list of sources, got {}{}", describe(node),
                                 node.IsScalar() ? fmt::format(" (one file: [{}])", shorten(node.Scalar())) : ""));
  std::vector<DataSourceConfig> sources;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node entry = node[i];
    sources.push_back(parse_source(entry, Place{place.origin, entry.Mark(), fmt::format("{}[{}]", place.key, i)}));
  }
  return sources;
}

// ---------------------------------------------------------------------------------------------
// Applying a file's sections and --set overrides
// ---------------------------------------------------------------------------------------------

void set_train_key(PipelineConfig& config, const KeyDef<PipelineConfig>& key, const YAML::Node& key_node,
                   const YAML::Node& value, const Origin& origin) {
  key.set(config, parse_value(key, value, Place{origin, key_node.Mark(), key.path}));
}

void apply_section(PipelineConfig& config, const std::string& section, const YAML::Node& key_node,
                   const YAML::Node& node, const Origin& origin) {
  if (node.IsNull()) return;  // "training:" with no keys under it
  if (!node.IsMap()) {
    const YAML::Mark mark = node.Mark().is_null() ? key_node.Mark() : node.Mark();
    origin.fail(mark, fmt::format("{}: expected a map of keys, got {}", section, describe(node)));
  }
  for_each_entry(node, origin, section + ".",
                 [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
                   const KeyDef<PipelineConfig>* def = find_config_key(section + "." + name);
                   if (def == nullptr) fail_unknown_key(origin, key.Mark(), section + "." + name, section, name);
                   set_train_key(config, *def, key, value, origin);
                 });
}

void apply_root(PipelineConfig& config, const YAML::Node& root, const Origin& origin) {
  if (root.IsNull()) return;  // empty file, or comments only: all defaults
  if (!root.IsMap())
    origin.fail(root.Mark(), fmt::format("expected a map of sections ({}), got {}",
                                         fmt::join(section_names(), ", "), describe(root)));
  for_each_entry(root, origin, "", [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
    if (std::find(section_names().begin(), section_names().end(), name) == section_names().end())
      fail_unknown_section(origin, key.Mark(), name);
    apply_section(config, name, key, value, origin);
  });
}

// The 0-based line and column (as yaml-cpp counts them) of a byte offset.
YAML::Mark mark_of_offset(const std::string& text, size_t offset) {
  const auto before = text.begin() + static_cast<std::ptrdiff_t>(offset);
  const auto line_start = std::find(std::make_reverse_iterator(before), text.rend(), '\n').base();
  YAML::Mark mark;
  mark.pos = static_cast<int>(offset);
  mark.line = static_cast<int>(std::count(text.begin(), before, '\n'));
  mark.column = static_cast<int>(before - line_start);
  return mark;
}

// Where the last document started; the events are dropped (no node is built).
struct DocumentCounter : YAML::EventHandler {
  YAML::Mark start;
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// True when `text` holds more than one YAML document. At most two are asked for: yaml-cpp 0.7
// (Debian 12) reads a stray flow indicator (", ") as endless empty documents, which LoadAll
// collected until memory ran out (found by fuzz/fuzz_yaml_config.cpp).
bool has_second_document(const std::string& text, YAML::Mark* second) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentCounter counter;
  if (!parser.HandleNextDocument(counter) || !parser.HandleNextDocument(counter)) return false;
  *second = counter.start;
  return true;
}

// The one YAML document of a config (Null for an empty file). Binary junk is refused before
// yaml-cpp sees it (NUL bytes would also make it guess a UTF-16/32 encoding).
YAML::Node parse_config_document(const std::string& text, const Origin& origin) {
  if (const size_t nul = text.find('\0'); nul != std::string::npos)
    origin.fail(mark_of_offset(text, nul), "not a text file (NUL byte)");
  if (const int64_t bad = find_invalid_utf8(text); bad >= 0)
    origin.fail(mark_of_offset(text, static_cast<size_t>(bad)), "not UTF-8 text");
  YAML::Node document;
  YAML::Mark second;
  bool two = false;
  try {
    document = YAML::Load(text);
    two = has_second_document(text, &second);
  } catch (const YAML::DeepRecursion& e) {
    origin.fail(e.mark, "invalid YAML: nested too deeply");
  } catch (const YAML::Exception& e) {
    origin.fail(e.mark, "invalid YAML: " + e.msg);
  }
  if (two) origin.fail(second, "a second YAML document (or text that starts no YAML node); a config is one document");
  return document;
}

struct KeySegment {
  std::string name;
  std::optional<size_t> index;  // "sources[2]"
};

// "data.sources[0].format" -> {data}, {sources, 0}, {format}; nullopt when not of that shape.
std::optional<std::vector<KeySegment>> split_key_path(const std::string& key) {
  std::vector<KeySegment> segments;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    KeySegment seg;
    const size_t bracket = part.find('[');
    seg.name = part.substr(0, bracket);
    if (seg.name.empty()) return std::nullopt;
    for (const char c : seg.name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return std::nullopt;
    if (bracket != std::string::npos) {
      if (part.back() != ']' || part.size() < bracket + 3) return std::nullopt;
      const char* begin = part.data() + bracket + 1;
      const char* end = part.data() + part.size() - 1;
      size_t index = 0;
      const auto [ptr, ec] = std::from_chars(begin, end, index);
      if (ec != std::errc() || ptr != end) return std::nullopt;
      seg.index = index;
    }
    segments.push_back(std::move(seg));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return segments;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// "--set KEY=VALUE": KEY is section.key, data.sources[N] or data.sources[N].key (N an existing
// entry), or a whole section; VALUE is YAML.
void apply_override(PipelineConfig& config, const std::string& arg, const fs::path& cwd) {
  const Origin origin{"", arg.empty() ? "''" : arg, cwd};
  const YAML::Mark nowhere = YAML::Mark::null_mark();
  if (find_invalid_utf8(arg) >= 0) origin.fail(nowhere, "not UTF-8 text");
  const size_t eq = arg.find('=');
  if (eq == std::string::npos) origin.fail(nowhere, "expected KEY=VALUE (e.g. training.lr=3e-4)");
  const std::string key = trim(arg.substr(0, eq));
  const auto segments = split_key_path(key);
  if (!segments)
    origin.fail(nowhere, fmt::format("'{}' is not a key (expected section.key, e.g. training.lr, or "
                                     "data.sources[N].key)", shorten(key)));
  YAML::Node value;
  try {
    value = YAML::Load(arg.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    origin.fail(nowhere, "invalid YAML value: " + e.msg);
  }
  const auto& segs = *segments;
  const std::string& section = segs[0].name;
  if (std::find(section_names().begin(), section_names().end(), section) == section_names().end())
    fail_unknown_section(origin, nowhere, section);
  if (segs[0].index) origin.fail(nowhere, fmt::format("'{}' is a section, not a list", section));
  if (segs.size() == 1) {
    apply_section(config, section, YAML::Node(), value, origin);
    return;
  }
  const std::string path = section + "." + segs[1].name;
  const KeyDef<PipelineConfig>* def = find_config_key(path);
  if (def == nullptr) fail_unknown_key(origin, nowhere, key, section, segs[1].name);
  if (!segs[1].index) {
    if (segs.size() > 2) {
      if (def->kind == Kind::Sources)
        origin.fail(nowhere, fmt::format("{} is a list: name an entry, e.g. {}[0].{}", path, path, segs[2].name));
      fail_unknown_key(origin, nowhere, key, section, key.substr(section.size() + 1));
    }
    set_train_key(config, *def, YAML::Node(), value, origin);
    return;
  }
  if (def->kind != Kind::Sources) origin.fail(nowhere, fmt::format("{} is not a list", path));
  if (segs.size() > 3) fail_unknown_key(origin, nowhere, key, section, key.substr(section.size() + 1));
  auto sources = std::get<std::vector<DataSourceConfig>>(def->get(config));
  const size_t index = *segs[1].index;
  const std::string entry_key = fmt::format("{}[{}]", path, index);
  if (index >= sources.size())
    origin.fail(nowhere, fmt::format("{}: no such entry ({} has {} entr{})", entry_key, path, sources.size(),
                                     sources.size() == 1 ? "y" : "ies"));
  const Place entry{origin, nowhere, entry_key};
  if (segs.size() == 2)
    sources[index] = parse_source(value, entry);
  else
    set_source_key(sources[index], segs[2].name, YAML::Node(), value, entry);
  def->set(config, sources);
}

// Rules that involve more than one key, once the file and every override are in.
void finish_config(PipelineConfig& config, const std::string& where) {
  auto finish_sources = [&](std::vector<DataSourceConfig>& sources, const char* list) {
    for (size_t i = 0; i < sources.size(); ++i) {
      auto& s = sources[i];
      if (s.on_malformed == kOnMalformedUnset) s.on_malformed = config.data.on_malformed;
      if (s.min_chars > s.max_chars)
        throw Error(fmt::format("{}: {}[{}]: min_chars ({}) is above max_chars ({})", where, list, i, s.min_chars,
                                s.max_chars));
    }
  };
  finish_sources(config.data.sources, "data.sources");
  finish_sources(config.data.eval_sources, "data.eval_sources");
  finish_sources(config.pipeline.unlabeled, "pipeline.unlabeled");
  if (config.data.eval_fraction > 0 && !config.data.eval_sources.empty())
    throw Error(fmt::format("{}: data.eval_fraction ({}) and data.eval_sources are both set; hold out eval "
                            "data one way",
                            where, format_float(config.data.eval_fraction)));
}

}  // namespace

PipelineConfig load_pipeline_config(const fs::path& path, const std::vector<std::string>& overrides,
                                    const fs::path& overrides_dir) {
  PipelineConfig config;
  if (!path.empty()) {
    const Origin origin{path.string(), "", fs::absolute(path).lexically_normal().parent_path()};
    const std::string text = read_file(path, "config", kMaxConfigBytes);
    apply_root(config, parse_config_document(text, origin), origin);
  }
  const fs::path cwd = overrides_dir.empty() ? fs::current_path() : fs::absolute(overrides_dir).lexically_normal();
  for (const auto& arg : overrides) apply_override(config, arg, cwd);
  finish_config(config, path.empty() ? std::string("--set") : path.string());
  return config;
}

TrainConfig load_train_config(const fs::path& path, const std::vector<std::string>& overrides,
                              const fs::path& overrides_dir) {
  return load_pipeline_config(path, overrides, overrides_dir);  // sliced: the TrainConfig part
}

}  // namespace mt
