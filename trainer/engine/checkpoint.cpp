// Training checkpoints (see checkpoint.h): atomic folder writes, validation, the latest-valid
// search that skips damaged checkpoints, and RNG state capture.
#include "trainer/engine/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include "models/atomic_file.h"
#include "models/read_file.h"
#include "models/error.h"
#include "models/json_read.h"
#include "models/safetensors.h"
#include "trainer/base/hash.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

const char* kWeightsFile = "model.safetensors";
const char* kOptimizerFile = "optimizer.safetensors";
const char* kRngFile = "rng.safetensors";
const char* kStateFile = "trainer_state.json";
const char* kConfigFile = "config.yaml";

int64_t get_int(const nlohmann::json& j, const char* key, const std::string& source) {
  if (!j.contains(key) || !j[key].is_number_integer())
    throw Error(fmt::format("{}: field '{}' is missing or not an integer", source, key));
  return j[key].get<int64_t>();
}

// The hash trainer_state.json carries of itself: XXH64 of its compact dump without the field. A
// parsed JSON dumps to the same text it was dumped from (nlohmann's numbers round-trip).
const char* kStateHashField = "state_xxh64";
std::string state_hash(nlohmann::json j) {
  j.erase(kStateHashField);
  const std::string text = j.dump();
  return fmt::format("{:016x}", xxh64(text.data(), text.size()));
}

// step_NNNNNNN folders of a run, newest first. A name whose number does not fit is not a checkpoint.
std::vector<std::pair<int64_t, fs::path>> checkpoint_dirs(const fs::path& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  const fs::path root = run_dir / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= 5 || name.compare(0, 5, "step_") != 0 || !entry.is_directory()) continue;
    const std::string digits = name.substr(5);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    if (digits.size() > 18) continue;
    out.emplace_back(std::stoll(digits), entry.path());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

std::map<std::string, at::Tensor> load_all(const fs::path& file) {
  SafetensorsFile st(file);
  std::map<std::string, at::Tensor> out;
  // Weights and moments: a NaN written into a checkpoint by hand must not resume into garbage.
  for (const auto& info : st.header().tensors) out[info.name] = st.load(info.name, {}, /*require_finite=*/true);
  return out;
}

}  // namespace

nlohmann::json TrainerState::to_json() const {
  return {{"format", kCheckpointFormat},
          {"step", step},
          {"tokens_seen", tokens_seen},
          {"target_tokens_seen", target_tokens_seen},
          {"skipped_steps", skipped_steps},
          {"consecutive_nonfinite", consecutive_nonfinite},
          {"metrics_bytes", metrics_bytes},
          {"data_cursor", data_cursor},
          {"schedule", schedule}};
}

TrainerState TrainerState::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": not a JSON object");
  const int64_t format = get_int(j, "format", source);
  if (format != 1 && format != kCheckpointFormat)
    throw Error(fmt::format("{}: checkpoint format {} is not one this build reads (1 and {})", source,
                            j["format"].dump(), kCheckpointFormat));
  TrainerState s;
  s.step = get_int(j, "step", source);
  s.tokens_seen = get_int(j, "tokens_seen", source);
  s.target_tokens_seen = get_int(j, "target_tokens_seen", source);
  s.skipped_steps = get_int(j, "skipped_steps", source);
  s.consecutive_nonfinite = get_int(j, "consecutive_nonfinite", source);
  s.metrics_bytes = get_int(j, "metrics_bytes", source);
  if (!j.contains("data_cursor") || !j["data_cursor"].is_object())
    throw Error(source + ": field 'data_cursor' is missing or not an object");
  if (!j.contains("schedule") || !j["schedule"].is_object())
    throw Error(source + ": field 'schedule' is missing or not an object");
  s.data_cursor = j["data_cursor"];
  s.schedule = j["schedule"];
  return s;
}

std::string checkpoint_name(int64_t step) { return fmt::format("step_{:07d}", step); }

std::map<std::string, at::Tensor> capture_rng_states() {
  std::map<std::string, at::Tensor> out;
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    out["cpu"] = gen.get_state();
  }
  if (at::hasCUDA()) {
    at::Generator gen = at::globalContext().defaultGenerator(at::Device(at::kCUDA, 0));
    std::lock_guard<std::mutex> lock(gen.mutex());
    out["cuda"] = gen.get_state();
  }
  return out;
}

void restore_rng_states(const std::map<std::string, at::Tensor>& states) {
  if (auto it = states.find("cpu"); it != states.end()) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(it->second);
  }
  if (auto it = states.find("cuda"); it != states.end() && at::hasCUDA()) {
    at::Generator gen = at::globalContext().defaultGenerator(at::Device(at::kCUDA, 0));
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(it->second);
  }
}

fs::path save_checkpoint(const fs::path& run_dir, const TrainerState& state, const Transformer& master,
                         const AdamW& optimizer, const std::string& config_yaml, int64_t keep_last,
                         const std::vector<std::pair<std::string, at::Tensor>>& extra_weights) {
  const fs::path root = run_dir / "checkpoints";
  const std::string name = checkpoint_name(state.step);
  const fs::path final_dir = root / name;
  const fs::path tmp = root / fmt::format(".tmp-{}-{}", name, ::getpid());
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw Error(fmt::format("{}: cannot create checkpoint folder: {}", root.string(), ec.message()));
  fs::remove_all(tmp, ec);
  try {
    fs::create_directory(tmp, ec);
    if (ec) throw Error(fmt::format("{}: cannot create: {}", tmp.string(), ec.message()));
    NamedTensors weights;
    for (const auto& [n, t] : master.params) weights.emplace_back(n, t.detach().to(at::kCPU).contiguous());
    for (const auto& [n, t] : extra_weights) weights.emplace_back(n, t.detach().to(at::kCPU).contiguous());
    write_safetensors(tmp / kWeightsFile, weights);
    NamedTensors opt;
    for (const auto& [n, t] : optimizer.state_tensors()) opt.emplace_back(n, t.detach().to(at::kCPU).contiguous());
    write_safetensors(tmp / kOptimizerFile, opt);
    NamedTensors rng;
    for (const auto& [n, t] : capture_rng_states()) rng.emplace_back(n, t.contiguous());
    write_safetensors(tmp / kRngFile, rng);
    nlohmann::json js = state.to_json();
    js["optimizer"] = optimizer.state_meta();
    // Sizes and content hashes let a resume tell a damaged checkpoint from a good one.
    for (const char* f : {kWeightsFile, kOptimizerFile, kRngFile})
      js["files"][f] = {{"bytes", static_cast<int64_t>(fs::file_size(tmp / f))},
                        {"xxh64", fmt::format("{:016x}", xxh64_file(tmp / f))}};
    js["files"][kConfigFile] = {{"bytes", static_cast<int64_t>(config_yaml.size())},
                                {"xxh64", fmt::format("{:016x}", xxh64(config_yaml.data(), config_yaml.size()))}};
    js[kStateHashField] = state_hash(js);
    write_text_file_atomically(tmp / kStateFile, js.dump(2) + "\n");
    write_text_file_atomically(tmp / kConfigFile, config_yaml);
    // A checkpoint of the same step from an interrupted earlier attempt is replaced.
    publish_directory(tmp, final_dir, IfPublished::kReplace);
  } catch (...) {
    std::error_code ignore;
    fs::remove_all(tmp, ignore);
    throw;
  }
  write_text_file_atomically(root / "latest", name + "\n");
  if (keep_last > 0) {
    const auto dirs = checkpoint_dirs(run_dir);
    for (size_t i = static_cast<size_t>(keep_last); i < dirs.size(); ++i)
      if (dirs[i].second != final_dir) fs::remove_all(dirs[i].second, ec);
  }
  return final_dir;
}

// validate_checkpoint's checks; returns the trainer_state.json they passed, so that a load uses
// what was checked (read once).
static nlohmann::json validated_state(const fs::path& dir) {
  for (const char* f : {kWeightsFile, kOptimizerFile, kRngFile, kStateFile, kConfigFile})
    if (!fs::is_regular_file(dir / f)) throw Error(fmt::format("{}: missing {}", dir.string(), f));
  const fs::path state_path = dir / kStateFile;
  const nlohmann::json j = read_json_file(state_path, "trainer state");
  TrainerState::from_json(j, state_path.string());
  const bool hashes_itself = j["format"] == kCheckpointFormat;
  if (hashes_itself && (!j.contains(kStateHashField) || j[kStateHashField] != state_hash(j)))
    throw Error(fmt::format("{}: content hash differs from the one recorded at save time (the counters, data cursor "
                            "or schedule were changed or damaged)",
                            state_path.string()));
  if (!j.contains("optimizer") || !j["optimizer"].is_object())
    throw Error(state_path.string() + ": field 'optimizer' is missing or not an object");
  if (!j.contains("files") || !j["files"].is_object())
    throw Error(state_path.string() + ": field 'files' is missing or not an object");
  std::vector<const char*> hashed = {kWeightsFile, kOptimizerFile, kRngFile};
  if (hashes_itself) hashed.push_back(kConfigFile);
  for (const char* f : hashed) {
    const nlohmann::json& rec = j["files"].value(f, nlohmann::json());
    if (!rec.is_object() || !rec.contains("bytes") || !rec.contains("xxh64"))
      throw Error(fmt::format("{}: no size and hash recorded for {}", state_path.string(), f));
    const int64_t bytes = static_cast<int64_t>(fs::file_size(dir / f));
    if (rec["bytes"] != bytes)
      throw Error(fmt::format("{}: {} bytes, but {} were written", (dir / f).string(), bytes, rec["bytes"].dump()));
    if (rec["xxh64"] != fmt::format("{:016x}", xxh64_file(dir / f)))
      throw Error(fmt::format("{}: content hash differs from the one recorded at save time", (dir / f).string()));
    if (f != kConfigFile) {
      SafetensorsFile check(dir / f);  // header and sizes
    }
  }
  return j;
}

void validate_checkpoint(const fs::path& dir) { validated_state(dir); }

LoadedCheckpoint load_checkpoint(const fs::path& dir) {
  const nlohmann::json j = validated_state(dir);
  LoadedCheckpoint c;
  c.dir = dir;
  c.state = TrainerState::from_json(j, (dir / kStateFile).string());
  c.optimizer_meta = j["optimizer"];
  c.weights = load_all(dir / kWeightsFile);
  c.optimizer_state = load_all(dir / kOptimizerFile);
  c.rng = load_all(dir / kRngFile);
  c.config_yaml = read_file(dir / kConfigFile);
  return c;
}

std::optional<LoadedCheckpoint> load_latest_checkpoint(const fs::path& run_dir,
                                                       const std::function<void(const std::string&)>& warn) {
  for (const auto& [step, dir] : checkpoint_dirs(run_dir)) {
    try {
      return load_checkpoint(dir);
    } catch (const Error& e) {
      if (warn) warn(fmt::format("skipping damaged checkpoint {}: {}", dir.string(), e.what()));
    }
  }
  return std::nullopt;
}

bool has_checkpoints(const fs::path& run_dir) { return !checkpoint_dirs(run_dir).empty(); }

bool is_checkpoint_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / kStateFile, ec);
}

fs::path checkpoint_from_pointer(const fs::path& pointer_file) {
  std::string name = read_file(pointer_file);
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
  const bool is_step = name.size() > 5 && name.compare(0, 5, "step_") == 0 &&
                       std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!is_step)
    throw Error(fmt::format("{}: expected a checkpoint name (step_NNNNNNN), got '{}'", pointer_file.string(),
                            name.substr(0, 80)));
  const fs::path dir = pointer_file.parent_path() / name;
  if (!fs::is_directory(dir))
    throw Error(fmt::format("{}: names {}, which does not exist", pointer_file.string(), dir.string()));
  return dir;
}

std::optional<fs::path> latest_checkpoint_dir(const fs::path& run_dir) {
  const fs::path pointer = run_dir / "checkpoints" / "latest";
  std::error_code ec;
  if (fs::is_regular_file(pointer, ec)) return checkpoint_from_pointer(pointer);
  const auto dirs = checkpoint_dirs(run_dir);
  if (dirs.empty()) return std::nullopt;
  return dirs.front().second;
}

}  // namespace mt
