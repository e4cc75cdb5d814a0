// The demo task suite (see demo_tasks.h): one table of templates, each a pattern with typed slots
// and a function that answers it. The same patterns drive generation (draw slot values, fill them
// in) and checking (match the literal text between slots, parse the slot values, answer).
#include "trainer/method/demo_tasks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "models/error.h"
#include "trainer/base/random.h"

namespace mt {

namespace {

// ---- randomness: splitmix64 and unbiased bounded draws only (same output everywhere) ----------

struct Rng {
  uint64_t state;

  uint64_t below(uint64_t bound) { return bounded_draw(state, bound); }
  int between(int lo, int hi) { return lo + static_cast<int>(below(static_cast<uint64_t>(hi - lo + 1))); }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }
};

// Each split draws from its own stream, so that e.g. asking for more eval pairs leaves the seed
// pairs as they were.
Rng stream_rng(uint64_t seed, uint64_t stream) {
  uint64_t s = seed;
  uint64_t mixed = splitmix64(s) ^ (stream * 0xD1B54A32D192ED03ull);
  return Rng{splitmix64(mixed)};
}

template <typename T>
void shuffle_in_place(std::vector<T>& v, Rng& rng) {  // Fisher-Yates
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

// ---- the suite's vocabulary ------------------------------------------------------------------

const std::vector<std::string>& words() {
  static const std::vector<std::string> w = {
      "cat",    "dog",    "sun",    "tree",   "book",   "fish",   "bird",   "milk",   "rain",   "star",
      "moon",   "door",   "ship",   "lamp",   "cake",   "river",  "green",  "happy",  "water",  "house",
      "table",  "chair",  "plant",  "bread",  "cloud",  "stone",  "light",  "music",  "paper",  "horse",
      "mouse",  "tiger",  "zebra",  "lemon",  "grape",  "pencil", "garden", "window", "planet", "rocket",
      "silver", "orange", "yellow", "purple", "summer", "winter", "bottle", "candle", "basket", "jacket",
      "kitten", "monkey", "dragon", "forest", "island", "marble", "pocket", "rabbit", "turtle", "violin"};
  return w;
}

using Table = std::vector<std::pair<std::string, std::string>>;  // key -> answer

const Table& capitals() {
  static const Table t = {{"France", "Paris"},      {"Germany", "Berlin"},  {"Italy", "Rome"},
                          {"Spain", "Madrid"},      {"Japan", "Tokyo"},     {"Egypt", "Cairo"},
                          {"Canada", "Ottawa"},     {"Russia", "Moscow"},   {"China", "Beijing"},
                          {"India", "New Delhi"},   {"Kenya", "Nairobi"},   {"Peru", "Lima"},
                          {"Greece", "Athens"},     {"Norway", "Oslo"},     {"Argentina", "Buenos Aires"},
                          {"Portugal", "Lisbon"}};
  return t;
}

const Table& colors() {  // keys carry their article so that templates read naturally
  static const Table t = {{"a banana", "yellow"}, {"a lemon", "yellow"},   {"a tomato", "red"},
                          {"a cherry", "red"},    {"a strawberry", "red"}, {"a lime", "green"},
                          {"a cucumber", "green"}, {"a frog", "green"},    {"a carrot", "orange"},
                          {"a pumpkin", "orange"}, {"an eggplant", "purple"}, {"a crow", "black"},
                          {"coal", "black"},      {"snow", "white"},       {"milk", "white"},
                          {"the sky", "blue"}};
  return t;
}

const Table& opposites() {  // both directions of each pair
  static const Table t = [] {
    const std::vector<std::pair<std::string, std::string>> pairs = {
        {"hot", "cold"},   {"big", "small"}, {"up", "down"},    {"fast", "slow"},  {"day", "night"},
        {"happy", "sad"},  {"open", "closed"}, {"light", "dark"}, {"full", "empty"}, {"early", "late"},
        {"wet", "dry"},    {"hard", "soft"}, {"loud", "quiet"}, {"left", "right"}, {"win", "lose"}};
    Table both;
    for (const auto& [a, b] : pairs) {
      both.emplace_back(a, b);
      both.emplace_back(b, a);
    }
    return both;
  }();
  return t;
}

// ---- templates -------------------------------------------------------------------------------

enum class Slot { kLiteral, kWord, kLetter, kNumber, kNumbers, kKey };

struct Piece {
  Slot kind;
  std::string literal;  // kLiteral only
};

struct Args {
  std::string word;
  char letter = 'a';
  std::vector<int> numbers;  // the {number} slots, in pattern order
  std::vector<int> list;     // the {numbers} slot
  std::string key;
};

using Answer = std::optional<std::string> (*)(const Args&, const Table*);

struct Template {
  std::string family, pattern;
  const Table* table = nullptr;  // for the key slot
  int max_number = 99;           // {number} and {numbers} values lie in [0, max_number]
  Answer answer;                 // nullopt: the arguments lie outside the task's domain
  std::vector<Piece> pieces;
};

constexpr size_t kMaxWordLetters = 20;
constexpr size_t kMinList = 3, kMaxList = 5;

std::vector<Piece> parse_pattern(const std::string& pattern) {
  std::vector<Piece> pieces;
  size_t pos = 0;
  while (pos < pattern.size()) {
    const size_t open = pattern.find('{', pos);
    if (open != pos) {
      pieces.push_back({Slot::kLiteral, pattern.substr(pos, open - pos)});
      if (open == std::string::npos) break;
    }
    const size_t close = pattern.find('}', open);
    const std::string name = pattern.substr(open + 1, close - open - 1);
    Slot kind = Slot::kKey;  // {country}, {object}, {term}
    if (name == "word") kind = Slot::kWord;
    else if (name == "letter") kind = Slot::kLetter;
    else if (name == "number") kind = Slot::kNumber;
    else if (name == "numbers") kind = Slot::kNumbers;
    pieces.push_back({kind, ""});
    pos = close + 1;
  }
  return pieces;
}

std::string join_numbers(const std::vector<int>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + std::to_string(v[i]);
  return out;
}

std::optional<std::string> lookup(const Table& table, const std::string& key) {
  for (const auto& [k, v] : table)
    if (k == key) return v;
  return std::nullopt;
}

std::optional<std::string> reversed(const Args& a, const Table*) { return std::string(a.word.rbegin(), a.word.rend()); }
std::optional<std::string> uppercased(const Args& a, const Table*) {
  std::string s = a.word;
  for (char& c : s) c = static_cast<char>(c - 'a' + 'A');  // words are a-z only
  return s;
}
std::optional<std::string> ascending(const Args& a, const Table*) {
  std::vector<int> v = a.list;
  std::sort(v.begin(), v.end());
  return join_numbers(v, ", ");
}
std::optional<std::string> descending(const Args& a, const Table*) {
  std::vector<int> v = a.list;
  std::sort(v.rbegin(), v.rend());
  return join_numbers(v, ", ");
}
std::optional<std::string> sum(const Args& a, const Table*) { return std::to_string(a.numbers[0] + a.numbers[1]); }
// Subtraction stays in the non-negative numbers: "What is 3 minus 7?" is not a task of the suite.
std::optional<std::string> difference(const Args& a, const Table*) {
  if (a.numbers[0] < a.numbers[1]) return std::nullopt;
  return std::to_string(a.numbers[0] - a.numbers[1]);
}
std::optional<std::string> subtract_from(const Args& a, const Table*) {  // "Subtract A from B" = B - A
  if (a.numbers[1] < a.numbers[0]) return std::nullopt;
  return std::to_string(a.numbers[1] - a.numbers[0]);
}
std::optional<std::string> length(const Args& a, const Table*) { return std::to_string(a.word.size()); }
std::optional<std::string> letter_count(const Args& a, const Table*) {
  return std::to_string(std::count(a.word.begin(), a.word.end(), a.letter));
}
std::optional<std::string> table_value(const Args& a, const Table* t) { return lookup(*t, a.key); }
std::optional<std::string> successor(const Args& a, const Table*) { return std::to_string(a.numbers[0] + 1); }
std::optional<std::string> predecessor(const Args& a, const Table*) {
  if (a.numbers[0] == 0) return std::nullopt;
  return std::to_string(a.numbers[0] - 1);
}
std::optional<std::string> largest(const Args& a, const Table*) {
  return std::to_string(*std::max_element(a.list.begin(), a.list.end()));
}
std::optional<std::string> smallest(const Args& a, const Table*) {
  return std::to_string(*std::min_element(a.list.begin(), a.list.end()));
}

const std::vector<std::string>& families() {
  static const std::vector<std::string> f = {"reverse", "sort",     "arithmetic", "count",           "uppercase",
                                             "capital", "color",    "opposite",   "adjacent_number", "min_max"};
  return f;
}

// Every template, grouped by family in families() order. A word, number or list slot is read
// greedily, so the literal after it never starts with a character the slot could take.
const std::vector<Template>& templates() {
  static const std::vector<Template> all = [] {
    std::vector<Template> t = {
        {"reverse", "Reverse the word {word}.", nullptr, 99, reversed, {}},
        {"reverse", "Write {word} backwards.", nullptr, 99, reversed, {}},
        {"reverse", "Spell {word} in reverse order.", nullptr, 99, reversed, {}},
        {"reverse", "What is {word} spelled backwards?", nullptr, 99, reversed, {}},

        {"sort", "Sort these numbers in ascending order: {numbers}", nullptr, 99, ascending, {}},
        {"sort", "Arrange from smallest to largest: {numbers}", nullptr, 99, ascending, {}},
        {"sort", "Put these numbers in increasing order: {numbers}", nullptr, 99, ascending, {}},
        {"sort", "Sort these numbers in descending order: {numbers}", nullptr, 99, descending, {}},
        {"sort", "Arrange from largest to smallest: {numbers}", nullptr, 99, descending, {}},

        {"arithmetic", "What is {number} plus {number}?", nullptr, 49, sum, {}},
        {"arithmetic", "Add {number} and {number}.", nullptr, 49, sum, {}},
        {"arithmetic", "Compute {number} + {number}.", nullptr, 49, sum, {}},
        {"arithmetic", "What is {number} minus {number}?", nullptr, 49, difference, {}},
        {"arithmetic", "Subtract {number} from {number}.", nullptr, 49, subtract_from, {}},

        {"count", "How many letters are in the word {word}?", nullptr, 99, length, {}},
        {"count", "Count the letters in {word}.", nullptr, 99, length, {}},
        {"count", "How many times does the letter {letter} appear in {word}?", nullptr, 99, letter_count, {}},
        {"count", "Count how many times {letter} occurs in the word {word}.", nullptr, 99, letter_count, {}},

        {"uppercase", "Write {word} in uppercase.", nullptr, 99, uppercased, {}},
        {"uppercase", "Convert {word} to capital letters.", nullptr, 99, uppercased, {}},
        {"uppercase", "Uppercase the word {word}.", nullptr, 99, uppercased, {}},
        {"uppercase", "What is {word} in all caps?", nullptr, 99, uppercased, {}},

        {"capital", "What is the capital of {country}?", &capitals(), 99, table_value, {}},
        {"capital", "Name the capital city of {country}.", &capitals(), 99, table_value, {}},
        {"capital", "Which city is the capital of {country}?", &capitals(), 99, table_value, {}},
        {"capital", "{country}'s capital is which city?", &capitals(), 99, table_value, {}},

        {"color", "What color is {object}?", &colors(), 99, table_value, {}},
        {"color", "What is the color of {object}?", &colors(), 99, table_value, {}},
        {"color", "Name the color of {object}.", &colors(), 99, table_value, {}},
        {"color", "Tell me what color {object} is.", &colors(), 99, table_value, {}},

        {"opposite", "What is the opposite of {term}?", &opposites(), 99, table_value, {}},
        {"opposite", "Give the opposite of the word {term}.", &opposites(), 99, table_value, {}},
        {"opposite", "Name a word that means the opposite of {term}.", &opposites(), 99, table_value, {}},
        {"opposite", "What is the antonym of {term}?", &opposites(), 99, table_value, {}},

        {"adjacent_number", "What number comes after {number}?", nullptr, 99, successor, {}},
        {"adjacent_number", "What is one more than {number}?", nullptr, 99, successor, {}},
        {"adjacent_number", "What number comes before {number}?", nullptr, 99, predecessor, {}},
        {"adjacent_number", "What is one less than {number}?", nullptr, 99, predecessor, {}},

        {"min_max", "What is the largest of {numbers}?", nullptr, 99, largest, {}},
        {"min_max", "Find the maximum of {numbers}.", nullptr, 99, largest, {}},
        {"min_max", "What is the smallest of {numbers}?", nullptr, 99, smallest, {}},
        {"min_max", "Find the minimum of {numbers}.", nullptr, 99, smallest, {}},
    };
    for (auto& tmpl : t) tmpl.pieces = parse_pattern(tmpl.pattern);
    return t;
  }();
  return all;
}

// Indices into templates() per family, in families() order.
const std::vector<std::vector<size_t>>& templates_by_family() {
  static const std::vector<std::vector<size_t>> by = [] {
    std::vector<std::vector<size_t>> b(families().size());
    for (size_t i = 0; i < templates().size(); ++i) {
      const auto f = std::find(families().begin(), families().end(), templates()[i].family);
      b[static_cast<size_t>(f - families().begin())].push_back(i);
    }
    return b;
  }();
  return by;
}

bool has_slot(const Template& t, Slot kind) {
  return std::any_of(t.pieces.begin(), t.pieces.end(), [&](const Piece& p) { return p.kind == kind; });
}

// ---- generation ------------------------------------------------------------------------------

Args draw_args(const Template& t, Rng& rng) {
  Args a;
  if (has_slot(t, Slot::kWord)) a.word = rng.pick(words());
  if (has_slot(t, Slot::kLetter)) {
    // Half the time a letter of the word, so that counts are not almost always 0.
    a.letter = (!a.word.empty() && rng.below(2) == 0) ? a.word[rng.below(a.word.size())]
                                                      : static_cast<char>('a' + rng.below(26));
  }
  for (const Piece& p : t.pieces)
    if (p.kind == Slot::kNumber) a.numbers.push_back(rng.between(0, t.max_number));
  if (has_slot(t, Slot::kNumbers)) {
    const int n = rng.between(static_cast<int>(kMinList), static_cast<int>(kMaxList));
    while (static_cast<int>(a.list.size()) < n) {  // distinct values, so the order is unambiguous
      const int v = rng.between(0, t.max_number);
      if (std::find(a.list.begin(), a.list.end(), v) == a.list.end()) a.list.push_back(v);
    }
  }
  if (t.table != nullptr) a.key = rng.pick(*t.table).first;
  return a;
}

std::string fill(const Template& t, const Args& a) {
  std::string out;
  size_t next_number = 0;
  for (const Piece& p : t.pieces) {
    switch (p.kind) {
      case Slot::kLiteral: out += p.literal; break;
      case Slot::kWord: out += a.word; break;
      case Slot::kLetter: out += a.letter; break;
      case Slot::kNumber: out += std::to_string(a.numbers[next_number++]); break;
      case Slot::kNumbers: out += join_numbers(a.list, ", "); break;
      case Slot::kKey: out += a.key; break;
    }
  }
  return out;
}

// A random task of the family: a uniform template, arguments redrawn until inside its domain.
DemoPair draw_pair(size_t family, Rng& rng) {
  const Template& t = templates()[rng.pick(templates_by_family()[family])];
  for (;;) {
    const Args a = draw_args(t, rng);
    if (auto answer = t.answer(a, t.table)) return {fill(t, a), std::move(*answer), t.family};
  }
}

// A response no instruction of the suite yields. Every answer of the suite is one lowercase word,
// one uppercase word, one integer, a ", "-joined list of integers, or a capital city (capitalized
// words); noise is two to four lowercase words joined by spaces, or three to five integers joined
// by single spaces (made neither ascending nor descending too, so it does not even look sorted).
std::string noise_response(Rng& rng) {
  if (rng.below(2) == 0) {
    const int n = rng.between(2, 4);
    std::string out;
    for (int i = 0; i < n; ++i) out += (i ? " " : "") + rng.pick(words());
    return out;
  }
  for (;;) {
    std::vector<int> v(static_cast<size_t>(rng.between(3, 5)));
    for (int& x : v) x = rng.between(0, 99);
    if (!std::is_sorted(v.begin(), v.end()) && !std::is_sorted(v.rbegin(), v.rend())) return join_numbers(v, " ");
  }
}

// n family indices, each family n / F or n / F + 1 times, in random order.
std::vector<size_t> deal_families(int64_t n, Rng& rng) {
  std::vector<size_t> f(static_cast<size_t>(n));
  for (size_t i = 0; i < f.size(); ++i) f[i] = i % families().size();
  shuffle_in_place(f, rng);
  return f;
}

constexpr int64_t kMaxCount = 10'000'000;  // per split; beyond it is a typo, not a demo

// ---- parsing ---------------------------------------------------------------------------------

bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A canonical decimal of one or two digits at `pos`: the whole digit run, so "123" is no number of
// the suite rather than 12 followed by 3, and "07" is refused.
bool read_number(std::string_view s, size_t& pos, int& value) {
  size_t end = pos;
  while (end < s.size() && is_digit(s[end])) {
    if (end - pos == 2) return false;
    ++end;
  }
  if (end == pos || (s[pos] == '0' && end - pos > 1)) return false;
  value = 0;
  for (size_t i = pos; i < end; ++i) value = value * 10 + (s[i] - '0');
  pos = end;
  return true;
}

// Matches pieces[k..] against s[pos..]; only key slots (which may hold spaces) try alternatives.
std::optional<Args> match(const Template& t, size_t k, std::string_view s, size_t pos, Args a) {
  if (k == t.pieces.size()) return pos == s.size() ? std::optional<Args>(std::move(a)) : std::nullopt;
  const Piece& p = t.pieces[k];
  switch (p.kind) {
    case Slot::kLiteral:
      if (s.substr(pos, p.literal.size()) != p.literal) return std::nullopt;
      return match(t, k + 1, s, pos + p.literal.size(), std::move(a));
    case Slot::kWord: {
      size_t end = pos;
      while (end < s.size() && is_lower(s[end])) {
        if (end - pos == kMaxWordLetters) return std::nullopt;
        ++end;
      }
      if (end == pos) return std::nullopt;
      a.word = std::string(s.substr(pos, end - pos));
      return match(t, k + 1, s, end, std::move(a));
    }
    case Slot::kLetter:
      if (pos >= s.size() || !is_lower(s[pos])) return std::nullopt;
      a.letter = s[pos];
      return match(t, k + 1, s, pos + 1, std::move(a));
    case Slot::kNumber: {
      int v = 0;
      if (!read_number(s, pos, v) || v > t.max_number) return std::nullopt;
      a.numbers.push_back(v);
      return match(t, k + 1, s, pos, std::move(a));
    }
    case Slot::kNumbers: {
      for (;;) {
        int v = 0;
        if (!read_number(s, pos, v) || v > t.max_number) return std::nullopt;
        a.list.push_back(v);
        const bool more = s.substr(pos, 2) == ", " && pos + 2 < s.size() && is_digit(s[pos + 2]);
        if (!more) break;
        if (a.list.size() == kMaxList) return std::nullopt;
        pos += 2;
      }
      if (a.list.size() < kMinList) return std::nullopt;
      return match(t, k + 1, s, pos, std::move(a));
    }
    case Slot::kKey:
      for (const auto& entry : *t.table) {
        if (s.substr(pos, entry.first.size()) != entry.first) continue;
        Args with_key = a;
        with_key.key = entry.first;
        if (auto m = match(t, k + 1, s, pos + entry.first.size(), std::move(with_key))) return m;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

std::vector<std::string> demo_task_families() { return families(); }

std::vector<DemoTemplate> demo_task_templates() {
  std::vector<DemoTemplate> out;
  for (const Template& t : templates()) out.push_back({t.family, t.pattern});
  return out;
}

std::optional<std::string> solve_demo_instruction(const std::string& instruction) {
  const std::string_view s = trim(instruction);
  for (const Template& t : templates())
    if (auto args = match(t, 0, s, 0, Args{})) return t.answer(*args, t.table);
  return std::nullopt;
}

bool check_demo_pair(const std::string& instruction, const std::string& response) {
  const auto answer = solve_demo_instruction(instruction);
  return answer && *answer == trim(response);
}

DemoSuite make_demo_suite(const DemoSuiteOptions& o) {
  const std::pair<const char*, int64_t> counts[] = {
      {"seed_pairs", o.seed_pairs}, {"unlabeled", o.unlabeled}, {"eval_pairs", o.eval_pairs}};
  for (const auto& [name, n] : counts)
    if (n < 0 || n > kMaxCount)
      throw Error(fmt::format("demo suite: {} = {} is outside [0, {}]", name, n, kMaxCount));
  if (!(o.noise_fraction >= 0.0 && o.noise_fraction <= 1.0))  // also refuses NaN
    throw Error(fmt::format("demo suite: noise_fraction = {} is outside [0, 1]", o.noise_fraction));

  DemoSuite suite;
  // Seed pairs: distinct instructions while a family has fresh ones within a few draws (a small
  // family like capitals repeats once seed_pairs is large).
  Rng seed_rng = stream_rng(o.seed, 1);
  std::unordered_set<std::string> seed_instructions;
  for (size_t f : deal_families(o.seed_pairs, seed_rng)) {
    DemoPair pair = draw_pair(f, seed_rng);
    for (int attempt = 0; attempt < 64 && seed_instructions.count(pair.instruction); ++attempt)
      pair = draw_pair(f, seed_rng);
    seed_instructions.insert(pair.instruction);
    suite.seed.push_back(std::move(pair));
  }

  // Unlabeled: fresh random tasks (repeats allowed), noise at random positions.
  Rng unlabeled_rng = stream_rng(o.seed, 2);
  const auto noise = static_cast<int64_t>(std::llround(o.noise_fraction * static_cast<double>(o.unlabeled)));
  std::vector<uint8_t> is_noise(static_cast<size_t>(o.unlabeled), 0);
  std::fill(is_noise.begin(), is_noise.begin() + noise, 1);
  shuffle_in_place(is_noise, unlabeled_rng);
  const std::vector<size_t> unlabeled_families = deal_families(o.unlabeled - noise, unlabeled_rng);
  size_t next_family = 0;
  for (uint8_t n : is_noise) {
    if (n) suite.unlabeled.push_back({"", noise_response(unlabeled_rng), "noise"});
    else suite.unlabeled.push_back(draw_pair(unlabeled_families[next_family++], unlabeled_rng));
  }

  // Eval: never a seed instruction (hard), and distinct from earlier eval pairs while that is easy.
  Rng eval_rng = stream_rng(o.seed, 3);
  std::unordered_set<std::string> eval_instructions;
  for (size_t f : deal_families(o.eval_pairs, eval_rng)) {
    constexpr int kAttempts = 100000;
    int attempt = 0;
    DemoPair pair;
    for (; attempt < kAttempts; ++attempt) {
      pair = draw_pair(f, eval_rng);
      if (seed_instructions.count(pair.instruction)) continue;
      if (attempt < 64 && eval_instructions.count(pair.instruction)) continue;
      break;
    }
    if (attempt == kAttempts)
      throw Error(fmt::format("demo suite: seed_pairs = {} leave no '{}' instruction unseen for the eval split; "
                              "use fewer seed pairs", o.seed_pairs, families()[f]));
    eval_instructions.insert(pair.instruction);
    suite.eval.push_back(std::move(pair));
  }
  return suite;
}

}  // namespace mt
