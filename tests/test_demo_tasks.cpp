// The demo task suite (trainer/method/demo_tasks.h): the suite is a fixed function of its options (pinned
// by a digest), splits have the requested sizes and balanced families, every generated pair checks
// and every family and template shows up, noise answers no instruction, mismatched pairs fail,
// garbage and out-of-domain instructions parse as nothing, and bad options are mt::Error.
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "trainer/data/data_loader.h"
#include "trainer/method/demo_tasks.h"
#include "tests/test_util.h"

namespace {

bool same_pairs(const std::vector<mt::DemoPair>& a, const std::vector<mt::DemoPair>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].instruction != b[i].instruction || a[i].response != b[i].response || a[i].family != b[i].family)
      return false;
  return true;
}

// FNV-1a over every field of every pair, splits separated.
uint64_t digest(const mt::DemoSuite& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto add = [&](const std::string& text) {
    for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull;
  };
  for (const auto* split : {&s.seed, &s.unlabeled, &s.eval}) {
    for (const auto& p : *split) {
      add(p.instruction);
      add(p.response);
      add(p.family);
    }
    add("|");
  }
  return h;
}

// Whether `instruction` has the literal text of `pattern` around its {slots}, in order.
bool fits_pattern(const std::string& instruction, const std::string& pattern) {
  std::vector<std::string> literals;
  size_t pos = 0;
  while (pos <= pattern.size()) {
    const size_t open = pattern.find('{', pos);
    literals.push_back(pattern.substr(pos, open == std::string::npos ? std::string::npos : open - pos));
    if (open == std::string::npos) break;
    pos = pattern.find('}', open) + 1;
  }
  if (instruction.compare(0, literals.front().size(), literals.front()) != 0) return false;
  const std::string& last = literals.back();
  if (instruction.size() < last.size() || instruction.compare(instruction.size() - last.size(), last.size(), last) != 0)
    return false;
  size_t at = literals.front().size();
  for (size_t i = 1; i + 1 < literals.size(); ++i) {
    at = instruction.find(literals[i], at);
    if (at == std::string::npos) return false;
    at += literals[i].size();
  }
  return at <= instruction.size() - last.size();
}

std::vector<const mt::DemoPair*> all_pairs(const mt::DemoSuite& s) {
  std::vector<const mt::DemoPair*> out;
  for (const auto* split : {&s.seed, &s.unlabeled, &s.eval})
    for (const auto& p : *split) out.push_back(&p);
  return out;
}

}  // namespace

TEST_CASE("demo tasks: the suite is a fixed function of its options", "[demo_tasks]") {
  mt::DemoSuiteOptions o;
  const mt::DemoSuite a = mt::make_demo_suite(o), b = mt::make_demo_suite(o);
  CHECK(same_pairs(a.seed, b.seed));
  CHECK(same_pairs(a.unlabeled, b.unlabeled));
  CHECK(same_pairs(a.eval, b.eval));
  // The recipe is integer-only (splitmix64 + Lemire draws): this digest is the same on every
  // machine and compiler; it changes only when the suite itself is changed on purpose.
  CHECK(digest(a) == 0x1d617318edc9ef6bull);
  CHECK(a.seed[0].instruction == "Name a word that means the opposite of loud.");
  CHECK(a.seed[0].response == "quiet");

  o.seed = 1;
  const mt::DemoSuite c = mt::make_demo_suite(o);
  CHECK_FALSE(same_pairs(a.seed, c.seed));
  CHECK_FALSE(same_pairs(a.unlabeled, c.unlabeled));
  CHECK_FALSE(same_pairs(a.eval, c.eval));

  // Each split has its own stream: more eval pairs leave the seed and unlabeled splits unchanged.
  o.seed = 0;
  o.eval_pairs = 50;
  const mt::DemoSuite d = mt::make_demo_suite(o);
  CHECK(same_pairs(a.seed, d.seed));
  CHECK(same_pairs(a.unlabeled, d.unlabeled));
}

TEST_CASE("demo tasks: split sizes, noise count and balanced families", "[demo_tasks]") {
  const auto families = mt::demo_task_families();
  REQUIRE(families.size() == 10);
  for (const auto& [seed_pairs, unlabeled, noise_fraction, eval_pairs] :
       std::vector<std::tuple<int64_t, int64_t, double, int64_t>>{
           {300, 3000, 0.2, 200}, {17, 101, 0.33, 9}, {0, 0, 0.5, 0}, {5, 40, 0.0, 3}, {5, 40, 1.0, 3}, {1, 7, 0.5, 1}}) {
    mt::DemoSuiteOptions o;
    o.seed = 7;
    o.seed_pairs = seed_pairs;
    o.unlabeled = unlabeled;
    o.noise_fraction = noise_fraction;
    o.eval_pairs = eval_pairs;
    INFO("seed_pairs " << seed_pairs << ", unlabeled " << unlabeled << ", noise " << noise_fraction);
    const mt::DemoSuite s = mt::make_demo_suite(o);
    CHECK(static_cast<int64_t>(s.seed.size()) == seed_pairs);
    CHECK(static_cast<int64_t>(s.unlabeled.size()) == unlabeled);
    CHECK(static_cast<int64_t>(s.eval.size()) == eval_pairs);

    int64_t noise = 0;
    for (const auto& p : s.unlabeled) {
      if (p.family != "noise") continue;
      ++noise;
      CHECK(p.instruction.empty());
    }
    CHECK(std::abs(static_cast<double>(noise) - noise_fraction * static_cast<double>(unlabeled)) <= 1.0);

    // Families dealt evenly: counts differ by at most one within each split.
    for (const auto* split : {&s.seed, &s.unlabeled, &s.eval}) {
      std::map<std::string, int64_t> count;
      int64_t tasks = 0;
      for (const auto& p : *split) {
        if (p.family == "noise") continue;
        ++count[p.family];
        ++tasks;
      }
      const auto n_families = static_cast<int64_t>(families.size());
      for (const auto& f : families) {
        INFO("family " << f);
        CHECK(count[f] >= tasks / n_families);
        CHECK(count[f] <= tasks / n_families + 1);
      }
      CHECK(count.size() == families.size());  // no family names outside the list
    }
  }
}

TEST_CASE("demo tasks: every generated pair checks, every family and template appears", "[demo_tasks]") {
  mt::DemoSuiteOptions o;
  o.seed = 3;
  const mt::DemoSuite s = mt::make_demo_suite(o);  // 3000 unlabeled
  const auto templates = mt::demo_task_templates();
  const auto families = mt::demo_task_families();
  std::map<std::string, int64_t> family_seen;
  std::vector<int64_t> template_seen(templates.size(), 0);
  for (const mt::DemoPair* p : all_pairs(s)) {
    if (p->family == "noise") continue;
    INFO(p->family << ": " << p->instruction << " -> " << p->response);
    REQUIRE(mt::check_demo_pair(p->instruction, p->response));
    CHECK(mt::solve_demo_instruction(p->instruction) == p->response);
    // Surrounding whitespace is ignored on both sides.
    CHECK(mt::check_demo_pair("  " + p->instruction + "\n", "\t" + p->response + " "));
    ++family_seen[p->family];
    bool fits_own = false;
    for (size_t t = 0; t < templates.size(); ++t) {
      if (!fits_pattern(p->instruction, templates[t].pattern)) continue;
      ++template_seen[t];
      fits_own = fits_own || templates[t].family == p->family;
    }
    CHECK(fits_own);
  }
  for (const auto& f : families) {
    INFO("family " << f);
    CHECK(family_seen[f] > 0);
    int64_t n_templates = 0;
    for (const auto& t : templates) n_templates += t.family == f;
    CHECK(n_templates >= 3);
    CHECK(n_templates <= 5);
  }
  for (size_t t = 0; t < templates.size(); ++t) {
    INFO("template " << templates[t].pattern);
    CHECK(template_seen[t] > 0);
  }
}

TEST_CASE("demo tasks: noise responses answer no instruction of the suite", "[demo_tasks]") {
  mt::DemoSuiteOptions o;
  o.seed = 11;
  const mt::DemoSuite s = mt::make_demo_suite(o);
  std::set<std::string> instructions, answers;
  for (const mt::DemoPair* p : all_pairs(s))
    if (p->family != "noise") instructions.insert(p->instruction);
  for (const auto& i : instructions) answers.insert(*mt::solve_demo_instruction(i));
  std::vector<std::string> noise;
  for (const auto& p : s.unlabeled)
    if (p.family == "noise") noise.push_back(p.response);
  REQUIRE(noise.size() == 600);
  bool words = false, numbers = false;
  for (const auto& r : noise) {
    INFO("noise: " << r);
    // The documented shapes: 2-4 lowercase words or 3-5 numbers, single spaces, no commas.
    CHECK(r.find(' ') != std::string::npos);
    CHECK(r.find(',') == std::string::npos);
    CHECK(r.find_first_not_of("abcdefghijklmnopqrstuvwxyz 0123456789") == std::string::npos);
    (r[0] >= '0' && r[0] <= '9' ? numbers : words) = true;
    // No instruction of the suite has it as its answer...
    CHECK(answers.count(r) == 0);
  }
  CHECK(words);
  CHECK(numbers);
  // ... and so check_demo_pair refuses it with any of them (a sample, checked directly).
  size_t k = 0;
  for (const auto& i : instructions) {
    if (++k > 300) break;
    for (size_t n = 0; n < 40; ++n) CHECK_FALSE(mt::check_demo_pair(i, noise[n]));
  }
}

TEST_CASE("demo tasks: mismatched pairs fail", "[demo_tasks]") {
  const mt::DemoSuite s = mt::make_demo_suite(mt::DemoSuiteOptions{});
  int64_t compared = 0;
  const auto& seed = s.seed;
  for (size_t i = 0; i < seed.size(); ++i) {
    for (size_t step : {1, 7, 31}) {
      const auto& other = seed[(i + step) % seed.size()];
      if (other.response == seed[i].response) continue;
      ++compared;
      INFO(seed[i].instruction << " with " << other.response);
      CHECK_FALSE(mt::check_demo_pair(seed[i].instruction, other.response));
    }
    CHECK_FALSE(mt::check_demo_pair(seed[i].instruction, ""));
    CHECK_FALSE(mt::check_demo_pair(seed[i].instruction, seed[i].response + "."));
    CHECK_FALSE(mt::check_demo_pair(seed[i].response, seed[i].instruction));
  }
  CHECK(compared > 800);
}

TEST_CASE("demo tasks: answers of hand-written instructions", "[demo_tasks]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Reverse the word cat.", "tac"},
      {"  What is stone spelled backwards?\n", "enots"},
      {"Sort these numbers in ascending order: 12, 5, 40", "5, 12, 40"},
      {"Arrange from largest to smallest: 3, 10, 7, 0, 99", "99, 10, 7, 3, 0"},
      {"What is 7 plus 5?", "12"},
      {"What is 49 plus 49?", "98"},
      {"Subtract 8 from 20.", "12"},
      {"What is 20 minus 20?", "0"},
      {"How many letters are in the word planet?", "6"},
      {"How many times does the letter s appear in grass?", "2"},
      {"Count how many times z occurs in the word cat.", "0"},
      {"Convert jacket to capital letters.", "JACKET"},
      {"What is the capital of Argentina?", "Buenos Aires"},
      {"India's capital is which city?", "New Delhi"},
      {"Tell me what color the sky is.", "blue"},
      {"What color is an eggplant?", "purple"},
      {"What is the antonym of closed?", "open"},
      {"What number comes after 99?", "100"},
      {"What is one less than 1?", "0"},
      {"Find the minimum of 30, 4, 18.", "4"},
  };
  for (const auto& [instruction, answer] : cases) {
    INFO(instruction);
    CHECK(mt::solve_demo_instruction(instruction) == answer);
    CHECK(mt::check_demo_pair(instruction, " " + answer + "\n"));
  }
}

TEST_CASE("demo tasks: garbage and out-of-domain instructions parse as nothing", "[demo_tasks]") {
  const std::vector<std::string> garbage = {
      "", " ", "\n\t", "Sort these numbers:", "Sort these numbers in ascending order:",
      "Sort these numbers in ascending order: ", "Sort these numbers in ascending order: 12, 5",
      "Sort these numbers in ascending order: 12, 5,", "Sort these numbers in ascending order: 12,5,40",
      "Sort these numbers in ascending order: 1, 2, 3, 4, 5, 6", "Sort these numbers in ascending order: 1, 2, 100",
      "Sort these numbers in ascending order: 1, 02, 3", "sort these numbers in ascending order: 1, 2, 3",
      "What is 7 plus 5", "What is 7 plus 5??", "What is 50 plus 1?", "What is 7 plus 999999999999999999999?",
      "What is -3 plus 5?", "What is 07 plus 5?", "What is 3 minus 7?", "Subtract 9 from 3.",
      "What is  7 plus 5?", "What number comes before 0?", "What number comes after 100?",
      "Reverse the word .", "Reverse the word Cat.", "Reverse the word cat", "Reverse the word cat dog.",
      "Reverse the word " + std::string(21, 'a') + ".", "Reverse the word " + std::string(1 << 20, 'a') + ".",
      "Reverse the word \xff\xfe.", "Reverse the word ca\xc3\xa9.", std::string("Reverse the word c\0t.", 21),
      "How many times does the letter ss appear in grass?", "How many times does the letter S appear in grass?",
      "What is the capital of Atlantis?", "What is the capital of france?", "what is the capital of France?",
      "What is the capital of France", "What is the capital of France?France?", "What color is banana?",
      "What color is a sky?", "What is the opposite of warm?", "What is the opposite of Hot?",
      "Find the maximum of 1, 2.", "Find the maximum of 1, 2, 3", "Tell me a joke.",
      "Reverse the word cat. Reverse the word dog.",
  };
  for (const auto& g : garbage) {
    INFO("instruction: " << g.substr(0, 80));
    CHECK_FALSE(mt::solve_demo_instruction(g).has_value());
    CHECK_FALSE(mt::check_demo_pair(g, ""));
  }

  // Every strict prefix of a generated instruction that ends in punctuation (the lists of the
  // sort family end in a number, so their prefixes can be shorter valid lists).
  const mt::DemoSuite s = mt::make_demo_suite(mt::DemoSuiteOptions{});
  for (const auto& p : s.seed) {
    if (p.family == "sort") continue;
    for (size_t n = 0; n < p.instruction.size(); ++n) {
      INFO("prefix: " << p.instruction.substr(0, n));
      CHECK_FALSE(mt::solve_demo_instruction(p.instruction.substr(0, n)).has_value());
    }
    CHECK_FALSE(mt::solve_demo_instruction(p.instruction + "x").has_value());
    CHECK_FALSE(mt::solve_demo_instruction("x" + p.instruction).has_value());
  }

  // Random bytes, alone and after a valid instruction's opening.
  uint64_t state = 12345;
  for (int round = 0; round < 20; ++round) {
    std::string bytes(10000, '\0');
    for (char& c : bytes) c = static_cast<char>(mt::splitmix64(state) & 0xff);
    CHECK_FALSE(mt::solve_demo_instruction(bytes).has_value());
    CHECK_FALSE(mt::solve_demo_instruction("What is the capital of " + bytes).has_value());
    CHECK_FALSE(mt::solve_demo_instruction("Sort these numbers in ascending order: 1, 2, 3" + bytes).has_value());
  }
}

TEST_CASE("demo tasks: eval instructions are never seed instructions", "[demo_tasks]") {
  for (uint64_t seed : {0, 1, 2}) {
    for (int64_t seed_pairs : {300, 550}) {  // 550 crowds the small families (capitals: 64 instructions)
      mt::DemoSuiteOptions o;
      o.seed = seed;
      o.seed_pairs = seed_pairs;
      const mt::DemoSuite s = mt::make_demo_suite(o);
      std::set<std::string> seed_instructions, eval_instructions;
      for (const auto& p : s.seed) seed_instructions.insert(p.instruction);
      for (const auto& p : s.eval) {
        CHECK(seed_instructions.count(p.instruction) == 0);
        eval_instructions.insert(p.instruction);
      }
      // With the default sizes there is room for distinct eval instructions too.
      if (seed_pairs == 300) CHECK(eval_instructions.size() == s.eval.size());
    }
  }
}

TEST_CASE("demo tasks: bad options are mt::Error", "[demo_tasks]") {
  auto with = [](auto change) {
    mt::DemoSuiteOptions o;
    change(o);
    return [o] { mt::make_demo_suite(o); };
  };
  mt::test::require_error(with([](auto& o) { o.seed_pairs = -1; }), {"seed_pairs", "-1"});
  mt::test::require_error(with([](auto& o) { o.unlabeled = -5; }), {"unlabeled", "-5"});
  mt::test::require_error(with([](auto& o) { o.eval_pairs = -1; }), {"eval_pairs"});
  mt::test::require_error(with([](auto& o) { o.unlabeled = int64_t{1} << 40; }), {"unlabeled"});
  mt::test::require_error(with([](auto& o) { o.noise_fraction = -0.1; }), {"noise_fraction"});
  mt::test::require_error(with([](auto& o) { o.noise_fraction = 1.5; }), {"noise_fraction"});
  mt::test::require_error(with([](auto& o) { o.noise_fraction = std::numeric_limits<double>::quiet_NaN(); }),
                          {"noise_fraction"});
  // The eval split cannot avoid every seed instruction once the seeds cover a whole family.
  mt::test::require_error(with([](auto& o) { o.seed_pairs = 20000; }), {"eval", "seed_pairs"});
}
