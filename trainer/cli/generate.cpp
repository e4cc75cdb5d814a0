// `maintune generate`: KV-cache generation for each JSONL line ({"prompt_ids": [...]}, {"prompt":
// text} or {"instruction": text} through the chat template), printing {"generated_ids": [...],
// "finish_reason": "stop"|"length"} per line in input order, plus "text" when a tokenizer is in use.
// Instruction prompts stop at the template's end of turn as well as at the model's eos. A {"turns":
// [...]} record (MT-Bench) is a conversation: each turn is asked after the model's answer to the one
// before, and its line is {"turns": [answer, ...]}.
#include <fmt/format.h>

#include <cmath>
#include <optional>
#include "models/error.h"
#include "models/generate.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/input_command.h"
#include "trainer/cli/output.h"
#include "trainer/base/jsonl.h"
#include "trainer/data/text_requests.h"

namespace mt::cli {

namespace {

// Below this, dividing fp32 logits by the temperature can overflow (inf - inf: NaN probabilities);
// such a temperature is greedy decoding in all but name.
constexpr double kMinTemperature = 1e-5;

// Where a decoding setting came from, so that an error names it: the flag (misuse, exit 2) or the
// model's generation_config.json and its key (bad input, exit 1).
struct SettingSource {
  std::string name;
  bool from_flag = true;
  template <typename T>
  [[noreturn]] void reject(const std::string& rule, T got) const {
    const std::string message = fmt::format("{} must be {}, got {}", name, rule, got);
    if (from_flag) throw UsageError(message);
    throw Error(message);
  }
};

struct SamplingSettings {
  SamplingConfig config;
  std::string max_new_tokens_source;  // "--max-new-tokens", "DIR/generation_config.json: 'max_new_tokens'" or "the default"
};

// The decoding settings from the flags, else generation_config.json, else the defaults, each checked
// where it comes from. Flags are checked even for greedy decoding (a bad command line is bad either
// way); generation_config.json's sampling keys only with --sample, as transformers ignores them for
// greedy decoding.
SamplingSettings sampling_from_args(const Args& args, const LoadedModel& loaded) {
  const GenerationDefaults& g = loaded.generation;
  const std::string file = (loaded.dir / "generation_config.json").string();
  const bool sample = args.has("sample");
  const auto source = [&](const std::string& flag, bool configured, const char* key) {
    if (args.has(flag) || !configured) return SettingSource{"--" + flag, true};
    return SettingSource{fmt::format("{}: '{}'", file, key), false};
  };
  SamplingSettings out;
  SamplingConfig& s = out.config;
  s.greedy = !sample;
  const SettingSource max_new = source("max-new-tokens", g.max_new_tokens.has_value(), "max_new_tokens");
  s.max_new_tokens = args.get_int("max-new-tokens", g.max_new_tokens.value_or(32));
  const int64_t max_pos = loaded.model.config.max_position_embeddings;
  if (s.max_new_tokens < 0) max_new.reject(">= 0", s.max_new_tokens);
  if (s.max_new_tokens >= max_pos)  // no prompt fits (nor an overflowing sum later)
    max_new.reject(fmt::format("below the model's max_position_embeddings {} (prompt + new tokens must fit)", max_pos),
                   s.max_new_tokens);
  out.max_new_tokens_source = args.has("max-new-tokens") || g.max_new_tokens ? max_new.name : "the default";

  const SettingSource temperature = source("temperature", sample && g.temperature, "temperature");
  s.temperature = args.get_double("temperature", sample ? g.temperature.value_or(1.0) : 1.0);
  if (!(std::isfinite(s.temperature) && s.temperature >= kMinTemperature))
    temperature.reject(fmt::format("a finite number >= {} (nearer 0, decode greedily: drop --sample)", kMinTemperature),
                       s.temperature);
  const SettingSource top_k = source("top-k", sample && g.top_k, "top_k");
  s.top_k = args.get_int("top-k", sample ? g.top_k.value_or(0) : 0);
  if (s.top_k < 0) top_k.reject(">= 0 (0 = off)", s.top_k);
  const SettingSource top_p = source("top-p", sample && g.top_p, "top_p");
  s.top_p = args.get_double("top-p", sample ? g.top_p.value_or(1.0) : 1.0);
  if (!(s.top_p > 0 && s.top_p <= 1)) top_p.reject("in (0, 1] (1 = off)", s.top_p);
  s.seed = static_cast<uint64_t>(args.get_int("seed", 0));
  return out;
}

}  // namespace

int cmd_generate(int argc, char** argv) {
  const std::vector<OptionSpec> spec = input_command_options({
      {"data", true,
       "JSONL file (- = stdin) or a .json file holding an array of {\"prompt_ids\": [...]}, {\"prompt\": text}, "
       "{\"instruction\": text} or {\"turns\": [text, ...]} (multi-turn, MT-Bench); an id, key or question_id "
       "field is copied to the output",
       ""},
      {"max-new-tokens", true, "tokens to generate at most per prompt", "generation_config.json, else 32"},
      {"sample", false, "sample instead of greedy decoding", ""},
      {"temperature", true, "sampling temperature, at least 1e-5", "generation_config.json, else 1.0"},
      {"top-k", true, "keep the k most likely tokens (0 = off)", "generation_config.json, else 0"},
      {"top-p", true, "nucleus sampling mass, in (0, 1] (1 = off)", "generation_config.json, else 1.0"},
      {"seed", true, "sampling seed", "0"},
      {"stop-ids", true, "comma-separated stop token ids, or none",
       "the model's eos_token_id, with the chat template's end of turn for instruction prompts"},
      {"batch-size", true, "prompts decoded together", "8"},
  });
  const auto parsed = parse_command_line(argc, argv, spec, "usage: maintune generate --model DIR|CHECKPOINT|RUN --data FILE [options]");
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
  LoadedModel loaded = load_model_from_args(args, inputs.model).loaded;
  const GenerationDefaults& g = loaded.generation;
  const SamplingSettings settings = sampling_from_args(args, loaded);
  SamplingConfig s = settings.config;
  if (args.get("stop-ids") == "none") s.stop_ids.clear();
  else s.stop_ids = args.has("stop-ids") ? args.get_int_list("stop-ids") : default_stop_ids(g.eos_token_ids, text.context, records);
  // Check each prompt on its own so an error names the line, not a batch.
  const int64_t max_pos = loaded.model.config.max_position_embeddings;
  const auto check_prompt = [&](const std::vector<int64_t>& prompt, const std::string& place) {
    check_token_ids(prompt, loaded.model.config, place, "prompt_ids");
    const int64_t len = static_cast<int64_t>(prompt.size());
    if (s.max_new_tokens > max_pos - len)
      throw Error(fmt::format("{}: the prompt's {} tokens + max_new_tokens {} ({}) exceed max_position_embeddings {}: "
                              "at most {} new tokens fit",
                              place, len, s.max_new_tokens, settings.max_new_tokens_source, max_pos,
                              std::max<int64_t>(0, max_pos - len)));
  };
  std::vector<std::optional<ChatTurns>> conversations;
  for (size_t i = 0; i < prompts.size(); ++i) {
    check_prompt(prompts[i], where[i]);
    conversations.push_back(chat_turns_from_json(records[i], where[i]));
  }
  const auto rounds = [&](size_t i) { return conversations[i] ? conversations[i]->turns.size() : size_t{1}; };

  for (size_t first = 0; first < prompts.size(); first += static_cast<size_t>(batch)) {
    const size_t last = std::min(prompts.size(), first + static_cast<size_t>(batch));
    std::vector<nlohmann::json> answers(last - first, nlohmann::json::array());
    std::vector<std::vector<std::string>> answer_texts(last - first);
    // Round r asks every record of the batch that has an r-th turn; a later turn's prompt holds the
    // answers to the earlier ones, so it is built only once they are generated.
    for (size_t round = 0;; ++round) {
      std::vector<size_t> asked;
      std::vector<std::vector<int64_t>> chunk;
      for (size_t i = first; i < last; ++i) {
        if (round >= rounds(i)) continue;
        asked.push_back(i);
        if (round == 0) {
          chunk.push_back(prompts[i]);
        } else {
          chunk.push_back(chat_turn_prompt(*conversations[i], answer_texts[i - first], text.context, where[i]));
          check_prompt(chunk.back(), fmt::format("{}: turn {}", where[i], round + 1));
        }
      }
      if (asked.empty()) break;
      SamplingConfig cs = s;
      // Each batch and round its own stream, reproducible for a fixed --batch-size (round 0 as before turns existed).
      cs.seed = s.seed + first + round * prompts.size();
      const std::vector<std::vector<int64_t>> outs = generate(loaded.model, chunk, cs);
      for (size_t k = 0; k < outs.size(); ++k) {
        const std::vector<int64_t>& o = outs[k];
        const bool stopped = !o.empty() && std::find(s.stop_ids.begin(), s.stop_ids.end(), o.back()) != s.stop_ids.end();
        nlohmann::json j = {{"generated_ids", o}, {"finish_reason", stopped ? "stop" : "length"}};
        if (text.tokenizer) {
          j["text"] = text.tokenizer->decode(o, /*skip_special=*/true);
          answer_texts[asked[k] - first].push_back(j["text"].get<std::string>());
        }
        answers[asked[k] - first].push_back(std::move(j));
      }
    }
    for (size_t i = first; i < last; ++i) {
      // One line per record: its answer, or for {"turns"} the list of answers, one per turn.
      nlohmann::json j = conversations[i] ? nlohmann::json{{"turns", answers[i - first]}} : answers[i - first][0];
      copy_record_id(records[i], j);
      out().write_line(j.dump());  // checked line by line: a full disk stops the run here
    }
  }
  return 0;
}

}  // namespace mt::cli
