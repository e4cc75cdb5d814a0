// `maintune generate`: KV-cache generation for each JSONL line ({"prompt_ids": [...]}, {"prompt":
// text} or {"instruction": text} through the chat template), printing {"generated_ids": [...],
// "finish_reason": "stop"|"length"} per line in input order, plus "text" when a tokenizer is in use.
// Instruction prompts stop at the template's end of turn as well as at the model's eos.
#include <fmt/format.h>

#include <iostream>

#include "models/error.h"
#include "models/generate.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/input_command.h"
#include "trainer/base/jsonl.h"
#include "trainer/data/text_requests.h"

namespace mt::cli {

int cmd_generate(int argc, char** argv) {
  const std::vector<OptionSpec> spec = input_command_options({
      {"data", true,
       "JSONL file (- = stdin) or a .json file holding an array of {\"prompt_ids\": [...]}, {\"prompt\": text} or "
       "{\"instruction\": text}; an id, key or question_id field is copied to the output",
       ""},
      {"max-new-tokens", true, "tokens to generate at most per prompt", "generation_config.json, else 32"},
      {"sample", false, "sample instead of greedy decoding", ""},
      {"temperature", true, "sampling temperature", "generation_config.json, else 1.0"},
      {"top-k", true, "keep the k most likely tokens (0 = off)", "generation_config.json, else 0"},
      {"top-p", true, "nucleus sampling mass (1 = off)", "generation_config.json, else 1.0"},
      {"seed", true, "sampling seed", "0"},
      {"stop-ids", true, "comma-separated stop token ids, or none",
       "the model's eos_token_id, with the chat template's end of turn for instruction prompts"},
      {"batch-size", true, "prompts decoded together", "8"},
  });
  const auto parsed = parse_command_line(argc, argv, spec, "usage: maintune generate --model DIR --data FILE [options]");
  if (!parsed) return 0;
  const Args& args = *parsed;
  const CommandInputs inputs = read_command_inputs(args);
  const int64_t batch = inputs.batch_size;
  const auto& records = inputs.in.records;
  const auto& where = inputs.in.where;
  const TextSetup& text = inputs.in.text;
  std::vector<std::vector<int64_t>> prompts;
  for (size_t i = 0; i < records.size(); ++i)
    prompts.push_back(generation_prompt_from_json(records[i], text.context, where[i]));
  LoadedModel loaded = load_model_from_args(args);
  const GenerationDefaults& g = loaded.generation;
  // Check each line on its own so an error names the line, not a batch.
  for (size_t i = 0; i < prompts.size(); ++i)
    check_token_ids(prompts[i], loaded.model.config, where[i], "prompt_ids", /*allow_empty=*/false);

  SamplingConfig s;
  s.greedy = !args.has("sample");
  s.max_new_tokens = args.get_int("max-new-tokens", g.max_new_tokens.value_or(32));
  s.temperature = args.get_double("temperature", g.temperature.value_or(1.0));
  s.top_k = args.get_int("top-k", g.top_k.value_or(0));
  s.top_p = args.get_double("top-p", g.top_p.value_or(1.0));
  s.seed = static_cast<uint64_t>(args.get_int("seed", 0));
  if (args.get("stop-ids") == "none") s.stop_ids.clear();
  else s.stop_ids = args.has("stop-ids") ? args.get_int_list("stop-ids") : default_stop_ids(g.eos_token_ids, text.context, records);
  if (s.max_new_tokens < 0) throw UsageError("--max-new-tokens must be >= 0");

  for (size_t first = 0; first < prompts.size(); first += static_cast<size_t>(batch)) {
    const size_t last = std::min(prompts.size(), first + static_cast<size_t>(batch));
    std::vector<std::vector<int64_t>> chunk(prompts.begin() + static_cast<long>(first),
                                            prompts.begin() + static_cast<long>(last));
    SamplingConfig cs = s;
    cs.seed = s.seed + first;  // each batch its own stream, reproducible for a fixed --batch-size
    const std::vector<std::vector<int64_t>> outs = generate(loaded.model, chunk, cs);
    for (size_t k = 0; k < outs.size(); ++k) {
      const std::vector<int64_t>& o = outs[k];
      const bool stopped = !o.empty() && std::find(s.stop_ids.begin(), s.stop_ids.end(), o.back()) != s.stop_ids.end();
      nlohmann::json j = {{"generated_ids", o}, {"finish_reason", stopped ? "stop" : "length"}};
      if (text.tokenizer) j["text"] = text.tokenizer->decode(o, /*skip_special=*/true);
      copy_record_id(records[first + k], j);
      std::cout << j.dump() << "\n";
    }
  }
  std::cout.flush();
  return 0;
}

}  // namespace mt::cli
