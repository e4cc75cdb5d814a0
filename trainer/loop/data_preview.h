// `maintune data preview`: what a run would train on, seen before paying for the run (axolotl's
// `preprocess --debug`). The training data is loaded exactly as `maintune train` loads it
// (load_training_data: the same readers, template, length policy and loader), then shown: examples
// with the loss mask marked, optionally every token, and the statistics of tokens, lengths,
// truncation, packing and steps.
#pragma once
#include <cstdint>
#include <string>

#include "models/tokenizer.h"
#include "trainer/config/config.h"
#include "trainer/data/examples.h"
#include "trainer/data/token_cache.h"

namespace mt {

struct PreviewOptions {
  int64_t first = 0;       // the first example shown (in the order the sources give them)
  int64_t count = 3;       // examples shown (0: statistics only)
  bool color = false;      // targets in ANSI green (synthetic in cyan) instead of [[ ]] / [[~ ]]
  bool tokens = false;     // also a table of every token: position, id, target, piece
  int64_t world_size = 1;  // for steps per epoch (the loader deals rows to ranks)
};

// Example `i`'s text with its targets marked. Each run of tokens of one mask value is the text the
// whole example's decode gives for it (the difference of prefix decodes), so spaces a tokenizer
// joins to the next piece stay where training sees them. Targets are wrapped in "[[" "]]" (a
// synthetic source's in "[[~" "]]"), or coloured.
std::string masked_example_text(const Tokenizer& tok, const DatasetView& data, int64_t i, bool color);

// One line per token of example `i`: position, id, mask value (0 / 1 target / 2 synthetic target)
// and the token's text as the example's decode has it (a word's leading space included),
// JSON-escaped so that whitespace and control bytes show.
std::string example_token_table(const Tokenizer& tok, const DatasetView& data, int64_t i);

// The preview of `config`'s training data: a header, the examples asked for, the statistics. The
// caches are used only where data.cache_dir names them (no run directory is made). Bad input is an
// mt::Error as in training; the readers' warnings go to `log`.
std::string data_preview(const TrainConfig& config, const PreviewOptions& options, const LogFn& log);

}  // namespace mt
