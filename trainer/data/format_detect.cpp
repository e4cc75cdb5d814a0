// Format names and detection (see data_formats.h, format_detect.h): the known names, the guess
// of "auto" from a file's first byte and first record's keys, and TRL's record types that are not
// supervised fine-tuning data (preference, unpaired preference, stepwise supervision).
#include "trainer/data/format_detect.h"

#include <fmt/format.h>

#include "models/error.h"
#include "models/json_read.h"
#include "trainer/base/jsonl.h"
#include "trainer/data/record_reader.h"
#include "trainer/data/text_chars.h"

namespace mt {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kConversationFormats[] = {"alpaca",  "alpaca_seed", "messages", "prompt_response", "prompt_completion",
                                     "prompts", "mt_bench"};

// The first record of a file that starts with '[' or '{', parsed; errors name its place.
json first_record(const fs::path& path, char first) {
  DataSourceConfig c;  // the default limits
  c.path = path;
  json obj;
  const std::string name = path.string();
  if (first == '[') {
    const std::string text = read_whole_file(path, c.max_file_bytes);
    const auto spans = array_elements(text, name).spans;
    if (spans.empty()) throw Error(fmt::format("{}: empty array, cannot tell its format", name));
    obj = parse_json(std::string_view(text).substr(spans[0].begin, spans[0].end - spans[0].begin),
                     fmt::format("{}: [element 0]", name));
  } else {
    bool done = false;
    for_each_line(path, c.max_line_bytes, [&](const std::string& line, int64_t line_no, bool too_long) {
      if (done || (!too_long && is_blank(line))) return;
      done = true;
      if (too_long) throw Error(fmt::format("{}:{}: line longer than max_line_bytes", name, line_no));
      obj = parse_json(line, fmt::format("{}:{}", name, line_no));
    });
  }
  return obj;
}

// True when one of the config's field names is `key`: the user pointed a reader at it on purpose.
bool reads_key(const DataSourceConfig& c, const std::string& key) {
  for (const std::string* f : {&c.instruction_field, &c.input_field, &c.output_field, &c.prompt_field,
                               &c.response_field, &c.completion_field, &c.messages_field, &c.sharegpt_field,
                               &c.system_field, &c.turns_field, &c.instances_field, &c.text_field})
    if (*f == key) return true;
  return false;
}

// The format whose fields the first record has (name: the file, for errors).
std::string format_of_record(const json& obj, const std::string& name) {
  if (!obj.is_object()) throw Error(fmt::format("{}: the first record is not a JSON object", name));
  if (auto kind = non_sft_kind(obj, DataSourceConfig{}))
    throw Error(fmt::format("{}: the first record has keys {}: {}", name, record_keys(obj), *kind));
  if (obj.contains("instances")) return "alpaca_seed";
  if (obj.contains("turns")) return "mt_bench";
  if (obj.contains("messages") || obj.contains("conversations")) return "messages";
  if (obj.contains("instruction")) return obj.contains("response") && !obj.contains("output") ? "prompt_response"
                                                                                               : "alpaca";
  if (obj.contains("prompt")) {
    if (obj.contains("completion")) return "prompt_completion";
    return obj.contains("response") ? "prompt_response" : "prompts";
  }
  if (obj.contains("text")) return "text_jsonl";
  throw Error(fmt::format("{}: cannot tell the data format from the first record's keys {}; set format", name,
                          record_keys(obj)));
}

}  // namespace

std::string record_keys(const json& obj) {
  std::string keys;
  for (auto it = obj.begin(); it != obj.end(); ++it) keys += (keys.empty() ? "" : ", ") + printable(it.key());
  return "{" + keys + "}";
}

std::optional<std::string> non_sft_kind(const json& obj, const DataSourceConfig& c) {
  auto has = [&](const char* key) { return obj.contains(key) && !reads_key(c, key); };
  const char* what = nullptr;
  if (has("chosen") && has("rejected"))
    what = "preference data (TRL chosen/rejected)";
  else if (obj.contains(c.completion_field) && has("label"))
    what = "unpaired preference data (TRL completion with a label)";
  else if (has("completions") && has("labels"))
    what = "stepwise supervision data (TRL completions with labels)";
  if (!what) return std::nullopt;
  return fmt::format(
      "{}, not supervised fine-tuning data: read as pairs it would also teach the answers it marks as bad; to train "
      "on one field on purpose, name it in the source (e.g. format prompt_completion with completion_field: chosen)",
      what);
}

bool is_unlabeled_format(const std::string& format) { return format == "text_jsonl" || format == "text"; }

void check_format_name(const DataSourceConfig& c) {
  for (const char* f : kConversationFormats)
    if (c.format == f) return;
  if (is_unlabeled_format(c.format)) return;
  throw Error(fmt::format(
      "{}: unknown data format \"{}\" (expected alpaca, alpaca_seed, messages, prompt_response, prompt_completion, "
      "prompts, mt_bench, text_jsonl, text or auto)",
      c.path.string(), c.format));
}

DataSourceConfig with_format_resolved(const DataSourceConfig& config) {
  DataSourceConfig c = config;
  if (c.format == "auto") c.format = detect_format(c.path);
  check_format_name(c);
  return c;
}

std::string detect_format(const fs::path& path) {
  const char first = first_byte(path);
  if (first != '[' && first != '{') return "text";
  return format_of_record(first_record(path, first), path.string());
}

}  // namespace mt
