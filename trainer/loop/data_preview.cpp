// The data preview (see data_preview.h).
#include "trainer/loop/data_preview.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "models/error.h"
#include "models/hf_config.h"
#include "trainer/data/data_loader.h"
#include "trainer/loop/optimizer_setup.h"
#include "trainer/loop/training_data.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

const char* kGreen = "\033[32m";
const char* kCyan = "\033[36m";
const char* kReset = "\033[0m";

std::vector<int64_t> example_ids(const DatasetView& data, int64_t i, int64_t end) {
  const uint32_t* t = data.tokens + data.offsets[i];
  return std::vector<int64_t>(t, t + end);
}

std::string marked(const std::string& text, uint8_t mask, bool color) {
  if (mask == 0) return text;
  if (color) return (mask == kMaskSyntheticTarget ? kCyan : kGreen) + text + kReset;
  return (mask == kMaskSyntheticTarget ? "[[~" : "[[") + text + "]]";
}

// Percentile p (0..100) of sorted values, nearest rank.
int64_t percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::string length_line(const DatasetView& v, int64_t max_len) {
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < v.num_examples; ++i) lengths.push_back(v.length(i));
  std::sort(lengths.begin(), lengths.end());
  const auto at_max = std::count(lengths.begin(), lengths.end(), max_len);
  return fmt::format("lengths (tokens): min {}, median {}, p95 {}, max {}; mean {:.1f}; {} of {} at max_len {}",
                     percentile(lengths, 0), percentile(lengths, 50), percentile(lengths, 95), percentile(lengths, 100),
                     v.num_examples ? static_cast<double>(v.num_tokens()) / static_cast<double>(v.num_examples) : 0.0,
                     at_max, v.num_examples, max_len);
}

int64_t target_tokens(const DatasetView& v) {
  int64_t n = 0;
  for (int64_t t = 0; t < v.num_tokens(); ++t) n += v.masks[t] != 0;
  return n;
}

// Rows, fill and steps of epoch 0 as the loader plans them, and how many epochs the run covers.
std::string packing_lines(const TrainingData& data, const TrainConfig& config) {
  const LoaderOptions& lo = data.loader_options;
  const auto rows = epoch_rows(data.train_view, lo, 0);
  const double n_rows = static_cast<double>(std::max<size_t>(rows.size(), 1));
  const double fill = static_cast<double>(data.train_view.num_tokens()) / (n_rows * static_cast<double>(lo.seq_len));
  std::string s = fmt::format(
      "packing: {} into rows of {} tokens: {} rows, {:.2f} examples per row, {:.1f}% of row positions are tokens "
      "({:.1f}% padding)\n",
      lo.packing, lo.seq_len, rows.size(), static_cast<double>(data.train_view.num_examples) / n_rows, 100.0 * fill,
      100.0 * (1.0 - fill));
  DataLoader loader(data.train_view, lo, data.dataset_key);
  const int64_t micro_per_epoch = loader.steps_per_epoch();
  const TrainingSection& tc = config.training;
  const int64_t dropped = static_cast<int64_t>(rows.size()) % lo.world_size;
  s += fmt::format("batches: micro_batch_size {} x world size {}: {} micro-batches per epoch per rank{}\n",
                   lo.batch_size, lo.world_size, micro_per_epoch,
                   dropped ? fmt::format(" ({} rows of the epoch dropped so that ranks get the same rows)", dropped) : "");
  if (micro_per_epoch == 0) throw Error("the training data gives no batch for one rank (too few examples?)");
  const LrSchedule schedule = run_schedule(config, micro_per_epoch, std::nullopt);
  s += fmt::format("steps: {} optimizer steps x grad_accum_steps {} = {:.2f} epochs{}\n", schedule.total_steps,
                   tc.grad_accum_steps,
                   static_cast<double>(schedule.total_steps * tc.grad_accum_steps) / static_cast<double>(micro_per_epoch),
                   tc.max_steps > 0 ? " (training.max_steps)" : fmt::format(" (training.epochs {})", tc.epochs));
  return s;
}

std::string statistics(const TrainingData& data, const TrainConfig& config) {
  const DataStats& st = data.train_cache.stats;
  std::string s = "== statistics ==\n";
  for (const auto& shape : st.shapes) s += "source " + shape.report() + "\n";
  s += "records: " + st.summary() + "\n";
  const DatasetView& v = data.train_view;
  const int64_t targets = target_tokens(v);
  s += fmt::format("training examples: {}; tokens {}, of which trained on {} ({:.1f}%)\n", v.num_examples,
                   v.num_tokens(), targets,
                   v.num_tokens() ? 100.0 * static_cast<double>(targets) / static_cast<double>(v.num_tokens()) : 0.0);
  if (data.has_eval) s += fmt::format("eval examples: {} (tokens {})\n", data.eval_view.num_examples, data.eval_view.num_tokens());
  s += length_line(v, data.loader_options.seq_len) + "\n";
  s += fmt::format("truncated to max_len: {}; dropped as too long: {} (data.too_long {})\n", st.truncated,
                   st.dropped_too_long, config.data.too_long);
  return s + packing_lines(data, config);
}

}  // namespace

std::string masked_example_text(const Tokenizer& tok, const DatasetView& data, int64_t i, bool color) {
  const int64_t len = data.length(i);
  const uint8_t* mask = data.masks + data.offsets[i];
  std::string out, before;  // `before`: the decode of the tokens up to the current run
  for (int64_t begin = 0; begin < len;) {
    int64_t end = begin;
    while (end < len && mask[end] == mask[begin]) ++end;
    const std::string upto = tok.decode(example_ids(data, i, end));
    // A decode that does not extend the previous one (a UTF-8 character split across runs) is
    // shown as the run decoded alone.
    std::string piece;
    if (upto.compare(0, before.size(), before) == 0) {
      piece = upto.substr(before.size());
    } else {
      const auto ids = example_ids(data, i, end);
      piece = tok.decode(std::vector<int64_t>(ids.begin() + begin, ids.end()));
    }
    out += marked(piece, mask[begin], color);
    before = upto;
    begin = end;
  }
  return out;
}

std::string example_token_table(const Tokenizer& tok, const DatasetView& data, int64_t i) {
  std::string out = "  pos       id  target  piece\n";
  const uint32_t* ids = data.tokens + data.offsets[i];
  const uint8_t* mask = data.masks + data.offsets[i];
  std::string before;  // the decode of the tokens before t
  for (int64_t t = 0; t < data.length(i); ++t) {
    // The token's text as the example's decode has it (a SentencePiece word's leading space
    // included), else (a UTF-8 character split across tokens) the token decoded alone.
    const std::string upto = tok.decode(example_ids(data, i, t + 1));
    const std::string piece = upto.compare(0, before.size(), before) == 0 ? upto.substr(before.size())
                                                                           : tok.decode({static_cast<int64_t>(ids[t])});
    before = upto;
    out += fmt::format("{:5} {:8}  {:>6}  {}\n", t, ids[t], mask[t] == 0 ? "-" : mask[t] == kMaskSyntheticTarget ? "synth" : "yes",
                       nlohmann::json(piece).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  return out;
}

std::string data_preview(const TrainConfig& config, const PreviewOptions& options, const LogFn& log) {
  if (options.first < 0 || options.count < 0 || options.world_size < 1)
    throw Error("data preview: --first and --n must be non-negative, --world-size at least 1");
  const ModelConfig mc = load_hf_config(fs::path(config.model.path) / "config.json");
  DistEnv dist;
  dist.world_size = options.world_size;
  const TrainingData data = load_training_data(config, mc, dist, log, CachePlace::kConfiguredOnly);
  const Tokenizer tok = Tokenizer::load(data.tokenizer_path);
  const DatasetView& v = data.train_view;
  std::string s = fmt::format(
      "maintune data preview: {} training examples, template {}, max_len {}, train_on_prompt {}; tokenizer {}\n",
      v.num_examples, data.chat_template.empty() ? "none" : data.chat_template, data.loader_options.seq_len,
      config.data.train_on_prompt, data.tokenizer_path.string());
  s += options.color ? fmt::format("trained-on tokens are {}green{} ({}cyan{}: a synthetic source's)\n", kGreen, kReset,
                                   kCyan, kReset)
                     : "trained-on tokens are inside [[ ]] ([[~ ]]: a synthetic source's)\n";
  const int64_t last = std::min(v.num_examples, options.first + options.count);
  if (options.count > 0 && options.first >= v.num_examples)
    throw Error(fmt::format("data preview: --first {} is past the {} training examples", options.first, v.num_examples));
  for (int64_t i = options.first; i < last; ++i) {
    const uint8_t* mask = v.masks + v.offsets[i];
    const auto targets = std::count_if(mask, mask + v.length(i), [](uint8_t m) { return m != 0; });
    s += fmt::format("\n== example {} of {}: {} tokens, {} trained on ==\n", i, v.num_examples, v.length(i), targets);
    s += masked_example_text(tok, v, i, options.color) + "\n";
    if (options.tokens) s += example_token_table(tok, v, i);
  }
  return s + "\n" + statistics(data, config);
}

}  // namespace mt
