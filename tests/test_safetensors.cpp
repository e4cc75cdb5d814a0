// Tests of the safetensors layer: round trips through our writer and reader, HF sharding with an
// index, interop with Python's safetensors package in both directions, and every malformed-file
// check (each must throw mt::Error naming the file and the offending tensor or field).
#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "models/error.h"
#include "models/safetensors.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

using mt::test::TempDir;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}

// A hand-made safetensors file: 8-byte length of `header`, `header`, then `data`.
fs::path write_raw(const fs::path& p, const std::string& header, const std::string& data) {
  mt::test::write_file(p, le64(header.size()) + header + data);
  return p;
}
fs::path write_raw(const fs::path& p, const std::string& header, size_t data_bytes) {
  return write_raw(p, header, std::string(data_bytes, '\0'));
}

void open_file(const fs::path& p) { mt::SafetensorsFile f(p); }

// Runs `fn`, requiring an mt::Error whose message contains every string in `parts`.
template <class F>
void require_error(F&& fn, std::initializer_list<std::string> parts) {
  REQUIRE_THROWS_AS(fn(), mt::Error);
  for (const std::string& part : parts) REQUIRE_THROWS_WITH(fn(), MT_HAS(part));
}

// The file at `p` must be rejected with a message naming it and containing `parts`.
void require_bad_file(const fs::path& p, std::initializer_list<std::string> parts) {
  require_error([&] { open_file(p); }, {p.filename().string()});
  require_error([&] { open_file(p); }, parts);
}

// Same dtype, shape and bytes (NaN-safe, unlike at::equal).
bool bits_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const at::Tensor ca = a.cpu().contiguous(), cb = b.cpu().contiguous();
  return ca.nbytes() == 0 || std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

mt::NamedTensors sample_tensors() {
  at::manual_seed(1234);
  return {
      {"f32", at::randn({3, 5})},
      {"bf16", at::randn({4, 2}).to(at::kBFloat16)},
      {"f16", at::randn({7}).to(at::kHalf)},
      {"i64", at::arange(-5, 6, at::kLong)},
      {"bool", at::rand({2, 3}) > 0.5},
      {"scalar", at::scalar_tensor(3.25, at::kFloat)},              // 0-d
      {"empty", at::empty({0, 4}, at::kFloat)},                     // zero elements
      {"strided", at::arange(12, at::kFloat).reshape({3, 4}).t()},  // non-contiguous view
      {"specials", at::tensor({0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN(),
                               std::numeric_limits<float>::infinity(), 1e-45f})},
  };
}

// Runs a Python script file with MT_PYTHON; fails the test if MT_PYTHON is not configured.
int run_python(const TempDir& tmp, const std::string& script, const std::string& args) {
  const std::string py = MT_PYTHON;
  if (py.empty())
    FAIL("MT_PYTHON is empty: configure with -DMT_PYTHON=<python with safetensors> (scripts/build.sh does)");
  const fs::path script_path = tmp / "check.py";
  mt::test::write_file(script_path, script);
  const std::string cmd = "'" + py + "' '" + script_path.string() + "' " + args;
  return std::system(cmd.c_str());
}

}  // namespace

// --- round trips ---------------------------------------------------------------------------------

TEST_CASE("safetensors: round trip keeps dtype, shape and bits", "[safetensors]") {
  TempDir tmp("roundtrip");
  const mt::NamedTensors tensors = sample_tensors();
  const fs::path p = tmp / "model.safetensors";
  mt::write_safetensors(p, tensors);

  mt::SafetensorsFile f(p);
  REQUIRE(f.header().metadata == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(f.header().data_start % 8 == 0);
  REQUIRE(f.header().tensors.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    INFO("tensor " << name);
    REQUIRE(f.header().tensors[i].name == name);  // file order is the order given
    REQUIRE(f.contains(name));
    const at::Tensor got = f.load(name);
    REQUIRE(got.device().is_cpu());
    REQUIRE(got.is_contiguous());
    REQUIRE(bits_equal(got, t));
    if (name != "specials") REQUIRE(at::equal(got, t));
  }
  REQUIRE(f.load("scalar").dim() == 0);
  REQUIRE(f.load("empty").sizes() == at::IntArrayRef({0, 4}));
  REQUIRE_FALSE(f.contains("nope"));
  REQUIRE(f.find("nope") == nullptr);
  require_error([&] { f.load("nope"); }, {"model.safetensors", "no tensor 'nope'"});

  // No temporary file is left next to the result.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(tmp.path)) files += e.is_regular_file();
  REQUIRE(files == 1);
}

TEST_CASE("safetensors: load converts dtype on request and keeps the stored one by default",
          "[safetensors]") {
  TempDir tmp("convert");
  const at::Tensor bf = at::randn({5, 3}).to(at::kBFloat16);
  const fs::path p = tmp / "m.safetensors";
  mt::write_safetensors(p, {{"w", bf}});
  mt::SafetensorsFile f(p);
  REQUIRE(f.load("w").scalar_type() == at::kBFloat16);
  REQUIRE(f.load("w", at::TensorOptions().device(at::kCPU)).scalar_type() == at::kBFloat16);
  const at::Tensor f32 = f.load("w", at::TensorOptions().dtype(at::kFloat));
  REQUIRE(f32.scalar_type() == at::kFloat);
  REQUIRE(at::equal(f32, bf.to(at::kFloat)));
  const at::Tensor f64 = f.load("w", at::TensorOptions().dtype(at::kDouble).device(at::kCPU));
  REQUIRE(f64.scalar_type() == at::kDouble);
  REQUIRE(at::equal(f64, bf.to(at::kDouble)));
}

TEST_CASE("safetensors: writer is deterministic and pads the header to 8 bytes", "[safetensors]") {
  TempDir tmp("determinism");
  const mt::NamedTensors tensors = sample_tensors();
  mt::write_safetensors(tmp / "a.safetensors", tensors);
  mt::write_safetensors(tmp / "b.safetensors", tensors);
  const std::string a = mt::test::read_file(tmp / "a.safetensors");
  REQUIRE(a == mt::test::read_file(tmp / "b.safetensors"));
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(a[i])) << (8 * i);
  REQUIRE((8 + n) % 8 == 0);
  const std::string header = a.substr(8, n);
  REQUIRE(header.rfind("{\"__metadata__\":{\"format\":\"pt\"},\"f32\":{\"dtype\":\"F32\",\"shape\":[3,5],",
                       0) == 0);
  REQUIRE(header.find('\n') == std::string::npos);  // compact JSON

  // Overwriting an existing file replaces it.
  mt::write_safetensors(tmp / "a.safetensors", {{"x", at::ones({2})}}, {});
  mt::SafetensorsFile f(tmp / "a.safetensors");
  REQUIRE(f.header().tensors.size() == 1);
  REQUIRE(f.header().metadata.empty());
}

TEST_CASE("safetensors: writer rejects duplicate names and unsupported dtypes", "[safetensors]") {
  TempDir tmp("writer_errors");
  const fs::path p = tmp / "bad.safetensors";
  require_error(
      [&] {
        mt::write_safetensors(p, {{"w", at::ones({2})}, {"w", at::zeros({2})}});
      },
      {"bad.safetensors", "duplicate tensor name 'w'"});
  require_error(
      [&] {
        mt::write_safetensors(p, {{"c", at::ones({2}, at::kComplexFloat)}});
      },
      {"bad.safetensors", "tensor 'c'", "no safetensors equivalent"});
  require_error([&] { mt::write_safetensors(p, {{"u", at::Tensor()}}); }, {"bad.safetensors", "tensor 'u'"});
  require_error(
      [&] {
        mt::write_sharded_safetensors(tmp.path, {{"w", at::ones({2})}, {"w", at::ones({2})}}, 1);
      },
      {"duplicate tensor name 'w'"});
  REQUIRE_FALSE(fs::exists(p));
}

TEST_CASE("safetensors: sharded write makes HF shards + index and loads back", "[safetensors]") {
  TempDir tmp("sharded");
  const mt::NamedTensors tensors = {
      {"a", at::randn({4, 4})},         // 64 bytes
      {"b", at::randn({4, 4})},         // 64
      {"c", at::randn({4, 4})},         // 64: a+b+c > 150, new shard
      {"big", at::randn({16, 16})},     // 1024: above the limit, its own shard
      {"d", at::arange(8, at::kLong)},  // 64
  };
  const auto written = mt::write_sharded_safetensors(tmp.path, tensors, 150);
  const std::vector<fs::path> expected = {
      tmp / "model-00001-of-00004.safetensors", tmp / "model-00002-of-00004.safetensors",
      tmp / "model-00003-of-00004.safetensors", tmp / "model-00004-of-00004.safetensors",
      tmp / "model.safetensors.index.json"};
  REQUIRE(written == expected);
  REQUIRE_FALSE(fs::exists(tmp / "model.safetensors"));
  REQUIRE(mt::SafetensorsFile(expected[0]).header().tensors.size() == 2);
  REQUIRE(mt::SafetensorsFile(expected[2]).contains("big"));

  const std::string index_text = mt::test::read_file(expected[4]);
  REQUIRE(index_text.rfind("{\n  \"metadata\": {\n    \"total_size\": 1280\n  },\n  \"weight_map\": {\n",
                           0) == 0);
  const nlohmann::json index = nlohmann::json::parse(index_text);
  REQUIRE(index["weight_map"] == nlohmann::json{{"a", "model-00001-of-00004.safetensors"},
                                                {"b", "model-00001-of-00004.safetensors"},
                                                {"c", "model-00002-of-00004.safetensors"},
                                                {"big", "model-00003-of-00004.safetensors"},
                                                {"d", "model-00004-of-00004.safetensors"}});

  const auto loaded = mt::load_safetensors_dir(tmp.path);
  REQUIRE(loaded.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO("tensor " << name);
    REQUIRE(loaded.count(name) == 1);
    REQUIRE(at::equal(loaded.at(name), t));
  }
  const auto as_bf16 = mt::load_safetensors_dir(tmp.path, at::TensorOptions().dtype(at::kBFloat16));
  REQUIRE(as_bf16.at("a").scalar_type() == at::kBFloat16);
}

TEST_CASE("safetensors: a checkpoint that fits one shard is model.safetensors without index",
          "[safetensors]") {
  TempDir tmp("single");
  const mt::NamedTensors tensors = sample_tensors();
  const auto written = mt::write_sharded_safetensors(tmp / "out", tensors, 1ull << 30);
  REQUIRE(written == std::vector<fs::path>{tmp / "out" / "model.safetensors"});
  REQUIRE_FALSE(fs::exists(tmp / "out" / "model.safetensors.index.json"));
  const auto loaded = mt::load_safetensors_dir(tmp / "out");
  REQUIRE(loaded.size() == tensors.size());
  for (const auto& [name, t] : tensors) REQUIRE(bits_equal(loaded.at(name), t));
}

TEST_CASE("safetensors: a minimal valid file with no tensors opens", "[safetensors]") {
  TempDir tmp("minimal");
  mt::SafetensorsFile f(write_raw(tmp / "m.safetensors", "{}      ", 0));
  REQUIRE(f.header().tensors.empty());
  REQUIRE(f.header().header_len == 8);
  // Zero-size tensors may share an offset with their neighbour.
  mt::SafetensorsFile g(write_raw(tmp / "z.safetensors",
                                  R"({"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                                  R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                  4));
  REQUIRE(g.header().tensors.size() == 2);
  REQUIRE(g.load("z").numel() == 0);
}

// --- malformed files -----------------------------------------------------------------------------

TEST_CASE("safetensors: rejects files too short or with a bad header length", "[safetensors]") {
  TempDir tmp("bad_length");
  mt::test::write_file(tmp / "empty.safetensors", "");
  require_bad_file(tmp / "empty.safetensors", {"0 bytes", "too short"});
  mt::test::write_file(tmp / "five.safetensors", "abcde");
  require_bad_file(tmp / "five.safetensors", {"5 bytes", "too short"});
  mt::test::write_file(tmp / "long.safetensors", le64(100) + "{}");
  require_bad_file(tmp / "long.safetensors", {"header length 100", "past the end of the file"});
  mt::test::write_file(tmp / "huge.safetensors", le64(1ull << 63) + "{}");
  require_bad_file(tmp / "huge.safetensors", {"9223372036854775808", "exceeds the limit"});
  mt::test::write_file(tmp / "zero.safetensors", le64(0) + "{}");
  require_bad_file(tmp / "zero.safetensors", {"header length is 0"});
  require_error([&] { open_file(tmp / "missing.safetensors"); },
                {"missing.safetensors", "cannot open", "No such file"});
  require_error([&] { open_file(tmp.path); }, {tmp.path.string(), "it is a directory"});
}

TEST_CASE("safetensors: rejects headers that are not a JSON object", "[safetensors]") {
  TempDir tmp("bad_json");
  require_bad_file(write_raw(tmp / "trunc.safetensors", R"({"w": )", 0), {"header: invalid JSON", "parse error"});
  require_bad_file(write_raw(tmp / "utf8.safetensors", "{\"\xff\": 1}", 0), {"header: invalid JSON", "UTF-8"});
  require_bad_file(write_raw(tmp / "array.safetensors", "[1, 2]", 0), {"must be an object", "array"});
  require_bad_file(write_raw(tmp / "comment.safetensors", "{} // x", 0), {"header: invalid JSON"});
}

TEST_CASE("safetensors: rejects bad tensor entries, naming the tensor", "[safetensors]") {
  TempDir tmp("bad_entries");
  auto one = [&](const std::string& file, const std::string& entry, size_t data) {
    return write_raw(tmp / file, R"({"model.w":)" + entry + "}", data);
  };
  require_bad_file(one("dtype.safetensors", R"({"dtype":"F33","shape":[1],"data_offsets":[0,4]})", 4),
                   {"tensor 'model.w'", "unknown dtype 'F33'"});
  require_bad_file(one("negative.safetensors", R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", 4),
                   {"tensor 'model.w'", "shape[0] is negative (-1)"});
  require_bad_file(one("fraction.safetensors", R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", 4),
                   {"tensor 'model.w'", "shape[0] must be a non-negative integer"});
  require_bad_file(one("mismatch.safetensors", R"({"dtype":"F32","shape":[8],"data_offsets":[12,40]})", 40),
                   {"tensor 'model.w'", "data_offsets [12, 40] hold 28 bytes but shape [8] x F32 needs 32"});
  require_bad_file(one("past.safetensors", R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 4),
                   {"tensor 'model.w'", "past the end of the data section (4 bytes)"});
  require_bad_file(one("reversed.safetensors", R"({"dtype":"F32","shape":[0],"data_offsets":[8,0]})", 8),
                   {"tensor 'model.w'", "begin > end"});
  require_bad_file(one("nodtype.safetensors", R"({"shape":[1],"data_offsets":[0,4]})", 4),
                   {"tensor 'model.w'", "missing field 'dtype'"});
  require_bad_file(one("noshape.safetensors", R"({"dtype":"F32","data_offsets":[0,4]})", 4),
                   {"tensor 'model.w'", "missing field 'shape'"});
  require_bad_file(one("nooffsets.safetensors", R"({"dtype":"F32","shape":[1]})", 4),
                   {"tensor 'model.w'", "missing field 'data_offsets'"});
  require_bad_file(one("extra.safetensors", R"({"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1})", 4),
                   {"tensor 'model.w'", "unknown field 'x'"});
  require_bad_file(
      one("threeoffsets.safetensors", R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,4]})", 4),
      {"tensor 'model.w'", "array of 2 integers"});
  require_bad_file(one("notobject.safetensors", "[1]", 4), {"tensor 'model.w'", "must be an object"});
  require_bad_file(one("overflow.safetensors",
                       R"({"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]})", 4),
                   {"tensor 'model.w'", "overflows 64 bits"});
  require_bad_file(
      one("dupfield.safetensors", R"({"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]})", 4),
      {"tensor 'model.w'", "duplicate field 'dtype'"});
}

TEST_CASE("safetensors: rejects gaps, overlaps and trailing bytes in the data section", "[safetensors]") {
  TempDir tmp("bad_ranges");
  auto two = [&](const std::string& file, const std::string& a, const std::string& b, size_t data) {
    return write_raw(tmp / file,
                     R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)" + a + R"(},)" +
                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":)" + b + "}}",
                     data);
  };
  require_bad_file(two("overlap.safetensors", "[0,8]", "[4,12]", 12),
                   {"tensors 'a' [0, 8] and 'b' [4, 12] overlap"});
  require_bad_file(two("gap.safetensors", "[0,8]", "[12,20]", 20), {"gap of 4 bytes", "'a'", "'b'"});
  require_bad_file(two("lead.safetensors", "[4,12]", "[12,20]", 20), {"4 bytes before the first tensor 'a'"});
  require_bad_file(two("trailing.safetensors", "[0,8]", "[8,16]", 20),
                   {"4 trailing bytes after the last tensor 'b'"});
  require_bad_file(write_raw(tmp / "notensors.safetensors", "{}", 8),
                   {"8 bytes but the header lists no tensors"});
  require_bad_file(write_raw(tmp / "dupname.safetensors",
                             R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                             8),
                   {"duplicate tensor name 'a'"});
}

TEST_CASE("safetensors: rejects bad __metadata__", "[safetensors]") {
  TempDir tmp("bad_metadata");
  require_bad_file(write_raw(tmp / "nonstring.safetensors", R"({"__metadata__":{"format":1}})", 0),
                   {"__metadata__", "'format'", "must be a string"});
  require_bad_file(write_raw(tmp / "array.safetensors", R"({"__metadata__":["pt"]})", 0),
                   {"__metadata__ must be an object"});
  require_bad_file(write_raw(tmp / "dupkey.safetensors", R"({"__metadata__":{"k":"1","k":"2"}})", 0),
                   {"__metadata__: duplicate key 'k'"});
  mt::SafetensorsFile ok(write_raw(tmp / "ok.safetensors", R"({"__metadata__":{"format":"pt","x":""}})", 0));
  REQUIRE(ok.header().metadata.at("x").empty());
}

TEST_CASE("safetensors: BOOL bytes other than 0/1 are refused on load", "[safetensors]") {
  TempDir tmp("bad_bool");
  const fs::path p = tmp / "b.safetensors";
  write_raw(p, R"({"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", std::string("\x01\x02", 2));
  mt::SafetensorsFile f(p);
  require_error([&] { f.load("b"); }, {"b.safetensors", "tensor 'b'", "not 0 or 1"});
}

// --- checkpoint directories ----------------------------------------------------------------------

TEST_CASE("safetensors: directory loader rejects inconsistent indexes", "[safetensors]") {
  TempDir tmp("bad_dir");
  const std::string idx = "model.safetensors.index.json";
  auto make = [&](const std::string& name, const std::string& index_json, const mt::NamedTensors& shard) {
    const fs::path dir = tmp / name;
    fs::create_directories(dir);
    mt::test::write_file(dir / idx, index_json);
    if (!shard.empty()) mt::write_safetensors(dir / "shard.safetensors", shard);
    return dir;
  };
  const mt::NamedTensors ab = {{"a", at::ones({2})}, {"b", at::zeros({3})}};

  const fs::path missing = make("missing", R"({"weight_map":{"a":"model-00002-of-00002.safetensors"}})", {});
  require_error([&] { mt::load_safetensors_dir(missing); },
                {idx, "model-00002-of-00002.safetensors", "does not exist"});

  const fs::path hostile = make("hostile", R"({"weight_map":{"a":"../x"}})", {});
  require_error([&] { mt::load_safetensors_dir(hostile); }, {idx, "'../x'", "plain file name"});
  const fs::path slash = make("slash", R"({"weight_map":{"a":"/etc/passwd"}})", {});
  require_error([&] { mt::load_safetensors_dir(slash); }, {idx, "plain file name"});

  const fs::path absent = make("absent",
                               R"({"weight_map":{"a":"shard.safetensors","c":"shard.safetensors",)"
                               R"("b":"shard.safetensors"}})",
                               ab);
  require_error([&] { mt::load_safetensors_dir(absent); },
                {"missing tensor 'c' in shard", "shard.safetensors", "(named by index", idx});

  const fs::path unlisted = make("unlisted", R"({"weight_map":{"a":"shard.safetensors"}})", ab);
  require_error([&] { mt::load_safetensors_dir(unlisted); },
                {"shard.safetensors", "tensor 'b' is not listed in index", idx});

  const fs::path notobj = make("notobj", "[]", {});
  require_error([&] { mt::load_safetensors_dir(notobj); }, {idx, "must be a JSON object"});
  const fs::path nomap = make("nomap", R"({"metadata":{}})", {});
  require_error([&] { mt::load_safetensors_dir(nomap); }, {idx, "missing \"weight_map\""});
  const fs::path nonstr = make("nonstr", R"({"weight_map":{"a":1}})", {});
  require_error([&] { mt::load_safetensors_dir(nonstr); }, {idx, "weight_map['a']", "must be a string"});
  const fs::path badjson = make("badjson", R"({"weight_map":)", {});
  require_error([&] { mt::load_safetensors_dir(badjson); }, {idx, "invalid JSON"});

  const fs::path neither = tmp / "neither";
  fs::create_directories(neither);
  require_error([&] { mt::load_safetensors_dir(neither); },
                {"no model.safetensors or model.safetensors.index.json in", neither.string()});

  // The consistent index loads.
  const fs::path good = make("good",
                             R"({"metadata":{"total_size":20},)"
                             R"("weight_map":{"a":"shard.safetensors","b":"shard.safetensors"}})",
                             ab);
  REQUIRE(mt::load_safetensors_dir(good).size() == 2);
}

// --- interop with Python's safetensors -----------------------------------------------------------

TEST_CASE("safetensors: Python's safetensors package reads our files", "[safetensors]") {
  TempDir tmp("py_reads");
  const fs::path plain = tmp / "plain.safetensors";
  mt::write_safetensors(plain, {{"f32", at::arange(6, at::kFloat).reshape({2, 3})},
                                {"i64", at::arange(-2, 3, at::kLong)},
                                {"bool", at::tensor({1, 0, 1}, at::kLong).to(at::kBool)},
                                {"f16", at::full({2, 2}, 0.5, at::kHalf)},
                                {"scalar", at::scalar_tensor(7.0, at::kDouble)},
                                {"empty", at::empty({3, 0}, at::kFloat)}});
  const fs::path bf = tmp / "bf16.safetensors";
  mt::write_safetensors(bf, {{"w", (at::arange(4, at::kFloat) / 4).to(at::kBFloat16)}});
  const std::string script = R"PY(
import sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
d = load_file(sys.argv[1])
assert sorted(d) == ["bool", "empty", "f16", "f32", "i64", "scalar"], sorted(d)
assert d["f32"].dtype == np.float32 and d["f32"].shape == (2, 3) and d["f32"][1, 2] == 5.0, d["f32"]
assert d["i64"].dtype == np.int64 and d["i64"].tolist() == [-2, -1, 0, 1, 2], d["i64"]
assert d["bool"].dtype == np.bool_ and d["bool"].tolist() == [True, False, True], d["bool"]
assert d["f16"].dtype == np.float16 and (d["f16"] == 0.5).all(), d["f16"]
assert d["scalar"].shape == () and d["scalar"] == 7.0, d["scalar"]
assert d["empty"].shape == (3, 0), d["empty"].shape
with safe_open(sys.argv[1], framework="np") as f:
    assert f.metadata() == {"format": "pt"}, f.metadata()
import torch
from safetensors.torch import load_file as torch_load
w = torch_load(sys.argv[2])["w"]
assert w.dtype == torch.bfloat16 and w.float().tolist() == [0.0, 0.25, 0.5, 0.75], w
print("python read ok")
)PY";
  REQUIRE(run_python(tmp, script, "'" + plain.string() + "' '" + bf.string() + "'") == 0);
}

TEST_CASE("safetensors: we read files written by Python's safetensors package", "[safetensors]") {
  TempDir tmp("py_writes");
  const fs::path p = tmp / "py.safetensors";
  const std::string script = R"PY(
import sys, torch
from safetensors.torch import save_file
x = (torch.arange(12, dtype=torch.float32) / 7).reshape(3, 4)
save_file({"bf16": x.to(torch.bfloat16), "f32": x * 3, "i32": torch.arange(5, dtype=torch.int32)},
          sys.argv[1], metadata={"format": "pt"})
)PY";
  REQUIRE(run_python(tmp, script, "'" + p.string() + "'") == 0);
  const at::Tensor x = (at::arange(12, at::kFloat) / 7).reshape({3, 4});
  mt::SafetensorsFile f(p);
  REQUIRE(f.header().metadata.at("format") == "pt");
  REQUIRE(bits_equal(f.load("bf16"), x.to(at::kBFloat16)));
  REQUIRE(bits_equal(f.load("f32"), x * 3));
  REQUIRE(bits_equal(f.load("i32"), at::arange(5, at::kInt)));
  REQUIRE(
      bits_equal(f.load("bf16", at::TensorOptions().dtype(at::kFloat)), x.to(at::kBFloat16).to(at::kFloat)));
}
