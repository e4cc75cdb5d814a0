// The tokenized-dataset cache (trainer/data/token_cache.h): XXH64 against reference vectors; a second
// load neither tokenizes nor reads the sources; the key follows file contents and options; damaged
// caches (truncated, flipped bytes, bad header) are detected and rebuilt with a message;
// concurrent builders tokenize once and leftovers of a crashed build are never used.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "trainer/data/token_cache.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;

mt::TokenizedDataset small_dataset(uint32_t salt = 0) {
  mt::TokenizedDataset ds;
  ds.add({{1, 2, 3 + salt}, {0, 1, 1}});
  ds.add({{4, 5}, {0, 1}});
  ds.add({{6, 7, 8, 9}, {0, 0, 1, 1}});
  return ds;
}

bool same_data(const mt::DatasetView& a, const mt::DatasetView& b) {
  if (a.num_examples != b.num_examples || a.num_tokens() != b.num_tokens()) return false;
  for (int64_t i = 0; i <= a.num_examples; ++i)
    if (a.offsets[i] != b.offsets[i]) return false;
  for (int64_t t = 0; t < a.num_tokens(); ++t)
    if (a.tokens[t] != b.tokens[t] || a.masks[t] != b.masks[t]) return false;
  return true;
}

void flip_byte(const fs::path& file, std::streamoff at) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(at);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5A);
  f.seekp(at);
  f.write(&c, 1);
}

fs::path shared_llama3_tokenizer() { return mt::test::vocab_file("llama3"); }

}  // namespace

TEST_CASE("data: XXH64 matches the reference vectors, one-shot and streamed", "[data]") {
  auto h = [](const std::string& s, uint64_t seed = 0) { return mt::xxh64(s.data(), s.size(), seed); };
  CHECK(h("") == 0xEF46DB3751D8E999ull);
  CHECK(h("a") == 0xD24EC4F1A98C6E5Bull);
  CHECK(h("abc") == 0x44BC2CF5AD770999ull);
  CHECK(h("Nobody inspects the spammish repetition") == 0xFBCEA83C8A378BF1ull);           // 39 bytes: stripes
  CHECK(h("The quick brown fox jumps over the lazy dog") == 0x0B242D361FDA71BCull);
  CHECK(h("abcdefghijklmnopqrstuvwxyz12345") == 0x467605901B01D6F6ull);                    // 31 bytes: no stripe
  CHECK(h("a", 191961062) == 0x6E05BA2887C97977ull);
  // Streamed in pieces of every size gives the one-shot hash.
  std::string big;
  for (int i = 0; i < 1000; ++i) big += static_cast<char>((i * 131) & 0xFF);
  const uint64_t whole = h(big, 5);
  for (size_t piece : {1, 3, 7, 31, 32, 33, 100}) {
    mt::Xxh64 s(5);
    for (size_t at = 0; at < big.size(); at += piece) s.update(big.data() + at, std::min(piece, big.size() - at));
    CHECK(s.digest() == whole);
  }
  const fs::path dir = mt::test::temp_dir("xxh");
  mt::test::write_file(dir / "f", big);
  CHECK(mt::xxh64_file(dir / "f") == h(big));
  mt::test::require_error([&] { mt::xxh64_file(dir / "missing"); }, {"missing", "cannot open"});
  fs::remove_all(dir);
}

TEST_CASE("data: cache: the second load does not tokenize, and the key follows content and options", "[data]") {
  const fs::path root = mt::test::temp_dir("token_cache");
  int builds = 0;
  auto build = [&](mt::DataStats& stats) {
    ++builds;
    stats.examples = 3;
    return small_dataset();
  };
  std::vector<std::string> log;
  auto logger = [&](const std::string& m) { log.push_back(m); };
  const nlohmann::json material = {{"what", "test"}, {"max_len", 16}};
  auto a = mt::load_or_build_token_cache(root, material, build, logger);
  CHECK(builds == 1);
  CHECK(a.built_now);
  CHECK(same_data(a.view(), small_dataset().view()));
  auto b = mt::load_or_build_token_cache(root, material, build, logger);
  CHECK(builds == 1);
  CHECK(!b.built_now);
  CHECK(b.key == a.key);
  CHECK(b.stats.examples == 3);  // the build's stats come back from the header
  CHECK(same_data(b.view(), small_dataset().view()));
  REQUIRE(log.size() == 2);
  CHECK(log[1].find("loaded") != std::string::npos);
  // Layout: header, index, data; nothing temporary left behind.
  CHECK(fs::file_size(root / a.key / "data.bin") == 9 * 5);
  CHECK(fs::file_size(root / a.key / "index.bin") == 4 * 8);
  for (const auto& e : fs::directory_iterator(root)) CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
  // Another key material: another cache.
  auto c = mt::load_or_build_token_cache(root, {{"what", "test"}, {"max_len", 32}}, build, logger);
  CHECK(builds == 2);
  CHECK(c.key != a.key);
  CHECK(mt::cache_key(material) == a.key);
  CHECK(a.key.size() == 32);

  // Through the pipeline: sources + tokenizer + options. The key follows file content (not its
  // path or mtime) and every option; a hit never loads the tokenizer.
  const fs::path tok = shared_llama3_tokenizer();
  INFO("the LLaMA-3 tokenizer must be at " << tok.string());
  REQUIRE(fs::exists(tok));
  const fs::path data = root / "data.jsonl";
  fs::copy_file(mt::test::fixture("data") / "alpaca.jsonl", data);
  mt::DatasetSpec spec;
  mt::DataSourceConfig src;
  src.format = "alpaca";
  src.path = data;
  spec.sources = {src};
  spec.tokenizer = tok;
  spec.example.template_name = "llama3";
  spec.example.max_len = 64;
  spec.cache_dir = root / "cache";
  log.clear();
  auto first = mt::load_tokenized_dataset(spec, logger);
  CHECK(first.built_now);
  CHECK(first.view().num_examples == 3);
  CHECK(first.stats.examples == 3);
  auto second = mt::load_tokenized_dataset(spec, logger);
  CHECK(!second.built_now);
  CHECK(same_data(first.view(), second.view()));
  const auto key_of = [&](const mt::DatasetSpec& s) { return mt::cache_key(mt::dataset_key_material(s)); };
  // Moving the file keeps the key; changing one byte changes it.
  fs::rename(data, root / "moved.jsonl");
  mt::DatasetSpec moved = spec;
  moved.sources[0].path = root / "moved.jsonl";
  CHECK(key_of(moved) == first.key);
  std::string text = mt::test::read_file(root / "moved.jsonl");
  text[text.find("Bonjour")] = 'b';
  mt::test::write_file(root / "moved.jsonl", text);
  CHECK(key_of(moved) != first.key);
  mt::DatasetSpec other = spec;
  other.sources[0].path = root / "moved.jsonl";
  mt::test::write_file(root / "moved.jsonl", mt::test::read_file(mt::test::fixture("data") / "alpaca.jsonl"));
  CHECK(key_of(other) == first.key);
  other.example.max_len = 128;
  CHECK(key_of(other) != first.key);
  other = moved;
  other.example.train_on_prompt = true;
  CHECK(key_of(other) != first.key);
  other = moved;
  other.example.template_name = "chatml";
  CHECK(key_of(other) != first.key);
  other = moved;
  other.sources[0].system_prompt = "Be nice.";
  CHECK(key_of(other) != first.key);
  other = moved;
  other.tokenizer = mt::test::vocab_file("llama2");
  CHECK(key_of(other) != first.key);
  // A synthetic source has masks of value 2: a key of its own, and the same tokens with every
  // target (and only the targets) at 2.
  other = moved;
  other.sources[0].synthetic = true;
  CHECK(key_of(other) != first.key);
  {
    const auto syn = mt::load_tokenized_dataset(other, logger);
    const mt::DatasetView a = first.view(), s = syn.view();
    REQUIRE(s.num_tokens() == a.num_tokens());
    CHECK(std::equal(a.tokens, a.tokens + a.num_tokens(), s.tokens));
    int64_t twos = 0;
    for (int64_t t = 0; t < a.num_tokens(); ++t) {
      CHECK(s.masks[t] == (a.masks[t] != 0 ? mt::kMaskSyntheticTarget : 0));
      twos += s.masks[t] == 2;
    }
    CHECK(twos > 0);
    CHECK(syn.stats.target_tokens == first.stats.target_tokens);  // still counted as targets
  }
  // A miss on a source that is gone is an error naming it.
  other = moved;
  other.sources[0].path = root / "gone.jsonl";
  mt::test::require_error([&] { mt::load_tokenized_dataset(other, logger); }, {"gone.jsonl", "no such file"});
  std::filesystem::create_directories(root / "adir.jsonl");  // a directory is said as such, not "no such file"
  other.sources[0].path = root / "adir.jsonl";
  mt::test::require_error([&] { mt::load_tokenized_dataset(other, logger); }, {"adir.jsonl", "it is a directory"});
  fs::remove_all(root);
}

TEST_CASE("data: cache: damaged caches are detected and rebuilt with a message, never trusted", "[data]") {
  const fs::path root = mt::test::temp_dir("token_cache_damage");
  const nlohmann::json material = {{"what", "damage"}};
  int builds = 0;
  auto build = [&](mt::DataStats&) {
    ++builds;
    return small_dataset();
  };
  std::vector<std::string> log;
  auto logger = [&](const std::string& m) { log.push_back(m); };
  const std::string key = mt::load_or_build_token_cache(root, material, build, logger).key;
  const fs::path dir = root / key;

  struct Damage {
    const char* name;
    std::function<void()> apply;
    const char* reason;
  };
  const std::vector<Damage> damages = {
      {"truncated data", [&] { fs::resize_file(dir / "data.bin", 20); }, "data.bin: 20 bytes, the header says 45"},
      {"longer index", [&] { fs::resize_file(dir / "index.bin", 40); }, "index.bin: 40 bytes"},
      {"flipped index byte", [&] { flip_byte(dir / "index.bin", 9); }, "index.bin: checksum"},
      // Passes every cheap check (sizes, offsets): only the data checksum, verified at each load, sees it.
      {"flipped token byte", [&] { flip_byte(dir / "data.bin", 5); }, "data.bin: checksum"},
      {"flipped mask byte", [&] { flip_byte(dir / "data.bin", 42); }, "data.bin: checksum"},
      {"missing index", [&] { fs::remove(dir / "index.bin"); }, "index.bin: cannot open"},
      {"garbage header", [&] { mt::test::write_file(dir / "header.json", "{\"format\": \"maint"); }, "invalid JSON"},
      {"missing header", [&] { fs::remove(dir / "header.json"); }, "header.json: missing"},
      {"other version", [&] {
         auto h = nlohmann::json::parse(mt::test::read_file(dir / "header.json"));
         h["version"] = 99;
         mt::test::write_file(dir / "header.json", h.dump());
       }, "cache version 99"},
      {"other key", [&] {
         auto h = nlohmann::json::parse(mt::test::read_file(dir / "header.json"));
         h["key"] = "0123";
         mt::test::write_file(dir / "header.json", h.dump());
       }, "key 0123 does not match"},
      {"header lies about counts", [&] {
         auto h = nlohmann::json::parse(mt::test::read_file(dir / "header.json"));
         h["num_tokens"] = 1000000;
         mt::test::write_file(dir / "header.json", h.dump());
       }, "the header says 5000000"},
  };
  for (const auto& d : damages) {
    INFO(d.name);
    d.apply();
    log.clear();
    const int before = builds;
    auto c = mt::load_or_build_token_cache(root, material, build, logger);
    CHECK(builds == before + 1);
    CHECK(c.built_now);
    CHECK(same_data(c.view(), small_dataset().view()));
    REQUIRE(!log.empty());
    CHECK(log[0].find("damaged") != std::string::npos);
    CHECK(log[0].find(d.reason) != std::string::npos);
    CHECK(log[0].find("rebuilding") != std::string::npos);
  }
  // A flipped token byte passes the cheap checks; verify_data finds it.
  flip_byte(dir / "data.bin", 5);
  CHECK_NOTHROW(mt::open_token_cache(dir, key));
  mt::test::require_error([&] { mt::open_token_cache(dir, key, /*verify_data=*/true); }, {"data.bin: checksum"});
  // Nothing but the cache and its lock file remain.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(root)) {
    ++entries;
    CHECK((e.path().filename() == key || e.path().filename() == key + ".lock"));
  }
  CHECK(entries == 2);
  fs::remove_all(root);
}

TEST_CASE("data: cache: concurrent builders tokenize once, a crashed build's leftovers are ignored", "[data]") {
  const fs::path root = mt::test::temp_dir("token_cache_race");
  const nlohmann::json material = {{"what", "race"}};
  const std::string key = mt::cache_key(material);
  // A half-written temporary directory from a build that died: never read, removed by the next builder.
  fs::create_directories(root / (key + ".tmp-999-dead"));
  mt::test::write_file(root / (key + ".tmp-999-dead") / "data.bin", "partial");
  std::atomic<int> builds{0};
  auto build = [&](mt::DataStats&) {
    ++builds;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // widen the race window
    return small_dataset(7);
  };
  std::vector<mt::TokenCache> got(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] { got[i] = mt::load_or_build_token_cache(root, material, build, [](const std::string&) {}); });
  for (auto& t : threads) t.join();
  CHECK(builds.load() == 1);
  for (const auto& c : got) CHECK(same_data(c.view(), small_dataset(7).view()));
  CHECK(!fs::exists(root / (key + ".tmp-999-dead")));

  // A writer that loses the rename race keeps the winner's cache and cleans up its own copy.
  mt::write_token_cache(root / key, key, material, small_dataset(9), {});
  CHECK(same_data(mt::open_token_cache(root / key, key).view(), small_dataset(7).view()));
  mt::test::require_error([&] { mt::write_token_cache(root / "empty", "k", material, mt::TokenizedDataset{}, {}); },
                          {"no examples"});
  int entries = 0;
  for (const auto& e : fs::directory_iterator(root)) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 2);  // the cache and its lock
  fs::remove_all(root);
}
