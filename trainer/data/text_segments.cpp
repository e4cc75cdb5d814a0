// Unlabeled text -> segments of min..max characters (see split_text_segments in data_formats.h):
// lines grouped into paragraphs, paragraphs merged greedily, long paragraphs split into lines and
// long lines cut at whitespace (else at max_chars).
#include "trainer/data/text_segments.h"

#include <fmt/format.h>

#include <cstring>
#include <string_view>
#include <utility>

#include "models/error.h"
#include "trainer/data/data_formats.h"
#include "trainer/data/text_chars.h"

namespace mt {

namespace {

using Paragraph = std::vector<std::pair<std::string_view, int64_t>>;  // its lines with their numbers

// Where a line longer than max_chars is cut: its first `end` bytes are a piece, the rest starts at
// `next` (past the whitespace cut at, if any).
struct Cut {
  size_t end, next;
};

// The cut of a line longer than max_chars: at the last whitespace in the window's second half, else
// at max_chars (on a character boundary).
Cut long_line_cut(std::string_view line, int64_t max_chars) {
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
  return {end, next};
}

// The segment being built (cur) and the finished ones (out).
struct SegmentBuilder {
  int64_t min_chars, max_chars;
  int64_t* dropped_short;
  int64_t* paragraphs;
  std::vector<Segment> out;
  std::string cur;
  int64_t cur_chars = 0, cur_line = 0;

  SegmentBuilder(int64_t min_c, int64_t max_c, int64_t* dropped, int64_t* paras)
      : min_chars(min_c), max_chars(max_c), dropped_short(dropped), paragraphs(paras) {}

  // Ends the current segment: trimmed, kept unless shorter than min_chars.
  void flush() {
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
  }

  // Appends a piece (a paragraph or a line) with its separator, flushing first if it would not fit.
  void add(std::string_view piece, int64_t chars, int64_t line, const char* sep) {
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
  }

  // A line longer than max_chars: whole pieces (see long_line_cut) are flushed; the rest carries on.
  void add_long_line(std::string_view line, int64_t line_no) {
    flush();
    while (count_chars(line) > max_chars) {
      const Cut cut = long_line_cut(line, max_chars);
      cur_line = line_no;
      cur.assign(line.substr(0, cut.end));
      flush();
      line = line.substr(cut.next);
    }
    add(line, count_chars(line), line_no, "\n");
  }

  // A whole paragraph joins the segment if it fits in max_chars, else its lines do, one by one.
  void end_paragraph(Paragraph& para) {
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
  }
};

}  // namespace

std::vector<Segment> segment_text(const std::string& text, int64_t min_chars, int64_t max_chars,
                                  const std::vector<bool>* dropped_lines, int64_t* dropped_short,
                                  int64_t* paragraphs) {
  if (max_chars <= 0 || min_chars < 0 || min_chars > max_chars)
    throw Error(fmt::format("text segmentation needs 0 <= min_chars <= max_chars and max_chars > 0, got {}..{}",
                            min_chars, max_chars));
  SegmentBuilder segments(min_chars, max_chars, dropped_short, paragraphs);
  // Split into lines, then paragraphs (runs of non-blank lines).
  Paragraph para;  // lines of the current paragraph
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
      segments.end_paragraph(para);
    } else {
      para.push_back({line, line_no});
    }
    if (nl == all.size()) break;
    pos = nl + 1;
  }
  segments.end_paragraph(para);
  segments.flush();
  return std::move(segments.out);
}

std::vector<std::string> split_text_segments(const std::string& text, int64_t min_chars, int64_t max_chars,
                                             int64_t* dropped_short) {
  std::vector<std::string> out;
  for (auto& s : segment_text(text, min_chars, max_chars, nullptr, dropped_short, nullptr))
    out.push_back(std::move(s.text));
  return out;
}

}  // namespace mt
