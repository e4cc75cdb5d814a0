// The segmentation of unlabeled text (the rule is documented at split_text_segments in
// data_formats.h), with the line each segment starts on so that readers can name its place.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mt {

// Segments with the line each starts on.
struct Segment {
  std::string text;
  int64_t line;
};

// split_text_segments' rule. dropped_lines (optional): lines (by index = line - 1) left out as
// malformed, which neither join nor end a paragraph. *paragraphs (optional) counts the paragraphs.
std::vector<Segment> segment_text(const std::string& text, int64_t min_chars, int64_t max_chars,
                                  const std::vector<bool>* dropped_lines, int64_t* dropped_short,
                                  int64_t* paragraphs);

}  // namespace mt
