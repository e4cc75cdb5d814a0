// read_text_segments (see data_formats.h): the unlabeled formats, text_jsonl (each record's text
// field) and text (a plain UTF-8 file whose bad lines are malformed records), cut into segments.
#include <fmt/format.h>

#include "models/error.h"
#include "trainer/data/data_formats.h"
#include "trainer/data/format_detect.h"
#include "trainer/data/record_fields.h"
#include "trainer/data/record_reader.h"
#include "trainer/data/text_segments.h"

namespace mt {

using json = nlohmann::json;

namespace {

// text_jsonl: each record's segments, "FILE:LINE segment K" when a record gives more than one.
std::vector<TextSegment> text_jsonl_segments(const DataSourceConfig& c, const Policy& policy, DataStats& mine) {
  std::vector<TextSegment> out;
  for_each_record(c.path, c, policy, mine, [&](const json& obj, const std::string& where) {
    const std::string text = *get_string(obj, c.text_field, where, true);
    const auto segs = segment_text(text, c.min_chars, c.max_chars, nullptr, &mine.dropped_short, nullptr);
    for (size_t k = 0; k < segs.size(); ++k)
      out.push_back({segs[k].text, segs.size() == 1 ? where : fmt::format("{} segment {}", where, k)});
  });
  return out;
}

// Lines with invalid UTF-8 or over max_line_bytes are malformed records: an error, or dropped.
std::vector<bool> malformed_lines(const std::string& text, const DataSourceConfig& c, const Policy& policy) {
  const std::string name = c.path.string();
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
  return dropped;
}

// text: the whole file's segments, each "FILE:LINE" of the line it starts on; paragraphs are the
// records read.
std::vector<TextSegment> plain_text_segments(const DataSourceConfig& c, const Policy& policy, DataStats& mine) {
  const std::string name = c.path.string();
  std::vector<TextSegment> out;
  const std::string text = read_whole_file(c.path, c.max_file_bytes);
  const std::vector<bool> dropped = malformed_lines(text, c, policy);
  int64_t paragraphs = 0;
  for (auto& s : segment_text(text, c.min_chars, c.max_chars, &dropped, &mine.dropped_short, &paragraphs))
    out.push_back({std::move(s.text), fmt::format("{}:{}", name, s.line)});
  mine.read += paragraphs;
  return out;
}

}  // namespace

std::vector<TextSegment> read_text_segments(const DataSourceConfig& config, DataStats* stats_out) {
  const DataSourceConfig c = with_format_resolved(config);
  if (!is_unlabeled_format(c.format))
    throw Error(fmt::format("{}: format \"{}\" holds conversations, not unlabeled text", c.path.string(), c.format));
  DataStats local;
  DataStats& stats = stats_out ? *stats_out : local;
  DataStats mine;
  const Policy policy(c, &mine);
  const std::string name = c.path.string();
  std::vector<TextSegment> out =
      c.format == "text_jsonl" ? text_jsonl_segments(c, policy, mine) : plain_text_segments(c, policy, mine);
  mine.conversations = static_cast<int64_t>(out.size());
  if (out.empty()) throw Error(fmt::format("{}: no usable text segments ({})", name, mine.summary()));
  stats.merge(mine);
  return out;
}

}  // namespace mt
