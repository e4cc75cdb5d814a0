// The bounded JSON parse (models/json_read.h) and every input path that goes through it: a 2M-deep
// value in a safetensors header, an index, config.json, generation_config.json, tokenizer.json,
// tokenizer_config.json and data records is refused quickly with the file (and line) named, not a
// stack overflow; duplicate keys and numbers beyond double are errors naming the place.
#include <chrono>
#include <random>

#include "models/checkpoint_dir.h"
#include "models/hf_config.h"
#include "models/json_read.h"
#include "models/safetensors.h"
#include "models/tokenizer.h"
#include "tests/catch_compat.h"
#include "tests/test_util.h"
#include "trainer/base/jsonl.h"
#include "trainer/data/data_formats.h"
#include "trainer/method/chunk_progress.h"
#include "trainer/method/run_layout.h"
#include "trainer/method/stage_record.h"

namespace fs = std::filesystem;
using nlohmann::json;
using mt::test::require_error;
using mt::test::TempDir;
using mt::test::write_file;

namespace {

constexpr size_t kHostile = 2'000'000;

std::string nested(size_t depth, const std::string& inner = "") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

// `text` with the quoted placeholder "@DEEP@" replaced by `value`.
std::string with_value(const json& j, const std::string& value) {
  std::string text = j.dump();
  const size_t at = text.find("\"@DEEP@\"");
  REQUIRE(at != std::string::npos);
  return text.replace(at, 8, value);
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

void write_safetensors(const fs::path& p, const std::string& header, size_t data_bytes) {
  write_file(p, le64(header.size()) + header + std::string(data_bytes, '\0'));
}

// fn must throw mt::Error naming every part, within a few seconds (no stack overflow, no slow path).
template <typename Fn>
void refused_quickly(Fn&& fn, std::initializer_list<std::string> parts) {
  const auto t0 = std::chrono::steady_clock::now();
  require_error(fn, parts);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(s < 5.0);
}

const std::string kTooDeep = "nested deeper than 512 levels";

// A random JSON value of bounded depth, for comparing with nlohmann's own parse.
json random_value(std::mt19937& rng, int depth) {
  const int kind = static_cast<int>(rng() % (depth > 0 ? 8 : 6));
  switch (kind) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: return static_cast<int64_t>(rng()) - (1ll << 31);
    case 3: return static_cast<uint64_t>(rng()) << 32 | rng();
    case 4: return std::ldexp(static_cast<double>(rng()), static_cast<int>(rng() % 200) - 100);
    case 5: return std::string(rng() % 5, static_cast<char>('a' + rng() % 26)) + "\xc3\xa9\n\"";
    case 6: {
      json a = json::array();
      for (size_t n = rng() % 4; n > 0; --n) a.push_back(random_value(rng, depth - 1));
      return a;
    }
    default: {
      json o = json::object();
      for (size_t n = rng() % 4; n > 0; --n) o["k" + std::to_string(rng() % 10)] = random_value(rng, depth - 1);
      return o;
    }
  }
}

}  // namespace

TEST_CASE("json_read: the same values as nlohmann's parse, for any document within the limits", "[json]") {
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const json v = random_value(rng, 6);
    const std::string text = v.dump(i % 2 == 0 ? -1 : 2);
    INFO(text);
    CHECK(mt::parse_json(text, "r.json") == json::parse(text));
    CHECK(mt::parse_json_or_discarded(text) == json::parse(text));
  }
}

TEST_CASE("json_read: depth is bounded, the offending byte and line are named", "[json]") {
  mt::JsonLimits limits;
  for (size_t depth : {size_t{1}, size_t{100}, limits.max_depth}) {
    const json j = mt::parse_json(nested(depth, "1"), "ok.json");
    size_t levels = 0;
    for (const json* p = &j; p->is_array(); p = &(*p)[0]) ++levels;
    CHECK(levels == depth);
  }
  const std::string prefix = "  ";
  const size_t byte = prefix.size() + limits.max_depth + 1;  // 1-based, of the first bracket too many
  require_error([&] { mt::parse_json(prefix + nested(limits.max_depth + 1), "deep.json"); },
                {"deep.json: JSON " + kTooDeep + " at byte " + std::to_string(byte)});
  // Objects count like arrays; brackets inside strings do not count.
  std::string objects;
  for (size_t i = 0; i < limits.max_depth; ++i) objects += "{\"[[\":";
  objects += "0" + std::string(limits.max_depth, '}');
  CHECK(mt::parse_json(objects, "o.json").is_object());
  require_error([&] { mt::parse_json("{\n\"a\":\n" + nested(limits.max_depth), "lines.json"); },
                {"lines.json:", kTooDeep, "(line 3, column"});
  limits.max_depth = 3;
  CHECK_NOTHROW(mt::parse_json(nested(3), "x", limits));
  require_error([&] { mt::parse_json(nested(4), "x", limits); }, {"nested deeper than 3 levels"});
  CHECK(mt::parse_json_or_discarded(nested(4), limits).is_discarded());
  CHECK(mt::parse_json_or_discarded(nested(kHostile)).is_discarded());
  refused_quickly([&] { mt::parse_json(nested(kHostile), "hostile.json"); }, {"hostile.json", kTooDeep});
}

TEST_CASE("json_read: size limit, syntax errors, number overflow name the place", "[json]") {
  mt::JsonLimits small;
  small.max_bytes = 10;
  require_error([&] { mt::parse_json("[1, 2, 3, 4, 5]", "big.json", small); },
                {"big.json: 15 bytes of JSON, over the limit of 10"});
  CHECK(mt::parse_json("[1, 2, 3]", "ok.json", small).size() == 3);

  require_error([] { mt::parse_json("{\"a\": [1, 2,, 3]}", "syn.json"); },
                {"syn.json: invalid JSON at byte 13", "syntax error", "(at /a/2)"});
  require_error([] { mt::parse_json("{} x", "trail.json"); }, {"trail.json: invalid JSON", "end of input"});
  require_error([] { mt::parse_json("", "empty.json"); }, {"empty.json: invalid JSON"});
  require_error([] { mt::parse_json("[\"\xff\"]", "u.json"); }, {"u.json: invalid JSON", "UTF-8"});
  CHECK(mt::parse_json_or_discarded("{\"a\": ").is_discarded());

  // nlohmann 3.11 refuses a number beyond double's range while parsing (older versions gave inf):
  // either way the value never reaches a caller, and the message names file, key and line.
  for (const std::string& number : {std::string("1e400"), std::string("-1e400"), std::string("1e999999")}) {
    INFO(number);
    require_error([&] { mt::parse_json("{\"x\": {\"rope_theta\": " + number + "}}", "n.json"); },
                  {"n.json: invalid JSON at byte", "number overflow", number, "(at /x/rope_theta)"});
    require_error([&] { mt::parse_json("{\n\"a\": [0,\n " + number + "]}", "m.json"); },
                  {"m.json:", "number overflow", "(at /a/1)", "line 3"});
  }
  CHECK(mt::parse_json("[1e308, 18446744073709551616]", "ok.json")[1].is_number_float());  // 2^64 fits a double
}

TEST_CASE("json_read: duplicate keys are refused with the key and its path", "[json]") {
  require_error([] { mt::parse_json(R"({"a": 1, "b": 2, "a": 3})", "dup.json"); }, {"dup.json: duplicate key 'a'"});
  require_error([] { mt::parse_json(R"({"a": [{"b": 1}, {"c": 1, "c": 2}]})", "dup.json"); },
                {"duplicate key 'c' (at /a/1/c)"});
  CHECK(mt::parse_json_or_discarded(R"({"a": 1, "a": 1})").is_discarded());
  // Same key in different objects is fine.
  CHECK(mt::parse_json(R"({"a": {"a": {"a": 1}}, "b": {"a": 2}})", "ok.json")["b"]["a"] == 2);

  mt::JsonLimits named;
  named.describe_duplicate = [](const std::vector<std::string>& path) {
    std::string s = "dup";
    for (const auto& k : path) s += "|" + k;
    return s;
  };
  require_error([&] { mt::parse_json(R"({"x": [0, {"k": 1, "k": 2}]})", "d.json", named); }, {"d.json: dup|x|1|k"});
}

TEST_CASE("json_read: skipped paths are parsed and bounded but left out", "[json]") {
  mt::JsonLimits skip;
  skip.skip = {{"model", "vocab"}, {"model", "merges"}};
  const json j = mt::parse_json(
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": [1, {"c": 2}]}, "merges": ["a b"]}, "vocab": 1})", "t.json",
      skip);
  CHECK(j == json::parse(R"({"model": {"type": "BPE"}, "vocab": 1})"));
  require_error([&] { mt::parse_json(R"({"model": {"vocab": {"a": 0,, }}})", "t.json", skip); },
                {"t.json: invalid JSON", "(at /model/vocab/...)"});
  refused_quickly([&] { mt::parse_json(R"({"model": {"vocab": )" + nested(kHostile) + "}}", "t.json", skip); },
                  {"t.json", kTooDeep});
}

TEST_CASE("json_read: a 2M-deep value in a safetensors header or index is refused, naming the file",
          "[json][safetensors]") {
  TempDir tmp("json_st");
  const std::string deep = nested(kHostile);
  const json entry = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4}}};
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    json h = {{"w", entry}};
    h["w"][field] = "@DEEP@";
    const fs::path p = tmp.path / (std::string(field) + ".safetensors");
    write_safetensors(p, with_value(h, deep), 4);
    INFO(field);
    refused_quickly([&] { mt::SafetensorsFile f(p); }, {p.string(), kTooDeep});
  }
  const json meta = {{"__metadata__", {{"format", "@DEEP@"}}}, {"w", entry}};
  write_safetensors(tmp.path / "meta.safetensors", with_value(meta, deep), 4);
  refused_quickly([&] { mt::SafetensorsFile f(tmp.path / "meta.safetensors"); },
                  {(tmp.path / "meta.safetensors").string(), kTooDeep});
  // Duplicates keep the header's own wording.
  write_safetensors(tmp.path / "dup.safetensors", R"({"w": {"dtype": "F32", "dtype": "F32"}})", 0);
  require_error([&] { mt::SafetensorsFile f(tmp.path / "dup.safetensors"); }, {"tensor 'w': duplicate field 'dtype'"});

  const fs::path dir = tmp.path / "sharded";
  fs::create_directories(dir);
  write_safetensors(dir / "a.safetensors", json{{"w", entry}}.dump(), 4);
  const json index = {{"metadata", "@DEEP@"}, {"weight_map", {{"w", "a.safetensors"}}}};
  write_file(dir / "model.safetensors.index.json", with_value(index, deep));
  refused_quickly([&] { mt::load_safetensors_dir(dir); }, {(dir / "model.safetensors.index.json").string(), kTooDeep});
  write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"w": "a.safetensors", "w": "b.safetensors"}})");
  require_error([&] { mt::load_safetensors_dir(dir); }, {"model.safetensors.index.json: duplicate key 'w'"});
  write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"w": "a.safetensors"}})");
  CHECK(mt::load_safetensors_dir(dir).count("w") == 1);
}

TEST_CASE("json_read: config.json and generation_config.json with a 2M-deep value, 1e400 or duplicates",
          "[json][config]") {
  TempDir tmp("json_cfg");
  const json base = mt::test::read_json(mt::test::fixture("llama3") / "config.json");
  const fs::path cfg = tmp.path / "config.json";
  for (const char* key : {"vocab_size", "eos_token_id", "rope_scaling", "extra_field"}) {
    json j = base;
    j[key] = "@DEEP@";
    write_file(cfg, with_value(j, nested(kHostile)));
    INFO(key);
    refused_quickly([&] { mt::load_hf_config(cfg); }, {cfg.string(), kTooDeep});
  }
  json j = base;
  j["extra_field"] = "@DEEP@";
  write_file(cfg, with_value(j, nested(mt::JsonLimits{}.max_depth - 1)));  // 1 + 511 levels: just fits
  CHECK(mt::load_hf_config(cfg).vocab_size == base["vocab_size"]);

  j = base;
  j["rope_theta"] = "@DEEP@";
  write_file(cfg, with_value(j, "1e400"));
  require_error([&] { mt::load_hf_config(cfg); }, {cfg.string() + ": invalid JSON", "1e400", "rope_theta"});
  write_file(cfg, base.dump().insert(1, "\"vocab_size\": 7, "));
  require_error([&] { mt::load_hf_config(cfg); }, {cfg.string() + ": duplicate key 'vocab_size'"});

  const mt::ModelConfig mc = mt::load_hf_config(mt::test::fixture("llama3") / "config.json");
  const fs::path gen = tmp.path / "generation_config.json";
  for (const char* key : {"eos_token_id", "temperature"}) {
    write_file(gen, with_value(json{{key, "@DEEP@"}}, nested(kHostile)));
    INFO(key);
    refused_quickly([&] { mt::load_generation_defaults(tmp.path, mc); }, {gen.string(), kTooDeep});
  }
  write_file(gen, R"({"temperature": 1e999999})");
  require_error([&] { mt::load_generation_defaults(tmp.path, mc); }, {gen.string(), "number overflow", "temperature"});
}

TEST_CASE("json_read: tokenizer.json and tokenizer_config.json with a 2M-deep value", "[json][tokenizer]") {
  TempDir tmp("json_tok");
  const fs::path src = mt::test::tokenizer_fixture("tiny_bpe") / "tokenizer.json";
  const json tok = mt::test::read_json(src);
  const std::string deep = nested(kHostile);
  const std::vector<std::vector<std::string>> paths = {
      {"pre_tokenizer"}, {"decoder"}, {"model", "vocab"}, {"added_tokens"}};
  for (const std::vector<std::string>& path : paths) {
    json j = tok;
    json* slot = &j;
    for (const auto& k : path) slot = &(*slot)[k];
    *slot = "@DEEP@";
    write_file(tmp.path / "tokenizer.json", with_value(j, deep));
    INFO(path.back());
    refused_quickly([&] { mt::Tokenizer::load(tmp.path); }, {(tmp.path / "tokenizer.json").string(), kTooDeep});
    refused_quickly([&] { mt::Tokenizer::load(tmp.path / "tokenizer.json"); }, {"tokenizer.json", kTooDeep});
  }
  fs::remove(tmp.path / "tokenizer.json");
  mt::test::copy_files(src.parent_path(), tmp.path);
  CHECK_NOTHROW(mt::Tokenizer::load(tmp.path));
  const fs::path cfg = tmp.path / "tokenizer_config.json";
  for (const char* key : {"bos_token", "added_tokens_decoder", "chat_template"}) {
    write_file(cfg, with_value(json{{key, "@DEEP@"}}, deep));
    INFO(key);
    refused_quickly([&] { mt::Tokenizer::load(tmp.path); }, {cfg.string(), kTooDeep});
  }
  write_file(cfg, R"({"bos_token": "a", "bos_token": "b"})");
  require_error([&] { mt::Tokenizer::load(tmp.path); }, {cfg.string() + ": duplicate key 'bos_token'"});
  fs::remove(cfg);
  write_file(tmp.path / "special_tokens_map.json", with_value(json{{"pad_token", "@DEEP@"}}, deep));
  refused_quickly([&] { mt::Tokenizer::load(tmp.path); }, {"special_tokens_map.json", kTooDeep});
}

TEST_CASE("json_read: data records with a 2M-deep field, 1e400 or duplicate keys name FILE:LINE", "[json][data]") {
  TempDir tmp("json_data");
  const std::string deep = nested(kHostile);
  const std::string good = R"({"instruction": "a", "output": "b"})";
  const fs::path jsonl = tmp.path / "d.jsonl";
  mt::DataSourceConfig c;
  c.format = "alpaca";
  c.path = jsonl;
  for (const char* key : {"output", "extra"}) {
    write_file(jsonl, good + "\n\n" + with_value(json{{"instruction", "x"}, {key, "@DEEP@"}}, deep) + "\n");
    INFO(key);
    refused_quickly([&] { mt::read_conversations(c); }, {jsonl.string() + ":3: JSON " + kTooDeep});
  }
  write_file(jsonl, good + "\n" + R"({"instruction": "a", "output": "b", "instruction": "c"})" + "\n");
  require_error([&] { mt::read_conversations(c); }, {jsonl.string() + ":2: duplicate key 'instruction'"});
  write_file(jsonl, good + "\n" + good + "\n" + R"({"instruction": "a", "output": "b", "n": 1e400})" + "\n");
  require_error([&] { mt::read_conversations(c); }, {jsonl.string() + ":3: invalid JSON", "number overflow", "/n"});
  // on_malformed: skip drops the bad record like any other malformed one.
  c.on_malformed = "skip";
  mt::DataStats stats;
  CHECK(mt::read_conversations(c, &stats).size() == 2);
  CHECK(stats.skipped_malformed == 1);
  c.on_malformed = "fail";

  const fs::path array = tmp.path / "d.json";
  c.path = array;
  write_file(array, "[\n" + good + ",\n" + with_value(json{{"instruction", "x"}, {"output", "@DEEP@"}}, deep) + "\n]");
  refused_quickly([&] { mt::read_conversations(c); }, {array.string() + ":3 [element 1]: JSON " + kTooDeep});
  write_file(array, "[\n" + good + ",\n" + R"({"output": 1, "output": 2})" + "]");
  require_error([&] { mt::read_conversations(c); }, {array.string() + ":3 [element 1]: duplicate key 'output'"});

  // Token-id records (score, generate): prompt_ids or any other field.
  const fs::path ids = tmp.path / "ids.jsonl";
  const auto ignore = [](const json&, int64_t) {};
  for (const char* key : {"prompt_ids", "target_ids", "id"}) {
    write_file(ids, R"({"prompt_ids": [1, 2]})" "\n" + with_value(json{{key, "@DEEP@"}}, deep) + "\n");
    INFO(key);
    refused_quickly([&] { mt::for_each_jsonl(ids, ignore); }, {ids.string() + ":2: JSON " + kTooDeep});
  }
  write_file(ids, R"({"prompt_ids": [1], "prompt_ids": [2]})" "\n");
  require_error([&] { mt::for_each_jsonl(ids, ignore); }, {ids.string() + ":1: duplicate key 'prompt_ids'"});
}

TEST_CASE("json_read: the maintune process refuses a 2M-deep record with exit code 1", "[json][cli]") {
  TempDir tmp("json_cli");
  const fs::path ids = tmp.path / "deep.jsonl";
  write_file(ids, with_value(json{{"prompt_ids", "@DEEP@"}}, nested(kHostile)) + "\n");
  const auto r = mt::test::run_maintune("generate --model " + mt::test::quoted(mt::test::fixture("llama3")) +
                                        " --data " + mt::test::quoted(ids));
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, MT_HAS(ids.string() + ":1: JSON " + kTooDeep));
}

TEST_CASE("json_read: where a bad document means absent or damaged, a 2M-deep one does too", "[json][chunk_progress]") {
  TempDir tmp("json_absent");
  const std::string deep = nested(kHostile);
  write_file(tmp.path / "summary.json", deep);
  CHECK(mt::read_json_or_null(tmp.path / "summary.json").is_null());
  write_file(tmp.path / "summary.json", R"({"a": 1})");
  CHECK(mt::read_json_or_null(tmp.path / "summary.json") == json{{"a", 1}});

  const fs::path dir = tmp.path / "chunks";
  fs::create_directories(dir);
  write_file(dir / "plan.json", with_value(json{{"items", 8}, {"chunk_size", 4}, {"key", "@DEEP@"}}, deep));
  refused_quickly([&] { mt::read_chunks(dir, {8, 4, "model-a"}); }, {(dir / "plan.json").string(), "not valid JSON"});

  write_file(tmp.path / mt::kStageRecordFile, with_value(json{{"complete", "@DEEP@"}}, deep));
  refused_quickly([&] { mt::read_stage_record(tmp.path); }, {mt::kStageRecordFile, "not valid JSON"});
}
