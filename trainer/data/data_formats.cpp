// Instruction-data readers (see data_formats.h): record iteration over JSONL and JSON arrays with
// FILE:LINE places, the fail/skip policy for malformed records, the per-format mapping of a record
// to conversations, and the paragraph/line/hard-cut segmentation of unlabeled text.
#include "trainer/data/data_formats.h"
#include "trainer/base/jsonl.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "models/error.h"

namespace mt {

using json = nlohmann::json;
namespace fs = std::filesystem;

// ------------------------------------------------------------------------------------------------
// DataStats

void DataStats::merge(const DataStats& o) {
  read += o.read;
  conversations += o.conversations;
  skipped_malformed += o.skipped_malformed;
  dropped_empty += o.dropped_empty;
  dropped_short += o.dropped_short;
  prompts_only += o.prompts_only;
  examples += o.examples;
  truncated += o.truncated;
  dropped_too_long += o.dropped_too_long;
  tokens += o.tokens;
  target_tokens += o.target_tokens;
  max_tokens = std::max(max_tokens, o.max_tokens);
  for (const auto& m : o.skipped_messages)
    if (skipped_messages.size() < 10) skipped_messages.push_back(m);
}

json DataStats::to_json() const {
  return json{{"read", read},
              {"conversations", conversations},
              {"skipped_malformed", skipped_malformed},
              {"dropped_empty", dropped_empty},
              {"dropped_short", dropped_short},
              {"prompts_only", prompts_only},
              {"examples", examples},
              {"truncated", truncated},
              {"dropped_too_long", dropped_too_long},
              {"tokens", tokens},
              {"target_tokens", target_tokens},
              {"max_tokens", max_tokens},
              {"skipped_messages", skipped_messages}};
}

DataStats DataStats::from_json(const json& j) {
  DataStats s;
  auto get = [&](const char* k, int64_t& v) {
    if (j.contains(k) && j[k].is_number_integer()) v = j[k].get<int64_t>();
  };
  get("read", s.read);
  get("conversations", s.conversations);
  get("skipped_malformed", s.skipped_malformed);
  get("dropped_empty", s.dropped_empty);
  get("dropped_short", s.dropped_short);
  get("prompts_only", s.prompts_only);
  get("examples", s.examples);
  get("truncated", s.truncated);
  get("dropped_too_long", s.dropped_too_long);
  get("tokens", s.tokens);
  get("target_tokens", s.target_tokens);
  get("max_tokens", s.max_tokens);
  if (j.contains("skipped_messages") && j["skipped_messages"].is_array())
    for (const auto& m : j["skipped_messages"])
      if (m.is_string()) s.skipped_messages.push_back(m.get<std::string>());
  return s;
}

std::string DataStats::summary() const {
  std::string s = fmt::format("read {}, {} conversations/segments", read, conversations);
  if (examples > 0 || tokens > 0)
    s += fmt::format(", {} examples ({} tokens, {} targets, longest {})", examples, tokens, target_tokens, max_tokens);
  if (skipped_malformed) s += fmt::format(", skipped {} malformed", skipped_malformed);
  if (dropped_empty) s += fmt::format(", dropped {} empty", dropped_empty);
  if (dropped_short) s += fmt::format(", dropped {} short", dropped_short);
  if (prompts_only) s += fmt::format(", {} prompts-only", prompts_only);
  if (truncated) s += fmt::format(", truncated {}", truncated);
  if (dropped_too_long) s += fmt::format(", dropped {} too long", dropped_too_long);
  return s;
}

// ------------------------------------------------------------------------------------------------
// UTF-8 and small text helpers

int64_t find_invalid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlongs
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // <= U+10FFFF
    } else {
      return static_cast<int64_t>(i);
    }
    if (i + len > n) return static_cast<int64_t>(i);
    if (p[i + 1] < lo || p[i + 1] > hi) return static_cast<int64_t>(i);
    for (size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return static_cast<int64_t>(i);
    i += len;
  }
  return -1;
}

namespace {

// A message safe to print: invalid UTF-8 bytes and control characters become \xNN.
std::string printable(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    } else if (c < 0x80) {
      out.push_back(s[i++]);
    } else {
      // Length of this sequence if valid, else escape the single byte.
      const size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
      const std::string seq = s.substr(i, len);
      if (seq.size() == len && find_invalid_utf8(seq) < 0) {
        out += seq;
        i += len;
      } else {
        out += fmt::format("\\x{:02x}", c);
        ++i;
      }
    }
  }
  return out;
}

int64_t count_chars(std::string_view s) {
  int64_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool is_blank(std::string_view s) { return trim(s).empty(); }

const char* json_type(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    default: return "a number";
  }
}

// nlohmann's parse error text without its "[json.exception...]" prefix, printable.
std::string parse_error_text(const json::parse_error& e) {
  std::string m = e.what();
  const size_t p = m.find("] ");
  if (p != std::string::npos) m = m.substr(p + 2);
  return printable(m);
}

// ------------------------------------------------------------------------------------------------
// Files and the malformed-record policy

std::string read_whole_file(const fs::path& file, int64_t max_bytes) {
  check_input_file(file);
  std::error_code ec;
  const auto size = static_cast<int64_t>(fs::file_size(file, ec));
  if (size > max_bytes)
    throw Error(fmt::format("{}: {} bytes is over max_file_bytes ({}); use JSONL for large sets", file.string(), size,
                            max_bytes));
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot open for reading", file.string()));
  std::string data(static_cast<size_t>(size), '\0');
  if (std::fread(data.data(), 1, data.size(), f.get()) != data.size())
    throw Error(fmt::format("{}: read error", file.string()));
  if (data.compare(0, 3, "\xEF\xBB\xBF") == 0) data.erase(0, 3);  // UTF-8 byte-order mark
  return data;
}

// Runs record-level work under the policy: "fail" lets mt::Error through, "skip" counts it.
struct Policy {
  bool skip = false;
  DataStats* stats = nullptr;

  Policy(const DataSourceConfig& c, DataStats* s) : stats(s) {
    if (c.on_malformed == "skip")
      skip = true;
    else if (c.on_malformed != "fail")
      throw Error(fmt::format("{}: on_malformed must be \"fail\" or \"skip\", got \"{}\"", c.path.string(),
                              c.on_malformed));
  }
  void malformed(const std::string& message) const {
    if (!skip) throw Error(message);
    ++stats->skipped_malformed;
    if (stats->skipped_messages.size() < 10) stats->skipped_messages.push_back(message);
  }
  template <typename Fn>
  void guard(Fn&& fn) const {
    try {
      fn();
    } catch (const Error& e) {
      malformed(e.what());
    }
  }
};

// The top-level elements of a JSON array text, as byte ranges. Strings and nesting are tracked so
// commas inside values do not split; a text that ends before the closing ']' is `truncated`, and
// `last_partial` when it ends inside the last element.
struct Span {
  size_t begin, end;
};
struct ArrayScan {
  std::vector<Span> spans;
  bool truncated = true, last_partial = false;
};
ArrayScan array_elements(const std::string& t, const std::string& file) {
  ArrayScan out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < t.size() && is_space(t[i])) ++i;
  };
  skip_ws();
  if (i >= t.size() || t[i] != '[') throw Error(fmt::format("{}: expected a JSON array", file));
  ++i;
  skip_ws();
  if (i < t.size() && t[i] == ']') {
    out.truncated = false;
    ++i;
  }
  while (out.truncated && i < t.size()) {
    skip_ws();
    const size_t begin = i;
    int depth = 0;
    bool in_string = false, escape = false, closed = false;
    for (; i < t.size(); ++i) {
      const char c = t[i];
      if (in_string) {
        if (escape)
          escape = false;
        else if (c == '\\')
          escape = true;
        else if (c == '"')
          in_string = false;
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) {
          closed = c == ']';
          break;
        }
        --depth;
      } else if (c == ',' && depth == 0) {
        break;
      }
    }
    if (i >= t.size()) {  // the text ends inside this element
      if (!is_blank(std::string_view(t).substr(begin))) {
        out.spans.push_back({begin, t.size()});
        out.last_partial = true;
      }
      return out;
    }
    size_t end = i;
    while (end > begin && is_space(t[end - 1])) --end;
    out.spans.push_back({begin, end});
    ++i;  // past ',' or ']'
    if (closed) out.truncated = false;
  }
  if (!out.truncated) {
    skip_ws();
    if (i < t.size()) throw Error(fmt::format("{}: unexpected text after the closing ']' of the array", file));
  }
  return out;
}

// First non-whitespace byte of a file ('\0' if none), to tell a JSON array from JSONL.
char first_byte(const fs::path& file) {
  check_input_file(file);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot open for reading", file.string()));
  unsigned char bom[3] = {0, 0, 0};
  const size_t got = std::fread(bom, 1, 3, f.get());
  if (!(got == 3 && bom[0] == 0xEF && bom[1] == 0xBB && bom[2] == 0xBF))  // not a UTF-8 byte-order mark
    for (size_t k = 0; k < got; ++k)
      if (!is_space(static_cast<char>(bom[k]))) return static_cast<char>(bom[k]);
  int c;
  while ((c = std::fgetc(f.get())) != EOF)
    if (!is_space(static_cast<char>(c))) return static_cast<char>(c);
  return '\0';
}

using RecordFn = std::function<void(const json&, const std::string& where)>;

// Every record (JSON object) of a JSONL file or a JSON-array file, with its place, under the policy.
void for_each_record(const fs::path& file, const DataSourceConfig& c, const Policy& policy, DataStats& stats,
                     const RecordFn& fn) {
  const std::string name = file.string();
  const char first = first_byte(file);
  if (first == '\0') throw Error(fmt::format("{}: no records (the file is blank)", name));
  if (first == '[') {
    const std::string text = read_whole_file(file, c.max_file_bytes);
    const ArrayScan scan = array_elements(text, name);
    const std::vector<Span>& spans = scan.spans;
    int64_t line = 1;
    size_t counted = 0;
    for (size_t k = 0; k < spans.size(); ++k) {
      line += std::count(text.begin() + static_cast<std::ptrdiff_t>(counted),
                         text.begin() + static_cast<std::ptrdiff_t>(spans[k].begin), '\n');
      counted = spans[k].begin;
      const std::string where = fmt::format("{}:{} [element {}]", name, line, k);
      ++stats.read;
      if (scan.last_partial && k + 1 == spans.size()) {
        policy.malformed(fmt::format("{}: the file ends inside this element (truncated JSON?)", where));
        break;
      }
      policy.guard([&] {
        json obj;
        try {
          obj = json::parse(text.begin() + static_cast<std::ptrdiff_t>(spans[k].begin),
                            text.begin() + static_cast<std::ptrdiff_t>(spans[k].end));
        } catch (const json::parse_error& e) {
          throw Error(fmt::format("{}: invalid JSON: {}", where, parse_error_text(e)));
        }
        if (!obj.is_object()) throw Error(fmt::format("{}: expected a JSON object, got {}", where, json_type(obj)));
        fn(obj, where);
      });
    }
    if (scan.truncated && !scan.last_partial)
      policy.malformed(fmt::format("{}: the file ends before the array's closing ']' (truncated JSON?)", name));
    return;
  }
  for_each_line(file, c.max_line_bytes, [&](const std::string& line, int64_t line_no, bool too_long) {
    if (!too_long && is_blank(line)) return;
    ++stats.read;
    const std::string where = fmt::format("{}:{}", name, line_no);
    policy.guard([&] {
      if (too_long)
        throw Error(fmt::format("{}: line longer than max_line_bytes ({} bytes)", where, c.max_line_bytes));
      json obj;
      try {
        obj = json::parse(line);
      } catch (const json::parse_error& e) {
        throw Error(fmt::format("{}: invalid JSON at column {}: {}", where, e.byte, parse_error_text(e)));
      }
      if (!obj.is_object()) throw Error(fmt::format("{}: expected a JSON object, got {}", where, json_type(obj)));
      fn(obj, where);
    });
  });
}

// ------------------------------------------------------------------------------------------------
// Fields

// A string field. Missing or null: an error when required, else nullopt. Any other type: an error.
std::optional<std::string> get_string(const json& obj, const std::string& key, const std::string& where,
                                      bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) throw Error(fmt::format("{}: missing field '{}'", where, key));
    return std::nullopt;
  }
  if (!it->is_string())
    throw Error(fmt::format("{}: field '{}' must be a string, got {}", where, key, json_type(*it)));
  return it->get<std::string>();
}

const json& get_array(const json& obj, const std::string& key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) throw Error(fmt::format("{}: missing field '{}'", where, key));
  if (!it->is_array()) throw Error(fmt::format("{}: field '{}' must be a list, got {}", where, key, json_type(*it)));
  return *it;
}

// OpenAI content: a string, or a list of parts of which only {"type": "text", "text": ...} are accepted.
std::string message_content(const json& m, const std::string& key, const std::string& where) {
  auto it = m.find(key);
  if (it != m.end() && it->is_array()) {
    std::string out;
    for (size_t k = 0; k < it->size(); ++k) {
      const json& part = (*it)[k];
      const std::string pw = fmt::format("{} part {}", where, k);
      if (!part.is_object()) throw Error(fmt::format("{}: content parts must be objects", pw));
      const auto type = get_string(part, "type", pw, true);
      if (*type != "text") throw Error(fmt::format("{}: content part of type '{}' is not supported", pw, *type));
      out += *get_string(part, "text", pw, true);
    }
    return out;
  }
  return *get_string(m, key, where, true);
}

std::optional<std::string> normalize_role(const std::string& r) {
  if (r == "system") return "system";
  if (r == "user" || r == "human") return "user";
  if (r == "assistant" || r == "gpt" || r == "chatgpt" || r == "bard" || r == "bing" || r == "model") return "assistant";
  return std::nullopt;
}

// "instruction" + "\n\n" + "input", leaving out an empty part.
std::string join_instruction(const std::string& instruction, const std::string& input) {
  if (is_blank(input)) return instruction;
  if (is_blank(instruction)) return input;
  return instruction + "\n\n" + input;
}

Conversation make_conversation(const DataSourceConfig& c, const json& obj, const std::string& where,
                               const std::string& user, const std::optional<std::string>& response) {
  Conversation conv;
  conv.where = where;
  std::optional<std::string> system = get_string(obj, c.system_field, where, false);
  if (!system && !c.system_prompt.empty()) system = c.system_prompt;
  if (system) conv.messages.push_back({"system", *system});
  conv.messages.push_back({"user", user});
  if (response)
    conv.messages.push_back({"assistant", *response});
  else
    conv.prompts_only = true;
  return conv;
}

// mt_bench answers: question_id -> the answer turns of choices[0].
std::map<int64_t, std::vector<std::string>> read_mt_bench_answers(const DataSourceConfig& c) {
  std::map<int64_t, std::vector<std::string>> answers;
  DataSourceConfig ac = c;
  ac.on_malformed = "fail";  // a bad answers file is never silently half-used
  DataStats unused;
  Policy policy(ac, &unused);
  for_each_record(c.answers_path, ac, policy, unused, [&](const json& obj, const std::string& where) {
    auto qid = obj.find("question_id");
    if (qid == obj.end() || !qid->is_number_integer())
      throw Error(fmt::format("{}: field 'question_id' must be an integer", where));
    const json& choices = get_array(obj, "choices", where);
    if (choices.empty() || !choices[0].is_object())
      throw Error(fmt::format("{}: field 'choices' must hold at least one object", where));
    const json& turns = get_array(choices[0], "turns", where + " choices[0]");
    std::vector<std::string> t;
    for (size_t k = 0; k < turns.size(); ++k) {
      if (!turns[k].is_string())
        throw Error(fmt::format("{}: choices[0].turns[{}] must be a string, got {}", where, k, json_type(turns[k])));
      t.push_back(turns[k].get<std::string>());
    }
    answers[qid->get<int64_t>()] = std::move(t);
  });
  return answers;
}

// Empty: no user turn with text, or (when it has responses) no assistant turn with text.
bool conversation_is_empty(const Conversation& conv) {
  bool user = false, assistant = false;
  for (const auto& m : conv.messages) {
    if (m.role == "user" && !is_blank(m.content)) user = true;
    if (m.role == "assistant" && !is_blank(m.content)) assistant = true;
  }
  return !user || (!conv.prompts_only && !assistant);
}

const char* kConversationFormats[] = {"alpaca", "alpaca_seed", "messages", "prompt_response", "prompts", "mt_bench"};

void check_format_name(const DataSourceConfig& c) {
  for (const char* f : kConversationFormats)
    if (c.format == f) return;
  if (is_unlabeled_format(c.format)) return;
  throw Error(fmt::format(
      "{}: unknown data format \"{}\" (expected alpaca, alpaca_seed, messages, prompt_response, prompts, mt_bench, "
      "text_jsonl, text or auto)",
      c.path.string(), c.format));
}

// Segments with the line each starts on.
struct Segment {
  std::string text;
  int64_t line;
};

std::vector<Segment> segment_text(const std::string& text, int64_t min_chars, int64_t max_chars,
                                  const std::vector<bool>* dropped_lines, int64_t* dropped_short,
                                  int64_t* paragraphs) {
  if (max_chars <= 0 || min_chars < 0 || min_chars > max_chars)
    throw Error(fmt::format("text segmentation needs 0 <= min_chars <= max_chars and max_chars > 0, got {}..{}",
                            min_chars, max_chars));
  std::vector<Segment> out;
  std::string cur;
  int64_t cur_chars = 0, cur_line = 0;
  auto flush = [&] {
    const std::string_view t = trim(cur);
    if (!t.empty()) {
      if (count_chars(t) < min_chars) {
        if (dropped_short) ++*dropped_short;
      } else {
        out.push_back({std::string(t), cur_line});
      }
    }
    cur.clear();
    cur_chars = 0;
  };
  // Appends a piece (a paragraph or a line) with its separator, flushing first if it would not fit.
  auto add = [&](std::string_view piece, int64_t chars, int64_t line, const char* sep) {
    const int64_t sep_chars = static_cast<int64_t>(std::strlen(sep));
    if (!cur.empty() && cur_chars + sep_chars + chars > max_chars) flush();
    if (cur.empty()) {
      cur_line = line;
    } else {
      cur += sep;
      cur_chars += sep_chars;
    }
    cur.append(piece);
    cur_chars += chars;
  };
  // A line longer than max_chars: cut at the last whitespace in the window's second half, else at
  // max_chars (on a character boundary). Whole pieces are flushed; the rest carries on.
  auto add_long_line = [&](std::string_view line, int64_t line_no) {
    flush();
    while (count_chars(line) > max_chars) {
      size_t cut = 0;
      int64_t chars = 0;
      while (cut < line.size() && chars < max_chars) {
        ++cut;
        while (cut < line.size() && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) ++cut;
        ++chars;
      }
      size_t end = cut, next = cut;
      if (cut < line.size() && is_space(line[cut])) {
        next = cut + 1;  // the window ends right before a space
      } else {
        size_t ws = cut;
        while (ws > 0 && !is_space(line[ws - 1])) --ws;
        if (ws > 0 && count_chars(line.substr(0, ws - 1)) >= max_chars / 2) {
          end = ws - 1;
          next = ws;
        }
      }
      cur_line = line_no;
      cur.assign(line.substr(0, end));
      flush();
      line = line.substr(next);
    }
    add(line, count_chars(line), line_no, "\n");
  };

  // Split into lines, then paragraphs (runs of non-blank lines).
  std::vector<std::pair<std::string_view, int64_t>> para;  // lines of the current paragraph
  auto end_paragraph = [&] {
    if (para.empty()) return;
    if (paragraphs) ++*paragraphs;
    int64_t chars = static_cast<int64_t>(para.size()) - 1;  // the "\n" joins
    for (const auto& [l, n] : para) chars += count_chars(l);
    if (chars <= max_chars) {
      std::string joined;
      for (size_t k = 0; k < para.size(); ++k) {
        if (k) joined += '\n';
        joined.append(para[k].first);
      }
      add(joined, chars, para[0].second, "\n\n");
    } else {
      flush();
      for (const auto& [l, n] : para) {
        const int64_t lc = count_chars(l);
        if (lc > max_chars)
          add_long_line(l, n);
        else
          add(l, lc, n, "\n");
      }
      flush();
    }
    para.clear();
  };
  const std::string_view all(text);
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos <= all.size()) {
    size_t nl = all.find('\n', pos);
    if (nl == std::string_view::npos) nl = all.size();
    std::string_view line = all.substr(pos, nl - pos);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const bool dropped = dropped_lines && static_cast<size_t>(line_no) <= dropped_lines->size() &&
                         (*dropped_lines)[static_cast<size_t>(line_no - 1)];
    if (dropped) {
      // A skipped malformed line leaves the paragraph as it is.
    } else if (is_blank(line)) {
      end_paragraph();
    } else {
      para.push_back({line, line_no});
    }
    if (nl == all.size()) break;
    pos = nl + 1;
  }
  end_paragraph();
  flush();
  return out;
}

}  // namespace

bool is_unlabeled_format(const std::string& format) { return format == "text_jsonl" || format == "text"; }

std::vector<std::string> split_text_segments(const std::string& text, int64_t min_chars, int64_t max_chars,
                                             int64_t* dropped_short) {
  std::vector<std::string> out;
  for (auto& s : segment_text(text, min_chars, max_chars, nullptr, dropped_short, nullptr))
    out.push_back(std::move(s.text));
  return out;
}

std::string detect_format(const fs::path& path) {
  const char first = first_byte(path);
  if (first != '[' && first != '{') return "text";
  DataSourceConfig c;
  c.path = path;
  json obj;
  const std::string name = path.string();
  if (first == '[') {
    const std::string text = read_whole_file(path, c.max_file_bytes);
    const auto spans = array_elements(text, name).spans;
    if (spans.empty()) throw Error(fmt::format("{}: empty array, cannot tell its format", name));
    try {
      obj = json::parse(text.begin() + static_cast<std::ptrdiff_t>(spans[0].begin),
                        text.begin() + static_cast<std::ptrdiff_t>(spans[0].end));
    } catch (const json::parse_error& e) {
      throw Error(fmt::format("{}: [element 0]: invalid JSON: {}", name, parse_error_text(e)));
    }
  } else {
    bool done = false;
    for_each_line(path, c.max_line_bytes, [&](const std::string& line, int64_t line_no, bool too_long) {
      if (done || (!too_long && is_blank(line))) return;
      done = true;
      if (too_long) throw Error(fmt::format("{}:{}: line longer than max_line_bytes", name, line_no));
      try {
        obj = json::parse(line);
      } catch (const json::parse_error& e) {
        throw Error(fmt::format("{}:{}: invalid JSON: {}", name, line_no, parse_error_text(e)));
      }
    });
  }
  if (!obj.is_object()) throw Error(fmt::format("{}: the first record is not a JSON object", name));
  if (obj.contains("instances")) return "alpaca_seed";
  if (obj.contains("turns")) return "mt_bench";
  if (obj.contains("messages") || obj.contains("conversations")) return "messages";
  if (obj.contains("instruction")) return obj.contains("response") && !obj.contains("output") ? "prompt_response"
                                                                                               : "alpaca";
  if (obj.contains("prompt")) return obj.contains("response") ? "prompt_response" : "prompts";
  if (obj.contains("text")) return "text_jsonl";
  std::string keys;
  for (auto it = obj.begin(); it != obj.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
  throw Error(fmt::format("{}: cannot tell the data format from the first record's keys ({}); set format", name, keys));
}

std::vector<Conversation> read_conversations(const DataSourceConfig& config, DataStats* stats_out) {
  DataSourceConfig c = config;
  if (c.format == "auto") c.format = detect_format(c.path);
  check_format_name(c);
  if (is_unlabeled_format(c.format))
    throw Error(fmt::format("{}: format \"{}\" holds unlabeled text, not conversations", c.path.string(), c.format));
  DataStats local;
  DataStats& stats = stats_out ? *stats_out : local;
  DataStats mine;
  const Policy policy(c, &mine);
  std::map<int64_t, std::vector<std::string>> answers;
  if (c.format == "mt_bench" && !c.answers_path.empty()) answers = read_mt_bench_answers(c);

  std::vector<Conversation> out;
  auto emit = [&](Conversation conv) {
    if (conversation_is_empty(conv)) {
      ++mine.dropped_empty;
      return;
    }
    if (conv.prompts_only) ++mine.prompts_only;
    ++mine.conversations;
    out.push_back(std::move(conv));
  };

  for_each_record(c.path, c, policy, mine, [&](const json& obj, const std::string& where) {
    if (c.format == "alpaca") {
      const std::string instruction = *get_string(obj, c.instruction_field, where, true);
      const std::string input = get_string(obj, c.input_field, where, false).value_or("");
      const std::string output = *get_string(obj, c.output_field, where, true);
      emit(make_conversation(c, obj, where, join_instruction(instruction, input), output));
    } else if (c.format == "alpaca_seed") {
      const std::string instruction = *get_string(obj, c.instruction_field, where, true);
      const json& instances = get_array(obj, c.instances_field, where);
      if (instances.empty()) throw Error(fmt::format("{}: field '{}' is an empty list", where, c.instances_field));
      std::vector<Conversation> convs;  // all or nothing: a bad instance makes the record malformed
      for (size_t k = 0; k < instances.size(); ++k) {
        const std::string iw = fmt::format("{} instance {}", where, k);
        if (!instances[k].is_object())
          throw Error(fmt::format("{}: must be an object, got {}", iw, json_type(instances[k])));
        const std::string input = get_string(instances[k], c.input_field, iw, false).value_or("");
        const std::string output = *get_string(instances[k], c.output_field, iw, true);
        convs.push_back(make_conversation(c, obj, iw, join_instruction(instruction, input), output));
      }
      for (auto& conv : convs) emit(std::move(conv));
    } else if (c.format == "messages") {
      const bool openai = obj.contains(c.messages_field);
      if (!openai && !obj.contains(c.sharegpt_field))
        throw Error(fmt::format("{}: missing field '{}' (or '{}')", where, c.messages_field, c.sharegpt_field));
      const std::string& list_field = openai ? c.messages_field : c.sharegpt_field;
      const std::string& role_key = openai ? c.role_field : c.sharegpt_role_field;
      const std::string& content_key = openai ? c.content_field : c.sharegpt_content_field;
      const json& list = get_array(obj, list_field, where);
      Conversation conv;
      conv.where = where;
      bool has_system = false, has_assistant = false;
      for (size_t k = 0; k < list.size(); ++k) {
        const std::string mw = fmt::format("{} {}[{}]", where, list_field, k);
        if (!list[k].is_object()) throw Error(fmt::format("{}: must be an object, got {}", mw, json_type(list[k])));
        const std::string raw_role = *get_string(list[k], role_key, mw, true);
        const auto role = normalize_role(raw_role);
        if (!role) throw Error(fmt::format("{}: unknown role '{}'", mw, printable(raw_role)));
        has_system |= *role == "system";
        has_assistant |= *role == "assistant";
        conv.messages.push_back({*role, message_content(list[k], content_key, mw)});
      }
      if (!has_system) {
        std::optional<std::string> system = get_string(obj, c.system_field, where, false);
        if (!system && !c.system_prompt.empty()) system = c.system_prompt;
        if (system) conv.messages.insert(conv.messages.begin(), ChatMessage{"system", *system});
      }
      conv.prompts_only = !has_assistant;
      emit(std::move(conv));
    } else if (c.format == "prompt_response") {
      const std::string prompt = *get_string(obj, c.prompt_field, where, true);
      const std::string response = *get_string(obj, c.response_field, where, true);
      emit(make_conversation(c, obj, where, prompt, response));
    } else if (c.format == "prompts") {
      emit(make_conversation(c, obj, where, *get_string(obj, c.prompt_field, where, true), std::nullopt));
    } else {  // mt_bench
      const json& turns = get_array(obj, c.turns_field, where);
      if (turns.empty()) throw Error(fmt::format("{}: field '{}' is an empty list", where, c.turns_field));
      const std::vector<std::string>* answer = nullptr;
      if (!answers.empty()) {
        auto qid = obj.find("question_id");
        if (qid == obj.end() || !qid->is_number_integer())
          throw Error(fmt::format("{}: field 'question_id' must be an integer to join answers", where));
        auto it = answers.find(qid->get<int64_t>());
        if (it != answers.end()) {
          if (it->second.size() != turns.size())
            throw Error(fmt::format("{}: {} has {} answer turns for this question's {} turns", where,
                                    c.answers_path.string(), it->second.size(), turns.size()));
          answer = &it->second;
        }
      }
      Conversation conv;
      conv.where = where;
      if (!c.system_prompt.empty()) conv.messages.push_back({"system", c.system_prompt});
      for (size_t k = 0; k < turns.size(); ++k) {
        if (!turns[k].is_string())
          throw Error(fmt::format("{}: {}[{}] must be a string, got {}", where, c.turns_field, k, json_type(turns[k])));
        conv.messages.push_back({"user", turns[k].get<std::string>()});
        if (answer) conv.messages.push_back({"assistant", (*answer)[k]});
      }
      conv.prompts_only = answer == nullptr;
      emit(std::move(conv));
    }
  });
  if (out.empty())
    throw Error(fmt::format("{}: no usable records ({})", c.path.string(), mine.summary()));
  stats.merge(mine);
  return out;
}

std::vector<TextSegment> read_text_segments(const DataSourceConfig& config, DataStats* stats_out) {
  DataSourceConfig c = config;
  if (c.format == "auto") c.format = detect_format(c.path);
  check_format_name(c);
  if (!is_unlabeled_format(c.format))
    throw Error(fmt::format("{}: format \"{}\" holds conversations, not unlabeled text", c.path.string(), c.format));
  DataStats local;
  DataStats& stats = stats_out ? *stats_out : local;
  DataStats mine;
  const Policy policy(c, &mine);
  const std::string name = c.path.string();
  std::vector<TextSegment> out;

  if (c.format == "text_jsonl") {
    for_each_record(c.path, c, policy, mine, [&](const json& obj, const std::string& where) {
      const std::string text = *get_string(obj, c.text_field, where, true);
      const auto segs = segment_text(text, c.min_chars, c.max_chars, nullptr, &mine.dropped_short, nullptr);
      for (size_t k = 0; k < segs.size(); ++k)
        out.push_back({segs[k].text, segs.size() == 1 ? where : fmt::format("{} segment {}", where, k)});
    });
  } else {
    const std::string text = read_whole_file(c.path, c.max_file_bytes);
    // Lines with invalid UTF-8 or over max_line_bytes are malformed records: an error, or dropped.
    std::vector<bool> dropped;
    size_t pos = 0;
    int64_t line_no = 0;
    while (pos <= text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) nl = text.size();
      ++line_no;
      bool bad = false;
      if (static_cast<int64_t>(nl - pos) > c.max_line_bytes) {
        policy.malformed(fmt::format("{}:{}: line longer than max_line_bytes ({} bytes)", name, line_no,
                                     c.max_line_bytes));
        bad = true;
      } else {
        const int64_t at = find_invalid_utf8(text.substr(pos, nl - pos));
        if (at >= 0) {
          policy.malformed(fmt::format("{}:{}: invalid UTF-8 at byte {} of the line", name, line_no, at + 1));
          bad = true;
        }
      }
      dropped.push_back(bad);
      if (nl == text.size()) break;
      pos = nl + 1;
    }
    int64_t paragraphs = 0;
    for (auto& s : segment_text(text, c.min_chars, c.max_chars, &dropped, &mine.dropped_short, &paragraphs))
      out.push_back({std::move(s.text), fmt::format("{}:{}", name, s.line)});
    mine.read += paragraphs;
  }
  mine.conversations = static_cast<int64_t>(out.size());
  if (out.empty()) throw Error(fmt::format("{}: no usable text segments ({})", name, mine.summary()));
  stats.merge(mine);
  return out;
}

}  // namespace mt
