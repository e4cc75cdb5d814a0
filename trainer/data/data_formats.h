// Instruction-data readers: Alpaca (JSON array or JSONL), OpenAI / ShareGPT messages, prompt/response
// pairs, TRL prompt/completion pairs (plain or conversational), prompts-only sets (IFEval, MT-Bench /
// Vicuna questions), Alpaca seed tasks, and unlabeled text (JSONL text field, or a plain text file
// cut into segments). Every bad record is reported as FILE:LINE (plus the array index for JSON
// arrays); the config says whether to fail or skip and count. Nothing is left out silently: every
// record is tallied by shape and use (RecordShape), for the per-source report.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "models/chat_template.h"

namespace mt {

// One data source as the config names it. Field names default to the public datasets' spelling.
struct DataSourceConfig {
  // "alpaca" | "alpaca_seed" | "messages" | "prompt_response" | "prompt_completion" | "prompts" |
  // "mt_bench" (conversations); "text_jsonl" | "text" (unlabeled)
  // "auto": guessed from the first record (see detect_format).
  std::string format = "auto";
  std::filesystem::path path;

  std::string instruction_field = "instruction", input_field = "input", output_field = "output";
  std::string prompt_field = "prompt", response_field = "response";
  std::string completion_field = "completion";  // prompt_completion (TRL)
  std::string messages_field = "messages", role_field = "role", content_field = "content";
  std::string sharegpt_field = "conversations", sharegpt_role_field = "from", sharegpt_content_field = "value";
  std::string system_field = "system";        // optional per-record system prompt
  std::string turns_field = "turns";          // mt_bench: the user turns
  std::string instances_field = "instances";  // alpaca_seed: [{input, output}]
  std::string text_field = "text";            // text_jsonl
  std::string system_prompt;                  // added to conversations that have none ("" = none)
  // mt_bench: optional answers file (question_id, choices[0].turns) joined by question_id, which
  // turns those questions into full conversations; the others stay prompts-only.
  std::filesystem::path answers_path;

  // Unlabeled text segmentation, in Unicode characters (see split_text_segments).
  int64_t min_chars = 100, max_chars = 2000;

  // Examples of this source are synthetic (generated, not human-written): their target tokens get
  // loss-mask value 2 instead of 1, so that training.synthetic_weight can weight them apart.
  bool synthetic = false;

  std::string on_malformed = "fail";    // "fail" | "skip" (skip and count in DataStats)
  int64_t max_line_bytes = 16 << 20;    // longer JSONL/text lines are malformed records
  int64_t max_file_bytes = int64_t{4} << 30;  // JSON arrays and plain text are read whole
};

// How the records of one shape (the set of top-level keys) in one file were used: the per-source
// report that says which records became training conversations and which did not.
struct RecordShape {
  std::string file, format;
  std::string keys;            // "{a, b, c}", sorted
  int64_t records = 0;         // records of this shape
  int64_t trained = 0;         // of which gave training conversations (an assistant turn)
  int64_t prompts_only = 0;    // gave prompts-only conversations (generation only)
  int64_t empty = 0;           // gave only empty conversations (dropped)
  int64_t malformed = 0;       // malformed (an error under "fail", skipped under "skip")
  int64_t file_records = 0;    // records read from the file (all shapes)
  bool all_trained() const { return trained == records; }
  // "FILE: N of M records have keys {a, b}: read as FORMAT: K used for training, ..."; prefixed
  // "warning: " unless all_trained().
  std::string report() const;
};

// What happened to the records of one or more sources.
struct DataStats {
  int64_t read = 0;               // records read (JSONL lines, array elements, text paragraphs)
  int64_t conversations = 0;      // conversations / segments produced by the readers
  int64_t skipped_malformed = 0;  // bad records skipped under on_malformed = "skip"
  int64_t dropped_empty = 0;      // no non-blank user turn, or no non-blank response
  int64_t dropped_short = 0;      // text segments below min_chars
  int64_t prompts_only = 0;       // conversations with no response (generation only, not trained on)
  int64_t examples = 0;           // tokenized training examples kept
  int64_t truncated = 0;          // examples cut to max_len
  int64_t dropped_too_long = 0;   // examples whose prompt alone fills max_len (or too_long = "drop")
  int64_t tokens = 0;             // tokens in kept examples
  int64_t target_tokens = 0;      // of which loss-mask tokens
  int64_t max_tokens = 0;         // longest kept example
  std::vector<std::string> skipped_messages;  // the first few skip reasons, for the log
  std::vector<RecordShape> shapes;            // per source and shape (read_conversations), in read order

  void merge(const DataStats& other);
  nlohmann::json to_json() const;
  static DataStats from_json(const nlohmann::json& j);
  std::string summary() const;  // one line: "read 999, kept 990, skipped 2 malformed, ..."
};

// A conversation and where it came from ("FILE:LINE" or "FILE:LINE [element N]").
struct Conversation {
  std::vector<ChatMessage> messages;  // roles "system" | "user" | "assistant"
  std::string where;
  bool prompts_only = false;          // user turns without responses: usable for generation only
  // The first `context_messages` messages are context only: their assistant turns are not trained
  // on (TRL prompt/completion trains the completion alone, the prompt's earlier answers included).
  size_t context_messages = 0;
};

struct TextSegment {
  std::string text;
  std::string where;
};

bool is_unlabeled_format(const std::string& format);

// The format a file looks like, from its first record's keys ("text" for non-JSON files).
std::string detect_format(const std::filesystem::path& path);

// Reads a conversation format. Throws mt::Error naming the file (and line / element) on bad input
// under on_malformed = "fail"; under "skip" bad records are counted in stats. Missing files,
// directories, empty files and files with no usable record are errors under either policy.
std::vector<Conversation> read_conversations(const DataSourceConfig& config, DataStats* stats = nullptr);

// Reads an unlabeled format ("text_jsonl" or "text") into segments of min..max characters.
std::vector<TextSegment> read_text_segments(const DataSourceConfig& config, DataStats* stats = nullptr);

// The segmentation rule for unlabeled text (characters = Unicode code points; CRLF read as LF):
// paragraphs (separated by blank lines) are merged greedily, joined by "\n\n", while the segment
// stays within max_chars; a paragraph longer than max_chars is split into its lines, merged the same
// way with "\n"; a line longer than max_chars is cut at the last whitespace in its second half, or
// else at max_chars. Segments are trimmed; those shorter than min_chars are dropped (counted in
// *dropped_short when given).
std::vector<std::string> split_text_segments(const std::string& text, int64_t min_chars, int64_t max_chars,
                                             int64_t* dropped_short = nullptr);

// Byte offset of the first invalid UTF-8 sequence in s, or -1 when s is valid UTF-8.
int64_t find_invalid_utf8(const std::string& s);

}  // namespace mt
