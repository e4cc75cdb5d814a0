// TensorBoard event files (trainer/report/tensorboard.h): CRC-32C check values; scalars written and read
// back bit-exactly by our reader and by the independent Python one (scripts/read_tb_events.py);
// unknown protobuf fields skipped; corrupted, truncated and garbage files rejected with mt::Error
// naming the file and offset (never a crash); and write errors surfacing as mt::Error.
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "models/error.h"
#include "trainer/report/tensorboard.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using mt::test::require_error;

namespace {

using mt::test::TempDir;

struct Scalar {
  std::string tag;
  float value;
  int64_t step;
  double wall_time;
};

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Several tags at several steps: negatives, NaN, ±inf, denormals, steps past 2^32, a negative step,
// a non-ASCII tag, an empty tag.
std::vector<Scalar> sample_scalars() {
  return {
      {"train/loss", 2.3412f, 1, 1700000000.125},
      {"train/lr", 1.2e-5f, 1, 1700000000.25},
      {"train/loss", -0.5f, 2, 1700000001.0},
      {"train/grad_norm", kNaN, 2, 1700000001.5},
      {"eval/loss", std::numeric_limits<float>::infinity(), 3, 1700000002.0},
      {"eval/loss", -std::numeric_limits<float>::infinity(), 4, 1700000002.0},
      {"tiny", std::numeric_limits<float>::denorm_min(), 5, 0.0},
      {"huge", std::numeric_limits<float>::max(), (int64_t{1} << 32) + 7, 1700000003.0},
      {"huge", -3.0e38f, int64_t{1} << 62, 1e-300},
      {"负载/λ·ü", 0.1f, 123456789012345, 1700000004.0},
      {"", 42.0f, -5, 1700000005.0},
  };
}

bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

fs::path write_sample(const fs::path& dir) {
  mt::TensorBoardWriter w(dir);
  for (const Scalar& s : sample_scalars()) w.add_scalar(s.tag, s.value, s.step, s.wall_time);
  w.flush();
  return w.path();
}

std::string python_reader_cmd(const fs::path& file) {
  const std::string py = MT_PYTHON;
  if (py.empty()) FAIL("MT_PYTHON is empty: configure with -DMT_PYTHON=<python> (scripts/build.sh does)");
  const fs::path script = fs::path(MT_SOURCE_DIR) / "scripts" / "read_tb_events.py";
  return mt::test::quoted(py) + " " + mt::test::quoted(script) + " " + mt::test::quoted(file);
}

// Byte offsets of the records of an event file (walking the framing only).
std::vector<size_t> record_offsets(const std::string& bytes) {
  std::vector<size_t> offsets;
  size_t pos = 0;
  while (pos + 12 <= bytes.size()) {
    uint64_t len;
    std::memcpy(&len, bytes.data() + pos, 8);
    offsets.push_back(pos);
    pos += 12 + len + 4;
  }
  return offsets;
}

// TFRecord framing around an arbitrary payload, for hand-made records.
std::string frame(const std::string& payload) {
  std::string out;
  auto put = [&](uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  put(payload.size(), 8);
  put(mt::masked_crc32c(out.data(), 8), 4);
  out += payload;
  put(mt::masked_crc32c(payload.data(), payload.size()), 4);
  return out;
}

std::string varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
  return s;
}
std::string key(uint32_t field, uint32_t wire) { return varint((uint64_t{field} << 3) | wire); }
std::string len_field(uint32_t field, const std::string& bytes) { return key(field, 2) + varint(bytes.size()) + bytes; }
std::string fixed32_field(uint32_t field, float f) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &f, 4);  // the test hosts are little-endian, as the file format is
  return key(field, 5) + s;
}
std::string fixed64_field(uint32_t field, double d) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &d, 8);
  return key(field, 1) + s;
}

}  // namespace

TEST_CASE("tensorboard: CRC-32C check values and the TFRecord mask", "[tensorboard]") {
  CHECK(mt::crc32c("123456789", 9) == 0xE3069283u);
  CHECK(mt::crc32c("", 0) == 0u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  CHECK(mt::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  CHECK(mt::crc32c(ones.data(), ones.size()) == 0x62A8AB43u);  // RFC 3720 B.4
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  CHECK(mt::crc32c(ascending.data(), ascending.size()) == 0x46DD794Eu);
  // Chained calls equal one call over the concatenation.
  CHECK(mt::crc32c("56789", 5, mt::crc32c("1234", 4)) == 0xE3069283u);
  const uint32_t c = 0xE3069283u;
  CHECK(mt::masked_crc32c("123456789", 9) == static_cast<uint32_t>(((c >> 15) | (c << 17)) + 0xa282ead8u));
}

TEST_CASE("tensorboard: scalars round trip exactly through our reader", "[tensorboard]") {
  TempDir tmp("roundtrip");
  const fs::path file = write_sample(tmp.path / "logs");
  CHECK(file.parent_path() == tmp.path / "logs");
  CHECK(file.filename().string().rfind("events.out.tfevents.", 0) == 0);

  const auto events = mt::read_tensorboard_events(file);
  const auto expected = sample_scalars();
  REQUIRE(events.size() == expected.size() + 1);
  CHECK(events[0].file_version == "brain.Event:2");
  CHECK(events[0].scalars.empty());
  CHECK(events[0].wall_time > 1.5e9);  // "now"
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& ev = events[i + 1];
    const auto& s = expected[i];
    INFO("event " << i + 1 << " tag " << s.tag);
    CHECK(ev.file_version.empty());
    CHECK(ev.step == s.step);
    CHECK(ev.wall_time == s.wall_time);
    REQUIRE(ev.scalars.size() == 1);
    CHECK(ev.scalars[0].first == s.tag);
    CHECK(same_float(ev.scalars[0].second, s.value));
    if (!std::isnan(s.value)) CHECK(std::memcmp(&ev.scalars[0].second, &s.value, 4) == 0);
  }
}

TEST_CASE("tensorboard: wall_time defaults to now, and files opened in one second get distinct names",
          "[tensorboard]") {
  TempDir tmp("names");
  mt::TensorBoardWriter a(tmp.path), b(tmp.path);
  CHECK(a.path() != b.path());
  a.add_scalar("x", 1.0, 3);
  a.flush();
  const auto events = mt::read_tensorboard_events(a.path());
  REQUIRE(events.size() == 2);
  CHECK(events[1].wall_time >= events[0].wall_time);
  CHECK(std::fabs(events[1].wall_time - events[0].wall_time) < 60);
  CHECK(mt::read_tensorboard_events(b.path()).size() == 1);
}

TEST_CASE("tensorboard: the independent Python reader reads the same events", "[tensorboard][python]") {
  TempDir tmp("python");
  const fs::path file = write_sample(tmp.path);
  const auto r = mt::test::run_command(python_reader_cmd(file));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto lines = mt::test::json_lines(r.output);
  const auto ours = mt::read_tensorboard_events(file);
  REQUIRE(lines.size() == ours.size());
  CHECK(lines[0].at("file_version") == "brain.Event:2");
  for (size_t i = 0; i < ours.size(); ++i) {
    const auto& j = lines[i];
    INFO("event " << i << ": " << j.dump());
    CHECK(j.at("wall_time").get<double>() == ours[i].wall_time);
    CHECK(j.at("step").get<int64_t>() == ours[i].step);
    CHECK(j.contains("file_version") == !ours[i].file_version.empty());
    const auto& scalars = j.at("scalars");
    REQUIRE(scalars.size() == ours[i].scalars.size());
    for (const auto& [tag, value] : ours[i].scalars) {
      REQUIRE(scalars.contains(tag));
      const auto& v = scalars.at(tag);
      if (std::isnan(value)) {
        CHECK(v == "nan");
      } else if (std::isinf(value)) {
        CHECK(v == (value > 0 ? "inf" : "-inf"));
      } else {
        // Python prints the float32 widened to double, exactly.
        CHECK(v.get<double>() == static_cast<double>(value));
      }
    }
  }
}

TEST_CASE("tensorboard: unknown fields of every wire type are skipped by both readers", "[tensorboard][python]") {
  TempDir tmp("unknown");
  // Summary.Value with extra fields around tag and simple_value, plus a tensor-only Value (no scalar).
  const std::string value = len_field(7, "node") + len_field(1, "acc") + key(3, 0) + varint(~uint64_t{0}) +
                            fixed32_field(2, 0.75f) + fixed64_field(12, 3.5) + len_field(9, std::string(3, '\0'));
  const std::string tensor_only = len_field(1, "image") + len_field(8, "xyz");
  const std::string summary = len_field(1, value) + len_field(1, tensor_only) + key(2, 0) + varint(5);
  // A group (wire types 3/4) holding a nested group and other fields.
  const std::string group = key(40, 3) + key(1, 0) + varint(9) + key(41, 3) + fixed32_field(2, 1.0f) + key(41, 4) +
                            len_field(3, "g") + key(40, 4);
  const std::string event = key(20, 0) + varint(1) + fixed64_field(1, 12.5) + len_field(4, "graph bytes") + group +
                            key(2, 0) + varint(77) + fixed32_field(30, 2.0f) + len_field(5, summary) +
                            fixed64_field(31, 0.0);
  const fs::path file = tmp / "events.out.tfevents.handmade";
  mt::test::write_file(file, frame(event));

  const auto events = mt::read_tensorboard_events(file);
  REQUIRE(events.size() == 1);
  CHECK(events[0].wall_time == 12.5);
  CHECK(events[0].step == 77);
  REQUIRE(events[0].scalars.size() == 1);
  CHECK(events[0].scalars[0].first == "acc");
  CHECK(events[0].scalars[0].second == 0.75f);

  const auto r = mt::test::run_command(python_reader_cmd(file));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto lines = mt::test::json_lines(r.output);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].at("wall_time") == 12.5);
  CHECK(lines[0].at("step") == 77);
  CHECK(lines[0].at("scalars") == nlohmann::json{{"acc", 0.75}});
}

TEST_CASE("tensorboard: a flipped payload byte is a CRC error naming the record's offset", "[tensorboard][python]") {
  TempDir tmp("flip");
  const fs::path file = write_sample(tmp.path);
  const std::string good = mt::test::read_file(file);
  const auto offsets = record_offsets(good);
  REQUIRE(offsets.size() == sample_scalars().size() + 1);
  const size_t rec = offsets[3];
  std::string bad = good;
  bad[rec + 12 + 5] ^= 0x10;  // inside the payload of the 4th record
  mt::test::write_file(file, bad);
  const std::string where = "byte offset " + std::to_string(rec);
  require_error([&] { mt::read_tensorboard_events(file); }, {file.string(), where, "payload CRC mismatch"});

  const auto r = mt::test::run_command(python_reader_cmd(file));
  INFO(r.output);
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("CRC mismatch") != std::string::npos);
  CHECK(r.output.find(where) != std::string::npos);

  // A flipped length byte fails the length CRC.
  bad = good;
  bad[offsets[2]] ^= 0x01;
  mt::test::write_file(file, bad);
  require_error([&] { mt::read_tensorboard_events(file); },
                {file.string(), "byte offset " + std::to_string(offsets[2]), "length CRC mismatch"});
  CHECK(mt::test::run_command(python_reader_cmd(file)).exit_code != 0);
}

TEST_CASE("tensorboard: a truncated file is an error naming the file", "[tensorboard][python]") {
  TempDir tmp("trunc");
  const fs::path file = write_sample(tmp.path);
  const std::string good = mt::test::read_file(file);
  const auto offsets = record_offsets(good);
  const size_t rec = offsets.back();

  mt::test::write_file(file, good.substr(0, rec + 20));  // mid-payload of the last record
  require_error([&] { mt::read_tensorboard_events(file); },
                {file.string(), "byte offset " + std::to_string(rec), "exceeds"});
  auto r = mt::test::run_command(python_reader_cmd(file));
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("byte offset " + std::to_string(rec)) != std::string::npos);

  mt::test::write_file(file, good.substr(0, rec + 5));  // mid-header
  require_error([&] { mt::read_tensorboard_events(file); }, {file.string(), "truncated record header"});
  CHECK(mt::test::run_command(python_reader_cmd(file)).exit_code != 0);

  // Every prefix: complete records read, anything else an mt::Error.
  for (size_t n = 0; n <= good.size(); ++n) {
    mt::test::write_file(file, good.substr(0, n));
    size_t complete = 0;
    while (complete < offsets.size() && offsets[complete] < n) ++complete;
    const bool at_boundary = n == good.size() || std::find(offsets.begin(), offsets.end(), n) != offsets.end();
    INFO("prefix of " << n << " bytes");
    if (at_boundary) {
      CHECK(mt::read_tensorboard_events(file).size() == complete);
    } else {
      CHECK_THROWS_AS(mt::read_tensorboard_events(file), mt::Error);
    }
  }

  require_error([&] { mt::read_tensorboard_events(tmp / "missing"); }, {(tmp / "missing").string()});
}

TEST_CASE("tensorboard: garbage and mutated files are errors, never crashes", "[tensorboard]") {
  TempDir tmp("garbage");
  const fs::path file = tmp / "events.out.tfevents.garbage";
  std::mt19937_64 rng(7);  // fixed seed: reproducible garbage
  for (int i = 0; i < 50; ++i) {
    std::string junk(1 + rng() % 400, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    mt::test::write_file(file, junk);
    CHECK_THROWS_AS(mt::read_tensorboard_events(file), mt::Error);
  }
  mt::test::write_file(file, "this is not a TensorBoard event file, just some text\n");
  require_error([&] { mt::read_tensorboard_events(file); }, {file.string(), "byte offset 0", "CRC"});

  // Single-byte mutations of a real file: each is caught by a CRC.
  const std::string good = mt::test::read_file(write_sample(tmp.path));
  for (int i = 0; i < 300; ++i) {
    std::string bad = good;
    bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
    mt::test::write_file(file, bad);
    CHECK_THROWS_AS(mt::read_tensorboard_events(file), mt::Error);
  }
}

TEST_CASE("tensorboard: malformed protobuf inside a valid record is an error naming the offset",
          "[tensorboard][python]") {
  TempDir tmp("proto");
  const fs::path file = tmp / "events.out.tfevents.proto";
  struct Case {
    std::string name, payload, message;
    size_t offset;  // of the bad bytes within the payload
  };
  const std::vector<Case> cases = {
      {"unterminated varint", fixed64_field(1, 1.0) + key(2, 0) + "\xff\xff", "truncated varint", 10},
      {"varint over 10 bytes", key(2, 0) + std::string(10, '\xff') + "\x01", "varint longer", 1},
      {"length past the end", key(4, 2) + varint(100) + "abc", "exceeds", 1},
      {"nested length past its message", len_field(5, key(1, 2) + varint(50) + "x"), "exceeds", 3},
      {"truncated fixed64", key(1, 1) + "abc", "truncated fixed64", 1},
      {"wire type 7", key(9, 7), "invalid wire type", 0},
      {"field number 0", key(0, 0) + varint(1), "field number", 0},
      {"unterminated group", key(6, 3) + key(1, 0) + varint(2), "unterminated group", 0},
      {"stray end-group", key(6, 4), "end-group", 0},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const std::string head = frame(fixed64_field(1, 1.0));  // a good first record
    mt::test::write_file(file, head + frame(c.payload));
    const size_t at = head.size() + 12 + c.offset;
    require_error([&] { mt::read_tensorboard_events(file); },
                  {file.string(), "byte offset " + std::to_string(at), c.message});
    const auto r = mt::test::run_command(python_reader_cmd(file));
    INFO(r.output);
    CHECK(r.exit_code != 0);
    CHECK(r.output.find("byte offset " + std::to_string(at)) != std::string::npos);
  }
}

TEST_CASE("tensorboard: a failed write (file size limit) is an mt::Error naming the file", "[tensorboard]") {
  TempDir tmp("full");
  mt::TensorBoardWriter w(tmp.path);
  // Writes past RLIMIT_FSIZE fail with EFBIG once SIGXFSZ is ignored: a disk-full stand-in that needs
  // no special filesystem. Limits and handler are restored before anything else writes.
  struct rlimit old_limit {};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  struct sigaction ignore {}, old_action {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  REQUIRE(sigaction(SIGXFSZ, &ignore, &old_action) == 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    for (int i = 0; i < 2000; ++i) w.add_scalar("train/loss", i, i, 1.0);
    w.flush();
  } catch (const mt::Error& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  sigaction(SIGXFSZ, &old_action, nullptr);
  INFO(message);
  CHECK(message.find(w.path().string()) != std::string::npos);
  CHECK(message.find("write failed") != std::string::npos);
}
