// HF model directories: load (sharded and single-file), save back (round trip bit-identical,
// deterministic bytes, tied heads not duplicated), transformers loads what we save, and a
// checkpoint that does not fit its config is a clear error naming the directory and tensor.
#include <ATen/ATen.h>

#include <cstdlib>
#include <set>

#include "models/checkpoint_dir.h"
#include "models/json_read.h"
#include "models/safetensors.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

std::map<std::string, at::Tensor> param_map(const mt::Transformer& m) {
  return {m.params.begin(), m.params.end()};
}

}  // namespace

TEST_CASE("model dir: sharded load, save, reload is bit-identical and deterministic", "[model_dir]") {
  mt::LoadedModel a = mt::load_model_dir(mt::test::fixture("llama3"), c10::kCPU);  // stored dtype
  REQUIRE(a.model.embed.scalar_type() == at::kFloat);
  auto out1 = mt::test::temp_dir("save1"), out2 = mt::test::temp_dir("save2");
  mt::save_model_dir(a.model, a.generation, out1, /*max_shard_bytes=*/150 * 1000);
  CHECK(fs::exists(out1 / "model.safetensors.index.json"));
  CHECK(fs::exists(out1 / "config.json"));
  CHECK(fs::exists(out1 / "generation_config.json"));
  mt::LoadedModel b = mt::load_model_dir(out1, c10::kCPU);
  auto pa = param_map(a.model), pb = param_map(b.model);
  REQUIRE(pa.size() == pb.size());
  for (const auto& [name, t] : pa) {
    INFO(name);
    CHECK(at::equal(t, pb.at(name)));
  }
  CHECK(b.model.config.raw == a.model.config.raw);
  // Saving the reloaded model gives the same bytes in every file.
  mt::save_model_dir(b.model, b.generation, out2, 150 * 1000);
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(out1)) names.insert(e.path().filename().string());
  for (const auto& n : names) {
    INFO(n);
    CHECK(mt::test::read_file(out1 / n) == mt::test::read_file(out2 / n));
  }
  fs::remove_all(out1);
  fs::remove_all(out2);
}

TEST_CASE("model dir: saving over an earlier save leaves no stale weight files", "[model_dir]") {
  mt::LoadedModel a = mt::load_model_dir(mt::test::fixture("llama3"), c10::kCPU);
  auto out = mt::test::temp_dir("stale");
  mt::save_model_dir(a.model, a.generation, out, 150 * 1000);  // sharded
  CHECK(fs::exists(out / "model.safetensors.index.json"));
  mt::test::write_file(out / "notes.txt", "user file");
  // Now save different weights as one file: the old index and shards must not shadow them.
  mt::Transformer changed = mt::init_transformer(a.model.config, 7, at::TensorOptions().dtype(at::kFloat));
  mt::save_model_dir(changed, a.generation, out);
  CHECK_FALSE(fs::exists(out / "model.safetensors.index.json"));
  CHECK_FALSE(fs::exists(out / "model-00001-of-00003.safetensors"));
  CHECK(fs::exists(out / "notes.txt"));  // only HF weight names are touched
  mt::LoadedModel b = mt::load_model_dir(out, c10::kCPU);
  CHECK(at::equal(b.model.embed, changed.embed));
  // And back to sharded: model.safetensors goes away.
  mt::save_model_dir(a.model, a.generation, out, 150 * 1000);
  CHECK_FALSE(fs::exists(out / "model.safetensors"));
  CHECK(at::equal(mt::load_model_dir(out, c10::kCPU).model.embed, a.model.embed));
  fs::remove_all(out);
}

TEST_CASE("model dir: tied embeddings are saved once and load back tied", "[model_dir]") {
  mt::LoadedModel q = mt::load_model_dir(mt::test::fixture("qwen2"), c10::kCPU);
  CHECK(q.model.lm_head.data_ptr() == q.model.embed.data_ptr());
  auto out = mt::test::temp_dir("tied");
  mt::save_model_dir(q.model, q.generation, out);
  mt::SafetensorsFile f(out / "model.safetensors");
  CHECK_FALSE(f.contains("lm_head.weight"));
  CHECK(f.contains("model.layers.0.self_attn.q_proj.bias"));
  fs::remove_all(out);
}

TEST_CASE("model dir: loading converts dtype on request", "[model_dir]") {
  mt::LoadedModel m = mt::load_model_dir(mt::test::fixture("mistral"), c10::kCPU, at::kBFloat16);
  for (const auto& [name, t] : m.model.params) {
    INFO(name);
    CHECK(t.scalar_type() == at::kBFloat16);
  }
  auto out = mt::test::temp_dir("bf16");
  mt::save_model_dir(m.model, m.generation, out);
  CHECK(mt::load_hf_config(out / "config.json").dtype == "bfloat16");
  fs::remove_all(out);
}

TEST_CASE("model dir: transformers loads a saved directory and gives the fixture's logits", "[model_dir][python]") {
  const std::string py = MT_PYTHON;
  REQUIRE_FALSE(py.empty());  // scripts/build.sh always passes -DMT_PYTHON
  mt::LoadedModel m = mt::load_model_dir(mt::test::fixture("llama3"), c10::kCPU);
  auto out = mt::test::temp_dir("hf");
  mt::save_model_dir(m.model, m.generation, out, 150 * 1000);
  const std::string script =
      "import sys, torch, transformers\n"
      "from safetensors.torch import load_file\n"
      "m = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], attn_implementation='eager')\n"
      "e = load_file(sys.argv[2])\n"
      "with torch.no_grad(): l = m(e['input_ids']).logits\n"
      "d = (l - e['logits']).abs().max().item()\n"
      "print('max_diff', d)\n"
      "sys.exit(0 if d == 0.0 else 1)\n";
  mt::test::write_file(out / "check.py", script);
  auto r = mt::test::run_command("HF_HUB_OFFLINE=1 '" + py + "' '" + (out / "check.py").string() + "' '" +
                                 out.string() + "' '" + (mt::test::fixture("llama3") / "expected.safetensors").string() + "'");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  fs::remove_all(out);
}

TEST_CASE("model dir: checkpoints that do not fit the config are clear errors", "[model_dir][bad-input]") {
  mt::LoadedModel m = mt::load_model_dir(mt::test::fixture("mistral"), c10::kCPU);
  auto base = m.model.params;

  SECTION("missing tensor") {
    auto dir = mt::test::temp_dir("missing");
    mt::test::copy_files(mt::test::fixture("mistral"), dir);
    mt::NamedTensors t(base.begin(), base.end());
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& p) { return p.first == "model.layers.1.mlp.up_proj.weight"; }),
            t.end());
    mt::write_safetensors(dir / "model.safetensors", t);
    mt::test::require_error([&] { mt::load_model_dir(dir, c10::kCPU); },
                            {dir.string(), "missing tensor 'model.layers.1.mlp.up_proj.weight'"});
    fs::remove_all(dir);
  }
  SECTION("wrong shape for the config") {
    auto dir = mt::test::temp_dir("shape");
    mt::test::copy_files(mt::test::fixture("mistral"), dir);
    mt::NamedTensors t(base.begin(), base.end());
    for (auto& p : t)
      if (p.first == "model.norm.weight") p.second = at::ones({32});
    mt::write_safetensors(dir / "model.safetensors", t);
    mt::test::require_error([&] { mt::load_model_dir(dir, c10::kCPU); },
                            {dir.string(), "'model.norm.weight'", "[32]", "[64]"});
    fs::remove_all(dir);
  }
  SECTION("unexpected tensor") {
    auto dir = mt::test::temp_dir("extra");
    mt::test::copy_files(mt::test::fixture("mistral"), dir);
    mt::NamedTensors t(base.begin(), base.end());
    t.emplace_back("model.layers.2.input_layernorm.weight", at::ones({64}));
    mt::write_safetensors(dir / "model.safetensors", t);
    mt::test::require_error([&] { mt::load_model_dir(dir, c10::kCPU); },
                            {dir.string(), "unexpected", "model.layers.2.input_layernorm.weight"});
    fs::remove_all(dir);
  }
  SECTION("unknown model_type") {
    auto dir = mt::test::temp_dir("mtype");
    mt::test::copy_files(mt::test::fixture("mistral"), dir);
    auto cfg = mt::read_json_file(dir / "config.json");
    cfg["model_type"] = "falcon";
    mt::test::write_file(dir / "config.json", cfg.dump());
    mt::test::require_error([&] { mt::load_model_dir(dir, c10::kCPU); }, {"config.json", "unsupported model_type 'falcon'"});
    fs::remove_all(dir);
  }
  SECTION("not a directory") {
    mt::test::require_error([&] { mt::load_model_dir("/nonexistent/model", c10::kCPU); }, {"/nonexistent/model"});
  }
}
