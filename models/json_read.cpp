// The bounded JSON parse of json_read.h: nlohmann's (iterative) SAX parser drives a DOM builder of
// our own that counts depth and stops before a too-deep value exists, refuses a key its object
// already holds, leaves out skipped paths, and keeps the byte offset and key path of the first
// problem for the message.
#include "models/json_read.h"

#include <algorithm>
#include <cstdio>

#include "models/error.h"

namespace mt {
namespace {

using nlohmann::json;

// Untrusted text in a message: control bytes and invalid UTF-8 escaped, long text cut.
std::string printable(std::string_view s, size_t max_chars = 80) {
  std::string out;
  size_t i = 0;
  while (i < s.size() && out.size() < max_chars) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size() && !(len == 1 && (c < 0x20 || c == 0x7F)) && !(len == 2 && c < 0xC2);
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      ++i;
    }
  }
  if (i < s.size()) out += "...";
  return out;
}

// "line L, column C" of 1-based byte `pos`, or "" for one-line text (the byte says it all).
std::string line_column(std::string_view text, size_t pos) {
  const size_t end = std::min(pos, text.size());
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < end; ++i)
    if (text[i] == '\n') ++line, line_start = i + 1;
  if (line == 1 && text.find('\n') == std::string_view::npos) return "";
  return "line " + std::to_string(line) + ", column " + std::to_string(end - line_start);
}

// The 1-based byte of the bracket that first opens level max_depth + 1. Only called after the
// parser saw that level, so the text up to there is valid JSON and strings are tracked exactly.
size_t too_deep_at(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false, escape = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i + 1;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return text.size();
}

class DomBuilder {
 public:
  explicit DomBuilder(const JsonLimits& limits) : limits_(limits) {}

  json result;
  std::string error;  // first problem, without the `where` prefix; empty if none
  size_t error_byte = 0;
  bool too_deep = false;

  bool null() { return value(nullptr); }
  bool boolean(bool v) { return value(v); }
  bool number_integer(json::number_integer_t v) { return value(v); }
  bool number_unsigned(json::number_unsigned_t v) { return value(v); }
  bool number_float(json::number_float_t v, const std::string&) { return value(v); }
  bool string(json::string_t& v) { return value(std::move(v)); }
  bool binary(json::binary_t& v) { return value(json::binary(std::move(v))); }

  bool start_object(size_t) { return open(json::value_t::object); }
  bool start_array(size_t) { return open(json::value_t::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    if (skipping_ > 0) return true;
    Frame& f = frames_.back();
    f.key = k;
    if (f.value->contains(k)) {
      error = limits_.describe_duplicate ? limits_.describe_duplicate(path(false))
                                         : "duplicate key '" + printable(k) + "'" + path_text(false);
      return false;
    }
    skip_next_ = !limits_.skip.empty() && is_skipped();
    return true;
  }

  template <class Exception>
  bool parse_error(size_t position, const std::string&, const Exception& ex) {
    std::string m = ex.what();
    const size_t p = m.find("] ");  // "[json.exception.parse_error.101] "
    if (p != std::string::npos) m = m.substr(p + 2);
    error_byte = position;
    error = "invalid JSON at byte " + std::to_string(position) + ": " + printable(m, 400) + path_text(true);
    return false;
  }

 private:
  struct Frame {
    json* value;
    std::string key;  // the current key, for objects
  };

  template <class V>
  bool value(V&& v) {
    if (skipping_ > 0) return true;
    if (skip_next_) {
      skip_next_ = false;
      return true;
    }
    place(json(std::forward<V>(v)));
    return true;
  }

  bool open(json::value_t type) {
    if (++depth_ > limits_.max_depth) {
      too_deep = true;
      error = "nested deeper than " + std::to_string(limits_.max_depth) + " levels";
      return false;
    }
    if (skipping_ > 0 || skip_next_) {
      skip_next_ = false;
      ++skipping_;
      return true;
    }
    frames_.push_back({place(json(type)), {}});
    return true;
  }

  bool close() {
    --depth_;
    if (skipping_ > 0)
      --skipping_;
    else
      frames_.pop_back();
    return true;
  }

  json* place(json&& v) {
    if (frames_.empty()) {
      result = std::move(v);
      return &result;
    }
    json& parent = *frames_.back().value;
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[frames_.back().key];
    slot = std::move(v);
    return &slot;
  }

  bool is_skipped() const {
    for (const std::vector<std::string>& path : limits_.skip) {
      if (path.size() != frames_.size()) continue;
      bool match = true;
      for (size_t i = 0; match && i < path.size(); ++i)
        match = frames_[i].value->is_object() && frames_[i].key == path[i];
      if (match) return true;
    }
    return false;
  }

  // The open containers' keys and indexes; `in_value` when the problem is in the next element of
  // the innermost array (not yet added) rather than in its last one.
  std::vector<std::string> path(bool in_value) const {
    std::vector<std::string> p;
    for (size_t i = 0; i < frames_.size(); ++i) {
      const json& v = *frames_[i].value;
      const size_t n = v.is_array() ? v.size() : 0;
      p.push_back(v.is_object() ? frames_[i].key
                                : std::to_string(i + 1 == frames_.size() && in_value ? n : (n > 0 ? n - 1 : 0)));
    }
    if (skipping_ > 0) p.push_back("...");
    return p;
  }

  // " (at /a/0/b)", cut when long (a deep path says little more than its start).
  std::string path_text(bool in_value) const {
    std::string t;
    for (const std::string& k : path(in_value)) {
      t += "/" + printable(k, 40);
      if (t.size() > 160) {
        t += "/...";
        break;
      }
    }
    return t.empty() ? "" : " (at " + t + ")";
  }

  const JsonLimits& limits_;
  std::vector<Frame> frames_;  // the open containers that are being built
  size_t depth_ = 0;           // all open containers, skipped ones too
  size_t skipping_ = 0;        // open containers inside a skipped value
  bool skip_next_ = false;     // the value after the current key is skipped
};

// Parses into *out; returns the error text without `where` (empty on success).
std::string parse_into(std::string_view text, const JsonLimits& limits, json* out) {
  if (text.size() > limits.max_bytes)
    return std::to_string(text.size()) + " bytes of JSON, over the limit of " + std::to_string(limits.max_bytes);
  DomBuilder b(limits);
  const bool ok = json::sax_parse(text.begin(), text.end(), &b);
  if (ok && b.error.empty()) {
    *out = std::move(b.result);
    return "";
  }
  std::string e = b.error.empty() ? "invalid JSON" : b.error;
  if (b.too_deep) {
    const size_t at = too_deep_at(text, limits.max_depth);
    const std::string lc = line_column(text, at);
    e = "JSON " + e + " at byte " + std::to_string(at) + (lc.empty() ? "" : " (" + lc + ")");
  } else if (b.error_byte > 0 && e.find("at line") == std::string::npos) {
    const std::string lc = line_column(text, b.error_byte);  // e.g. number overflow: nlohmann gives no line
    if (!lc.empty()) e += " (" + lc + ")";
  }
  return e;
}

}  // namespace

json parse_json(std::string_view text, const std::string& where, const JsonLimits& limits) {
  json j;
  const std::string e = parse_into(text, limits, &j);
  if (!e.empty()) throw Error(where + ": " + e);
  return j;
}

json parse_json_or_discarded(std::string_view text, const JsonLimits& limits) {
  json j;
  if (!parse_into(text, limits, &j).empty()) return json(json::value_t::discarded);
  return j;
}

}  // namespace mt
