// config.json parsing: both dialects (Hub: rope_theta + rope_scaling; transformers 5.x:
// rope_parameters), the three families, and clear errors for unknown or missing things.
#include "models/hf_config.h"
#include "models/rope.h"
#include "tests/test_util.h"

#include <ATen/ATen.h>

using nlohmann::json;
using mt::test::require_error;

namespace {

json llama31_hub() {  // as Meta-Llama-3.1-8B's config.json spells it
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009], "attention_bias": false, "mlp_bias": false,
    "hidden_act": "silu"})");
}

json llama31_v5() {  // the same model as transformers 5.x writes it
  json j = llama31_hub();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j.erase("torch_dtype");
  j["dtype"] = "bfloat16";
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  return j;
}

}  // namespace

TEST_CASE("hf_config: LLaMA-3.1 parses the same from the Hub and the transformers 5.x dialect", "[config]") {
  for (const json& j : {llama31_hub(), llama31_v5()}) {
    mt::ModelConfig c = mt::parse_hf_config(j, "config.json");
    CHECK(c.model_type == "llama");
    CHECK(c.num_kv_heads == 8);
    CHECK(c.head_dim == 128);
    CHECK(c.rope.type == "llama3");
    CHECK(c.rope.theta == 500000.0);
    CHECK(c.rope.factor == 8.0);
    CHECK(c.rope.original_max_position_embeddings == 8192);
    CHECK(c.dtype == "bfloat16");
    CHECK(c.eos_token_ids == std::vector<int64_t>{128001, 128008, 128009});
    CHECK(c.bos_token_ids == std::vector<int64_t>{128000});
    CHECK_FALSE(c.qkv_bias);
    CHECK(c.sliding_window == std::vector<int64_t>(32, 0));
  }
  // Both dialects give bit-identical rotary frequencies.
  auto a = mt::rope_inv_freq(mt::parse_hf_config(llama31_hub(), "a"));
  auto b = mt::rope_inv_freq(mt::parse_hf_config(llama31_v5(), "b"));
  CHECK(at::equal(a, b));
}

TEST_CASE("hf_config: llama3 rope rescaling matches the reference formula's three regimes", "[config]") {
  mt::ModelConfig c = mt::parse_hf_config(llama31_hub(), "config.json");
  at::Tensor scaled = mt::rope_inv_freq(c);
  c.rope.type = "default";
  at::Tensor plain = mt::rope_inv_freq(c);
  REQUIRE(scaled.size(0) == 64);
  // Highest frequencies (wavelength < 8192/4) unchanged; lowest (wavelength > 8192) divided by 8.
  CHECK(scaled[0].item<float>() == plain[0].item<float>());
  CHECK(scaled[63].item<float>() == Approx(plain[63].item<float>() / 8.0f));
  // Somewhere in between it is smoothed: strictly between inv/8 and inv.
  bool saw_medium = false;
  for (int64_t i = 0; i < 64; ++i) {
    const float s = scaled[i].item<float>(), p = plain[i].item<float>();
    if (s < p * 0.999f && s > p / 8.0f * 1.001f) saw_medium = true;
  }
  CHECK(saw_medium);
}

TEST_CASE("hf_config: Mistral sliding window and Qwen2 biases and layer types", "[config]") {
  json m = json::parse(R"({"model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 4, "num_attention_heads": 32, "num_key_value_heads": 8,
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "sliding_window": 4096})");
  mt::ModelConfig mc = mt::parse_hf_config(m, "mistral/config.json");
  CHECK(mc.sliding_window == std::vector<int64_t>(4, 4096));
  CHECK_FALSE(mc.qkv_bias);
  m["sliding_window"] = nullptr;  // Mistral v0.2+: full attention
  CHECK(mt::parse_hf_config(m, "x").sliding_window == std::vector<int64_t>(4, 0));

  json q = json::parse(R"({"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
    "intermediate_size": 4864, "num_hidden_layers": 3, "num_attention_heads": 14, "num_key_value_heads": 2,
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "sliding_window": 32768,
    "use_sliding_window": false, "max_window_layers": 21, "tie_word_embeddings": true})");
  mt::ModelConfig qc = mt::parse_hf_config(q, "qwen2/config.json");
  CHECK(qc.qkv_bias);
  CHECK_FALSE(qc.o_bias);
  CHECK(qc.tie_word_embeddings);
  CHECK(qc.head_dim == 64);
  CHECK(qc.sliding_window == std::vector<int64_t>(3, 0));  // use_sliding_window false
  q["use_sliding_window"] = true;
  q["max_window_layers"] = 1;
  CHECK(mt::parse_hf_config(q, "x").sliding_window == std::vector<int64_t>{0, 32768, 32768});
  q["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention"};
  CHECK(mt::parse_hf_config(q, "x").sliding_window == std::vector<int64_t>{32768, 0, 32768});
}

TEST_CASE("hf_config: the committed fixtures parse", "[config]") {
  for (const char* name : {"llama3", "mistral", "qwen2"}) {
    mt::ModelConfig c = mt::load_hf_config(mt::test::fixture(name) / "config.json");
    CHECK(c.vocab_size == 256);
    CHECK(c.num_layers == 2);
  }
  CHECK(mt::load_hf_config(mt::test::fixture("mistral") / "config.json").sliding_window ==
        std::vector<int64_t>{8, 8});
}

TEST_CASE("hf_config: bad configs are clear errors naming the file and field", "[config][bad-input]") {
  require_error([] {
    json j = llama31_hub();
    j["model_type"] = "gpt2";
    mt::parse_hf_config(j, "cfg/config.json");
  }, {"cfg/config.json", "unsupported model_type 'gpt2'"});
  require_error([] {
    json j = llama31_hub();
    j.erase("hidden_size");
    mt::parse_hf_config(j, "cfg/config.json");
  }, {"cfg/config.json", "hidden_size"});
  require_error([] {
    json j = llama31_hub();
    j["rope_scaling"]["rope_type"] = "yarn";
    mt::parse_hf_config(j, "cfg/config.json");
  }, {"cfg/config.json", "unsupported rope type 'yarn'"});
  require_error([] {
    json j = llama31_hub();
    j["rope_scaling"].erase("low_freq_factor");
    mt::parse_hf_config(j, "cfg/config.json");
  }, {"cfg/config.json", "low_freq_factor"});
  require_error([] {
    json j = llama31_hub();
    j["num_key_value_heads"] = 5;
    mt::parse_hf_config(j, "cfg/config.json");
  }, {"cfg/config.json", "num_key_value_heads"});
  require_error([] {
    json j = llama31_hub();
    j["num_hidden_layers"] = "32";
    mt::parse_hf_config(j, "cfg/config.json");
  }, {"cfg/config.json", "num_hidden_layers", "integer"});
  require_error([] {
    json j = llama31_hub();
    j["hidden_act"] = "gelu";
    mt::parse_hf_config(j, "cfg/config.json");
  }, {"cfg/config.json", "hidden_act"});
  require_error([] { mt::parse_hf_config(json::array(), "cfg/config.json"); }, {"cfg/config.json", "object"});

  auto dir = mt::test::temp_dir("cfg");
  mt::test::write_file(dir / "config.json", "{\"model_type\": \"llama\", \"vocab_size\": ");
  require_error([&] { mt::load_hf_config(dir / "config.json"); }, {(dir / "config.json").string(), "invalid JSON"});
  require_error([&] { mt::load_hf_config(dir / "missing.json"); }, {"missing.json", "cannot open"});
  std::filesystem::remove_all(dir);
}
