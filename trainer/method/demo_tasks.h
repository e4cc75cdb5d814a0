// The verifiable instruction suite of the embedded MAIN demo: ten small task families (reverse a
// word, sort numbers, add, count letters, capitals, ...) written through several paraphrased
// templates, generated from a seed by a fixed integer recipe (identical on every machine), and a
// checker that parses any instruction of the suite and says whether a response answers it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mt {

struct DemoPair {
  std::string instruction;  // "" for noise responses (no instruction of the suite yields them)
  std::string response;
  std::string family;       // task family name, or "noise"
};

struct DemoSuiteOptions {
  uint64_t seed = 0;
  int64_t seed_pairs = 300;    // labeled pairs
  int64_t unlabeled = 3000;    // unlabeled responses (their instructions are kept only as ground truth)
  double noise_fraction = 0.2; // fraction of unlabeled responses that no instruction produces
  int64_t eval_pairs = 200;    // held-out pairs; no eval instruction equals a seed instruction
};

struct DemoSuite {
  std::vector<DemoPair> seed, unlabeled, eval;
};

// Each split deals its families evenly (counts differ by at most one) in a random order; templates
// and arguments are drawn uniformly. Noise responses (llround(noise_fraction * unlabeled) of them,
// at random positions) have shapes that no family answers with: two to four lowercase words joined
// by spaces, or three to five numbers joined by single spaces (lists of the suite use ", ").
// Eval instructions are distinct from each other and from every seed instruction.
// Throws mt::Error on bad options (negative or huge counts, noise_fraction outside [0, 1]), or when
// the seed pairs leave too few unseen instructions for the eval split.
DemoSuite make_demo_suite(const DemoSuiteOptions& options);

std::vector<std::string> demo_task_families();

// One instruction template, e.g. {"reverse", "Reverse the word {word}."}. Slots: {word} (a
// lowercase word), {letter}, {number} (0..99, or 0..49 in arithmetic), {numbers} (3 to 5 numbers
// joined by ", "), {country}, {object}, {term} (keys of the family's table).
struct DemoTemplate {
  std::string family, pattern;
};
std::vector<DemoTemplate> demo_task_templates();

// The response the instruction asks for when it parses as one of the suite's paraphrased tasks
// (whitespace-trimmed, case-sensitive templates), else nullopt. Arguments must lie in the suite's
// domain: words are 1 to 20 lowercase ASCII letters, numbers canonical decimals in the family's
// range, table keys exactly as the tables spell them. Never throws (short of memory), whatever
// the bytes.
std::optional<std::string> solve_demo_instruction(const std::string& instruction);

// True when the instruction parses and its answer equals the response (both trimmed of
// surrounding whitespace).
bool check_demo_pair(const std::string& instruction, const std::string& response);

}  // namespace mt
