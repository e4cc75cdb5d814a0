// Hostile model directories (issue 19): NaN/Inf weights, config.json values out of range, FIFOs and
// directories in place of files. Each is an mt::Error naming the file and the key or tensor.
#include <ATen/ATen.h>
#include <sys/stat.h>

#include <cmath>
#include <functional>
#include <limits>
#include <tuple>

#include "models/checkpoint_dir.h"
#include "models/hf_config.h"
#include "models/read_file.h"
#include "models/safetensors.h"
#include "tests/run_fixtures.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

// A copy of the tiny llama3 fixture with config.json changed by `edit`.
fs::path model_with_config(const std::string& tag, const std::function<void(nlohmann::json&)>& edit) {
  const fs::path dir = mt::test::temp_dir(tag);
  mt::test::copy_files(mt::test::fixture("llama3"), dir);
  nlohmann::json j = mt::test::read_json(dir / "config.json");
  edit(j);
  mt::test::write_file(dir / "config.json", j.dump(2));
  return dir;
}

}  // namespace

TEST_CASE("hostile models: a NaN or Inf weight is refused at load, naming the file and tensor", "[bad-input][model_dir]") {
  mt::LoadedModel a = mt::load_model_dir(mt::test::fixture("llama3"), c10::kCPU);
  for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    const fs::path dir = mt::test::temp_dir("nanweights");
    mt::Transformer m = a.model;
    for (auto& [name, t] : m.params)
      if (name == "model.norm.weight") t = t.clone().index_put_({1}, bad);
    mt::save_model_dir(m, a.generation, dir);
    mt::test::require_error([&] { mt::load_model_dir(dir, c10::kCPU); },
                            {(dir / "model.safetensors").string(), "'model.norm.weight'", "non-finite", "index 1"});
    fs::remove_all(dir);
  }
  // float32 beyond float16's range becomes Inf in the conversion: caught too, and said so.
  const fs::path dir = mt::test::temp_dir("bigweights");
  mt::Transformer m = a.model;
  for (auto& [name, t] : m.params)
    if (name == "model.embed_tokens.weight") t = t.clone().index_put_({0, 0}, 1e6);
  mt::save_model_dir(m, a.generation, dir);
  CHECK_NOTHROW(mt::load_model_dir(dir, c10::kCPU));  // finite as stored
  mt::test::require_error([&] { mt::load_model_dir(dir, c10::kCPU, at::kHalf); },
                          {"'model.embed_tokens.weight'", "after conversion to Half"});
  fs::remove_all(dir);
}

TEST_CASE("hostile models: config.json values out of range are refused before any allocation", "[bad-input][model_dir]") {
  const std::vector<std::tuple<std::string, nlohmann::json, std::vector<std::string>>> cases = {
      {"rms_norm_eps", -1, {"'rms_norm_eps' must be > 0", "got -1"}},
      {"rms_norm_eps", 0, {"'rms_norm_eps' must be > 0"}},
      {"rope_theta", -5.0, {"'rope_theta' must be > 0 and finite", "got -5"}},
      {"vocab_size", int64_t{1} << 40, {"'vocab_size' must be at most 2147483648"}},
      {"num_hidden_layers", 1000000000, {"'num_hidden_layers' must be at most 65536"}},
      {"num_hidden_layers", int64_t{1} << 62, {"'num_hidden_layers' must be at most"}},
      {"num_key_value_heads", 3, {"not a multiple of num_key_value_heads 3"}},
      {"max_position_embeddings", 0, {"'max_position_embeddings' must be positive"}},
  };
  for (const auto& [key, value, parts] : cases) {
    INFO(key << " = " << value.dump());
    const fs::path dir = model_with_config("badcfg", [&](nlohmann::json& j) {
      j.erase("rope_parameters");
      j[key] = value;
    });
    mt::test::require_error([&] { mt::load_model_dir(dir, c10::kCPU); }, {(dir / "config.json").string()});
    try {
      mt::load_model_dir(dir, c10::kCPU);
    } catch (const mt::Error& e) {
      for (const auto& p : parts) {
        INFO(e.what());
        CHECK(std::string(e.what()).find(p) != std::string::npos);
      }
    }
    fs::remove_all(dir);
  }
}

TEST_CASE("hostile models: num_hidden_layers above the layers the files hold names both", "[bad-input][model_dir]") {
  const int64_t held = mt::load_hf_config(mt::test::fixture("llama3") / "config.json").num_layers;
  const fs::path dir = model_with_config("morelayers", [&](nlohmann::json& j) { j["num_hidden_layers"] = held + 5; });
  mt::test::require_error([&] { mt::load_model_dir(dir, c10::kCPU); },
                          {"'num_hidden_layers' is " + std::to_string(held + 5), "hold " + std::to_string(held) + " layer"});
  fs::remove_all(dir);
}

TEST_CASE("hostile models: a directory or FIFO in place of a file is refused, never waited on", "[bad-input][model_dir]") {
  const fs::path dir = mt::test::temp_dir("fifo");
  fs::create_directories(dir / "adir");
  mt::test::require_error([&] { mt::read_file(dir / "adir", "config"); }, {"adir", "it is a directory"});
  REQUIRE(::mkfifo((dir / "pipe").c_str(), 0600) == 0);
  mt::test::require_error([&] { mt::read_file(dir / "pipe", "config"); }, {"pipe", "not a regular file"});
  mt::test::require_error([&] { mt::SafetensorsFile f(dir / "pipe"); }, {"pipe", "not a regular file"});
  // Through the CLI, under a timeout so a regression fails instead of hanging the suite.
  const fs::path model = dir / "model";
  fs::create_directories(model);
  fs::copy_file(mt::test::fixture("llama3") / "config.json", model / "config.json");
  REQUIRE(::mkfifo((model / "model.safetensors").c_str(), 0600) == 0);
  mt::test::write_file(dir / "prompts.jsonl", "{\"prompt_ids\": [1, 2], \"target_ids\": [3]}\n");
  const auto r = mt::test::run_command("timeout 20 '" + std::string(MT_MAINTUNE_EXE) + "' score --model " +
                                       mt::test::quoted(model) + " --device cpu --data " +
                                       mt::test::quoted(dir / "prompts.jsonl"));
  INFO(r.output);
  CHECK(r.exit_code != 124);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("model.safetensors") != std::string::npos);
  CHECK(r.output.find("not a regular file") != std::string::npos);

  // Tokenizer files: a FIFO given as the file, or in a tokenizer directory in place of any file it
  // reads (the model file, or an optional config that would silently change the tokenizer).
  mt::test::write_file(dir / "texts.jsonl", "{\"text\": \"hi\"}\n");
  const auto tokenize = [&](const fs::path& tokenizer) {
    return mt::test::run_command("timeout 20 '" + std::string(MT_MAINTUNE_EXE) + "' tokenize --tokenizer " +
                                 mt::test::quoted(tokenizer) + " --data " + mt::test::quoted(dir / "texts.jsonl"));
  };
  const fs::path tok_fifo = dir / "tokenizer.model";
  REQUIRE(::mkfifo(tok_fifo.c_str(), 0600) == 0);
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                           "chat_template.jinja"}) {
    INFO(name);
    const fs::path tdir = dir / (std::string("tok_") + name);
    fs::create_directories(tdir);
    if (std::string(name) != "tokenizer.json") fs::copy_file(mt::test::tiny_model_dir() / "tokenizer.json", tdir / "tokenizer.json");
    REQUIRE(::mkfifo((tdir / name).c_str(), 0600) == 0);
    const auto t = tokenize(tdir);
    INFO(t.output);
    CHECK(t.exit_code == 1);
    CHECK(t.output.find((tdir / name).string()) != std::string::npos);
    CHECK(t.output.find("not a regular file") != std::string::npos);
  }
  const auto single = tokenize(tok_fifo);
  INFO(single.output);
  CHECK(single.exit_code == 1);
  CHECK(single.output.find("not a regular file") != std::string::npos);
  fs::remove_all(dir);
}
