// The schema as documentation: one ConfigKeyDoc per key (type, default, doc with the checked range)
// and the table `maintune config --schema` prints (config_schema, format_config_schema, config.h).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "trainer/config/key_def.h"

namespace mt {
using namespace config_detail;
namespace {

// Greedy word wrap of `text` into lines of at most `width` characters, each prefixed by `indent`.
// A comparison sign stays on the line of its number (">= 1").
std::string wrap(const std::string& text, const std::string& indent, size_t width) {
  std::string out, line;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t space = text.find(' ', pos);
    const std::string first = text.substr(pos, space == std::string::npos ? std::string::npos : space - pos);
    if ((first == ">" || first == ">=" || first == "<" || first == "<=") && space != std::string::npos)
      space = text.find(' ', space + 1);
    const std::string word = text.substr(pos, space == std::string::npos ? std::string::npos : space - pos);
    pos = space == std::string::npos ? text.size() : space + 1;
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > width) {
      out += indent + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += indent + line + "\n";
  return out;
}

std::string type_name(Kind kind, const ValueSpec& spec) {
  switch (kind) {
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "string";
    case Kind::Path: return "path";
    case Kind::Enum: return fmt::format("enum({})", fmt::join(spec.choices, "|"));
    case Kind::Sources: return "list of sources";
    case Kind::EnumList: return fmt::format("list of ({})", fmt::join(spec.choices, "|"));
  }
  return "";
}

// The doc string plus what the table knows about the value: its range, aliases, non-emptiness.
std::string full_doc(const std::string& doc, const ValueSpec& spec) {
  std::string out = doc;
  if (const std::string range = spec.bounds.text(); !range.empty()) out += fmt::format(" Must be {}.", range);
  std::vector<std::string> aliases;
  for (const auto& [alias, name] : spec.aliases) aliases.push_back(fmt::format("{} for {}", alias, name));
  if (!aliases.empty()) out += fmt::format(" Accepts {}.", fmt::join(aliases, ", "));
  if (spec.non_empty && spec.kind != Kind::Path) out += " Not empty.";
  return out;
}

template <typename Obj>
ConfigKeyDoc key_doc(const KeyDef<Obj>& key, const std::string& path, bool resume_safe) {
  ConfigKeyDoc doc;
  doc.path = path;
  doc.type = type_name(key.kind, key.spec);
  doc.default_value = key.default_text.empty() ? render(key.get(Obj{})) : key.default_text;
  doc.doc = full_doc(key.doc, key.spec);
  doc.resume_safe = resume_safe;
  return doc;
}

}  // namespace

const std::vector<ConfigKeyDoc>& config_schema() {
  static const std::vector<ConfigKeyDoc> schema = [] {
    std::vector<ConfigKeyDoc> out;
    for (const auto& key : config_keys()) {
      ConfigKeyDoc doc = key_doc(key, key.path, key.resume_safe);
      doc.read_by_train = key.read_by_train;
      doc.first_stage = key.first_reader.stage;
      doc.read_by_demo_stage = key.first_reader.demo_too;
      out.push_back(doc);
      if (key.path == "data.sources")
        for (const auto& source_key : source_keys()) {
          ConfigKeyDoc entry = key_doc(source_key, "data.sources[]." + source_key.path, source_key.resume_safe);
          entry.read_by_train = doc.read_by_train;  // read with the list it belongs to
          entry.first_stage = doc.first_stage;
          entry.read_by_demo_stage = doc.read_by_demo_stage;
          out.push_back(entry);
        }
    }
    return out;
  }();
  return schema;
}

std::string format_config_schema() {
  std::string out =
      "Config keys, as `key  type = default`, then what the key does. [resume-safe] marks the keys that may\n"
      "change when a run is resumed. data.eval_sources entries take the same keys as data.sources[].\n";
  std::string section;
  for (const auto& key : config_schema()) {
    const std::string key_section = key.path.substr(0, key.path.find('.'));
    if (key_section != section) {
      section = key_section;
      out += "\n";
    }
    out += fmt::format("{}  {} = {}{}\n", key.path, key.type, key.default_value,
                       key.resume_safe ? "  [resume-safe]" : "");
    out += wrap(key.doc, "    ", 100);
  }
  return out;
}

}  // namespace mt
