// The config schema: every key of PipelineConfig (the TrainConfig sections, then the pipeline's) and of
// a data source entry, with its check, doc and resume rule. A data table, long by nature (one entry per key); key_def.h defines its entries.
#include <algorithm>
#include <limits>

#include "models/chat_template.h"
#include "trainer/config/key_def.h"
#include "trainer/method/mutual_filter.h"

namespace mt::config_detail {

// The YAML key and the struct field, written once: "section.field" and an accessor for it.
#define MT_KEY(section, field) #section "." #field, [](auto& c) -> auto& { return c.section.field; }
#define MT_SOURCE_KEY(field) #field, [](auto& s) -> auto& { return s.field; }

// Keys of one data.sources / data.eval_sources entry (all fixed: eval_sources is safe as a whole).
const std::vector<KeyDef<DataSourceConfig>>& source_keys() {
  auto key = [](auto&&... args) { return make_key<DataSourceConfig>(std::forward<decltype(args)>(args)...); };
  static const std::vector<KeyDef<DataSourceConfig>> keys = {
      key(MT_SOURCE_KEY(path), path_value(true),
          "The data file (JSON array, JSONL or plain text). An entry may also be just this path.", kFixed,
          "(required)"),
      key(MT_SOURCE_KEY(format),
          one_of({"auto", "alpaca", "alpaca_seed", "messages", "prompt_response", "prompt_completion", "prompts",
                  "mt_bench", "text_jsonl", "text"}),
          "The reader (docs/data.md); auto = detected from the first record.", kFixed),
      key(MT_SOURCE_KEY(instruction_field), field_name(), "alpaca, alpaca_seed: the instruction field.", kFixed),
      key(MT_SOURCE_KEY(input_field), field_name(), "alpaca, alpaca_seed: the optional input field.", kFixed),
      key(MT_SOURCE_KEY(output_field), field_name(), "alpaca, alpaca_seed: the response field.", kFixed),
      key(MT_SOURCE_KEY(prompt_field), field_name(), "prompt_response, prompt_completion, prompts: the prompt field.",
          kFixed),
      key(MT_SOURCE_KEY(response_field), field_name(), "prompt_response: the response field.", kFixed),
      key(MT_SOURCE_KEY(completion_field), field_name(),
          "prompt_completion (TRL): the completion field, a string or a list of assistant messages.", kFixed),
      key(MT_SOURCE_KEY(messages_field), field_name(), "messages (OpenAI): the list of {role, content} turns.",
          kFixed),
      key(MT_SOURCE_KEY(role_field), field_name(), "messages (OpenAI), prompt and completion lists: a turn's role field.",
          kFixed),
      key(MT_SOURCE_KEY(content_field), field_name(),
          "messages (OpenAI), prompt and completion lists: a turn's content field.", kFixed),
      key(MT_SOURCE_KEY(sharegpt_field), field_name(), "messages (ShareGPT): the list of {from, value} turns.",
          kFixed),
      key(MT_SOURCE_KEY(sharegpt_role_field), field_name(), "messages (ShareGPT): a turn's role field.", kFixed),
      key(MT_SOURCE_KEY(sharegpt_content_field), field_name(), "messages (ShareGPT): a turn's text field.",
          kFixed),
      key(MT_SOURCE_KEY(system_field), field_name(),
          "The optional per-record system prompt field (every conversation format but mt_bench).", kFixed),
      key(MT_SOURCE_KEY(turns_field), field_name(), "mt_bench: the list of user turns.", kFixed),
      key(MT_SOURCE_KEY(instances_field), field_name(), "alpaca_seed: the list of {input, output} instances.",
          kFixed),
      key(MT_SOURCE_KEY(text_field), field_name(), "text_jsonl: the text field.", kFixed),
      key(MT_SOURCE_KEY(system_prompt), any_value(),
          "System prompt added to conversations that have none; \"\" = none.", kFixed),
      key(MT_SOURCE_KEY(answers_path), path_value(),
          "mt_bench: a FastChat answers JSONL joined by question_id, making full conversations; \"\" = "
          "prompts only.",
          kFixed),
      key(MT_SOURCE_KEY(min_chars), at_least(0),
          "text, text_jsonl: shorter segments are dropped (Unicode characters).", kFixed),
      key(MT_SOURCE_KEY(max_chars), at_least(1),
          "text, text_jsonl: the longest segment (Unicode characters); at least min_chars.", kFixed),
      key(MT_SOURCE_KEY(synthetic), any_value(),
          "Examples of this source are synthetic: with training.synthetic_weight they form the synthetic term of "
          "the loss.",
          kFixed),
      key(MT_SOURCE_KEY(on_malformed), one_of({"fail", "skip"}),
          "Bad records of this source: fail (stop, naming FILE:LINE) or skip (and count them).", kFixed,
          "data.on_malformed"),
      key(MT_SOURCE_KEY(max_line_bytes), at_least(1), "Longer JSONL / text lines are malformed records.",
          kFixed),
      key(MT_SOURCE_KEY(max_file_bytes), at_least(1),
          "The largest JSON array or plain-text file (these are read whole), in bytes.", kFixed),
  };
  return keys;
}

// Keys of the run config: the TrainConfig sections (train_key), then the pipeline's (pipeline_key).
// The first column is the pipeline stage whose key first holds the key's value (FirstReader).
const std::vector<KeyDef<PipelineConfig>>& config_keys() {
  auto train_key = [](FirstReader reader, auto&&... args) {
    auto k = make_train_key(std::forward<decltype(args)>(args)...);
    k.first_reader = reader;
    return k;
  };
  auto pipeline_key = [](FirstReader reader, auto&&... args) {
    auto k = make_key<PipelineConfig>(std::forward<decltype(args)>(args)...);
    k.first_reader = reader;
    return k;
  };
  static const std::vector<KeyDef<PipelineConfig>> keys = {
      // model
      train_key(kSeedAndDemo, MT_KEY(model, path), path_value(),
          "The base model: a Hugging Face model dir (config.json and safetensors weights; config.json alone "
          "with init: random). Required.",
          kFixed),
      train_key(kSeed, MT_KEY(model, tokenizer), path_value(), "Tokenizer dir or file; \"\" = model.path.", kFixed),
      train_key(kSeed, MT_KEY(model, init), one_of({"pretrained", "random"}),
          "pretrained loads the weights; random initializes them from config.json.", kFixed),
      train_key(kSeed, MT_KEY(model, dtype), one_of({"bfloat16", "float32"}, {{"bf16", "bfloat16"}, {"fp32", "float32"}}),
          "Compute dtype.", kFixed),
      train_key(kSeed, MT_KEY(model, pure_bf16), any_value(),
          "Weights and optimizer state in bf16, with no fp32 master copy (less memory, coarser updates).",
          kFixed),
      train_key(kSeed, MT_KEY(model, activation_checkpointing), any_value(),
          "Recompute each decoder layer in the backward pass instead of keeping its activations.", kFixed),
      train_key(kSeed, MT_KEY(model, device), one_of({"auto", "cpu", "cuda"}), "auto = cuda when available.", kResumeSafe),
      // data
      train_key(kSeed, MT_KEY(data, sources), any_value(),
          "Training data: a list of entries, each a path or a map of the data.sources[] keys below. At least "
          "one (checked when the run starts).",
          kFixed),
      train_key(kSeed, MT_KEY(data, eval_sources), any_value(),
          "Held-out eval data: entries as in data.sources. Exclusive with data.eval_fraction.", kResumeSafe),
      train_key(kSeed, MT_KEY(data, eval_fraction), in_range(0, 1, true),
          "Fraction of the training examples held out for eval when data.eval_sources is empty; 0 = no eval.",
          kFixed),
      train_key(kSeed, "data.template", [](auto& c) -> auto& { return c.data.template_name; },
          one_of(with_auto_and_from_model(chat_template_names())),
          "Chat template; auto = detected from the tokenizer; from_model = the model's own chat_template, which "
          "must be one of these templates' official Jinja (else an error).",
          kFixed),
      train_key(kSeed, MT_KEY(data, max_len), at_least(2), "Packed row length in tokens; no example is longer.", kFixed),
      train_key(kSeed, MT_KEY(data, packing), one_of({"first_fit", "sequential", "none"}),
          "Examples into rows: first_fit (densest), sequential (in order), none (one example per row).",
          kFixed),
      train_key(kSeed, MT_KEY(data, train_on_prompt), any_value(), "Train on every token but BOS, not only the assistant turns.",
          kFixed),
      train_key(kSeed, MT_KEY(data, too_long), one_of({"truncate", "drop"}),
          "An example over max_len: truncate keeps its first max_len tokens (and drops it when no response "
          "token survives); drop always drops it.",
          kFixed),
      train_key(kSeed, MT_KEY(data, on_malformed), one_of({"fail", "skip"}),
          "Bad records: fail (stop, naming FILE:LINE) or skip (and count them). The default of every "
          "source's on_malformed.",
          kFixed),
      train_key(kSeed, MT_KEY(data, shuffle), any_value(), "Shuffle the examples every epoch (a function of training.seed).",
          kFixed),
      train_key(kNoStage, MT_KEY(data, cache_dir), path_value(), "Token cache dir; \"\" = <run_dir>/cache.", kResumeSafe),
      // optimizer
      train_key(kSeed, MT_KEY(optimizer, lr), above(0), "Peak learning rate (AdamW).", kFixed),
      train_key(kSeed, MT_KEY(optimizer, beta1), in_range(0, 1, true), "AdamW first-moment decay.", kFixed),
      train_key(kSeed, MT_KEY(optimizer, beta2), in_range(0, 1, true), "AdamW second-moment decay.", kFixed),
      train_key(kSeed, MT_KEY(optimizer, eps), above(0), "AdamW denominator epsilon.", kFixed),
      train_key(kSeed, MT_KEY(optimizer, weight_decay), at_least(0), "Decoupled weight decay; never applied to norms and biases.",
          kFixed),
      train_key(kSeed, MT_KEY(optimizer, fused), any_value(), "ATen's fused AdamW kernel; false = the foreach reference.", kFixed),
      // schedule
      train_key(kSeed, MT_KEY(schedule, type), one_of({"constant", "linear", "cosine"}),
          "Learning-rate decay after warmup.", kFixed),
      train_key(kSeed, MT_KEY(schedule, warmup_steps), at_least(0), "Linear warmup over this many optimizer steps.", kFixed),
      train_key(kSeed, MT_KEY(schedule, min_lr_ratio), in_range(0, 1, false),
          "Final lr = optimizer.lr * min_lr_ratio (linear and cosine).", kFixed),
      // training
      train_key(kSeed, MT_KEY(training, max_steps), at_least(0), "Optimizer steps; 0 = from training.epochs.", kFixed),
      train_key(kSeed, MT_KEY(training, epochs), above(0),
          "Passes over the training data when max_steps is 0 (fractions allowed).", kFixed),
      train_key(kSeed, MT_KEY(training, micro_batch_size), at_least(1), "Rows per forward pass.", kFixed),
      train_key(kSeed, MT_KEY(training, grad_accum_steps), at_least(1), "Micro-batches per optimizer step.", kFixed),
      train_key(kSeed, MT_KEY(training, max_grad_norm), at_least(0), "Global gradient-norm clipping; 0 = off.", kFixed),
      train_key(kSeed, MT_KEY(training, seed), any_value(), "Seed of initialization, shuffling and the eval split.", kFixed),
      train_key(kNoStage, MT_KEY(training, eval_every), at_least(0),
          "Optimizer steps between evaluations; 0 = only at the end (when there is eval data).", kResumeSafe),
      train_key(kNoStage, MT_KEY(training, eval_max_batches), at_least(0), "Batches per evaluation; 0 = the whole eval split.",
          kResumeSafe),
      train_key(kNoStage, MT_KEY(training, checkpoint_every), at_least(0),
          "Optimizer steps between checkpoints; 0 = only at the end.", kResumeSafe),
      train_key(kSeed, MT_KEY(training, max_consecutive_nonfinite), at_least(1),
          "Stop after this many skipped (NaN/Inf) steps in a row.", kResumeSafe),
      train_key(kSeed, MT_KEY(training, loss_chunk_tokens), at_least(1),
          "Tokens per chunk of the chunked linear + cross-entropy (bounds the memory of the logits).", kFixed),
      train_key(kSeed, MT_KEY(training, synthetic_weight), off_or_in_range(-1, 0, 1),
          "alpha: loss = alpha * mean CE of synthetic-source targets + (1 - alpha) * mean CE of real targets of "
          "the window; -1 = off (one token mean over all targets). A window with targets of only one kind gives "
          "that kind weight 1.",
          kFixed),
      // output
      // alignment
      train_key(kAlignmentStages, MT_KEY(alignment, lambda_align), at_least(0),
          "Weight of the symmetric InfoNCE term of the alignment scorer (in-batch negatives); 0 = off.", kFixed),
      train_key(kAlignmentStages, MT_KEY(alignment, lambda_cons), at_least(0),
          "Weight of the consistency term: the scorer's pair scores against the pairs' forward log-likelihood "
          "(standardized), plus the agreement of the two InfoNCE directions; 0 = off. Both weights 0: plain SFT.",
          kFixed),
      train_key(kAlignmentStages, MT_KEY(alignment, signal), one_of({"pmi", "forward"}),
          "The likelihood signal the consistency term ranks pairs by (detached): pmi = (log p(R|I) - log p(R)) per "
          "response token, which by Bayes' rule also ranks pairs as the model's reverse likelihood log p(I|R) - "
          "log p(I) does; forward = the mean log p(R|I).",
          kFixed),
      train_key(kAlignmentStages, MT_KEY(alignment, pooling), one_of({"mean", "last"}),
          "How the final hidden states of an instruction or a response (each encoded alone) become one vector: "
          "mean over its tokens, or its last token.",
          kFixed),
      train_key(kAlignmentStages, MT_KEY(alignment, dim), at_least(1), "Embedding dimension of the two projection heads.", kFixed),
      train_key(kAlignmentStages, MT_KEY(alignment, temperature), above(0),
          "Temperature of the cosine scores (score = cosine / temperature): the initial value when learned.", kFixed),
      train_key(kAlignmentStages, MT_KEY(alignment, learn_temperature), any_value(),
          "Learn the temperature (as log(1/temperature), capped at 1/temperature = 100) with the heads.", kFixed),
      train_key(kAlignmentStages, MT_KEY(alignment, stages), list_of({"seed", "rounds", "final"}),
          "maintune pipeline: the trainings that get the alignment terms (stage-1 seed models, stage-2 rounds, "
          "stage-5 final models).",
          kFixed),
      train_key(kNoStage, MT_KEY(output, run_dir), path_value(),
          "The run's folder: checkpoints, logs, the final model. Required (or --run-dir).", kResumeSafe),
      train_key(kNoStage, MT_KEY(output, keep_last), at_least(0), "Checkpoints kept; 0 = all.", kResumeSafe),
      train_key(kNoStage, "output.export", [](auto& c) -> auto& { return c.output.export_final; }, any_value(),
          "Write final/ as a Hugging Face model dir at the end.", kResumeSafe),
      train_key(kNoStage, MT_KEY(output, export_every), at_least(0),
          "Optimizer steps between exports to exports/step_NNNNNNN (Hugging Face model dirs as final/, all kept; "
          "the last step's is final/); 0 = none.",
          kResumeSafe),
      train_key(kSeed, MT_KEY(output, export_dtype), one_of({"auto", "bfloat16", "float32", "float16"}),
          "dtype of the exported weights; auto = the base checkpoint's.", kResumeSafe),
      train_key(kNoStage, MT_KEY(output, max_shard_bytes), at_least(1), "Largest safetensors shard of the export, in bytes.",
          kResumeSafe),
      // logging
      train_key(kNoStage, MT_KEY(logging, log_every), at_least(1), "Optimizer steps between plain log lines.", kResumeSafe),
      train_key(kNoStage, MT_KEY(logging, progress), one_of({"auto", "bar", "lines", "none"}),
          "auto = a bar on a TTY, log lines otherwise; none = no step progress (messages and warnings still print).", kResumeSafe),
      train_key(kNoStage, MT_KEY(logging, tensorboard), any_value(), "Write TensorBoard event files into the run dir.", kResumeSafe),
      // distributed (under torchrun; docs/distributed.md)
      train_key(kNoStage, MT_KEY(distributed, backend), one_of({"auto", "nccl", "gloo"}),
          "The c10d backend of a torchrun job: auto = nccl when the model is on CUDA, gloo on the CPU.", kResumeSafe),
      train_key(kNoStage, MT_KEY(distributed, bucket_mb), above(0),
          "MiB per flat bucket of the gradient all-reduce after each window (torch DDP's default is 25).",
          kResumeSafe),
      train_key(kNoStage, MT_KEY(distributed, timeout_s), at_least(1),
          "Seconds the rendezvous or one collective may wait for the other ranks before the run fails.", kResumeSafe),
      // pipeline (maintune pipeline; docs/method.md)
      pipeline_key(kSynthesis, MT_KEY(pipeline, unlabeled), any_value(),
          "Unlabeled responses for synthesis (stage 3): entries as in data.sources (text, text_jsonl, or pair "
          "formats whose responses are used). data.sources are the seed pairs, data.eval_sources the held-out "
          "pairs.",
          kFixed),
      pipeline_key(kSeedAndDemo, MT_KEY(pipeline, reverse_template), field_name(),
          "The reverse model's user turn: {response} is replaced by the response; the assistant turn is the "
          "instruction.",
          kFixed),
      pipeline_key(kSeed, MT_KEY(pipeline, seed_steps), at_least(1), "Optimizer steps of each seed model (stage 1).", kFixed),
      pipeline_key(kSeed, MT_KEY(pipeline, batch_size), at_least(1),
          "Sequences per generation and scoring batch (sampling seeds are per batch, so it is fixed for a run).",
          kFixed),
      pipeline_key(kSeed, MT_KEY(pipeline, chunk_size), at_least(1),
          "Records per progress chunk of generation and scoring: a kill loses at most one chunk.", kFixed),
      pipeline_key(kFilter, MT_KEY(pipeline, checker), one_of({"none", "demo_tasks"}),
          "Ground truth for alignment precision and exact-match accuracy: demo_tasks checks pairs of the demo "
          "task suite; none reports neither.",
          kFixed),
      pipeline_key(kFinal, MT_KEY(pipeline, eval_max_new_tokens), at_least(1),
          "Greedy decoding length for the held-out instructions (accuracy).", kFixed),
      // rounds
      pipeline_key(kRounds, MT_KEY(rounds, count), at_least(0), "Mutual alignment rounds K (stage 2); 0 = none.", kFixed),
      pipeline_key(kRounds, MT_KEY(rounds, steps), at_least(1), "Optimizer steps per model per round.", kFixed),
      pipeline_key(kRounds, MT_KEY(rounds, init), one_of({"continue", "restart"}),
          "Each round trains from the previous round's weights (continue) or from the base model (restart).",
          kFixed),
      pipeline_key(kRounds, MT_KEY(rounds, alpha_schedule), one_of({"constant", "linear", "adaptive"}),
          "alpha_k, the weight of the synthetic pairs: constant (rounds.alpha), linear (alpha_start to "
          "alpha_end over the rounds) or adaptive (from the held-out losses of the two sources; docs/method.md).",
          kFixed),
      pipeline_key(kRounds, MT_KEY(rounds, alpha), in_range(0, 1, false), "constant: alpha_k; adaptive: its upper bound.", kFixed),
      pipeline_key(kRounds, MT_KEY(rounds, alpha_start), in_range(0, 1, false), "linear: alpha_1.", kFixed),
      pipeline_key(kRounds, MT_KEY(rounds, alpha_end), in_range(0, 1, false), "linear: alpha_K.", kFixed),
      pipeline_key(kRounds, MT_KEY(rounds, temperature), above(0), "Sampling temperature of the synthetic halves.", kFixed),
      pipeline_key(kRounds, MT_KEY(rounds, top_p), in_range(0, 1, false), "Nucleus mass of the synthetic halves; 1 = off.", kFixed),
      pipeline_key(kRounds, MT_KEY(rounds, max_new_tokens), at_least(1), "Longest synthetic instruction or response.", kFixed),
      // synthesis
      pipeline_key(kSynthesis, MT_KEY(synthesis, candidates), at_least(1), "Instructions written per unlabeled response (stage 3).",
          kFixed),
      pipeline_key(kSynthesis, MT_KEY(synthesis, temperature), above(0), "Sampling temperature.", kFixed),
      pipeline_key(kSynthesis, MT_KEY(synthesis, top_p), in_range(0, 1, false), "Nucleus mass; 1 = off.", kFixed),
      pipeline_key(kSynthesis, MT_KEY(synthesis, top_k), at_least(0), "Keep the k most likely tokens; 0 = off.", kFixed),
      pipeline_key(kSynthesis, MT_KEY(synthesis, max_new_tokens), at_least(1), "Longest instruction written.", kFixed),
      // filter
      pipeline_key(kFilter, MT_KEY(filter, rule),
          one_of(filter_rule_names()),
          "The rule whose kept pairs stage 4 outputs: none (every candidate), forward (forward likelihood of the "
          "response), reverse (reverse likelihood of the instruction), mutual (both, plus the alignment scorer with "
          "filter.alignment_weight), self_curation (the seed forward model rates each pair 1-5), alignment (the "
          "learned alignment scorer of the last forward model: needs alignment.stages to train it).",
          kFixed),
      pipeline_key(kFilter, MT_KEY(filter, compare), list_of(filter_rule_names()),
          "Rules also applied to the same candidates with the same number of kept pairs as filter.rule, for the "
          "report.",
          kFixed),
      pipeline_key(kFilter, MT_KEY(filter, keep), one_of({"all", "threshold", "top_k", "quantile"}),
          "How many candidates filter.rule keeps: all, those scoring at least filter.threshold, the best "
          "filter.top_k, or the best filter.quantile fraction.",
          kFixed),
      pipeline_key(kFilter, MT_KEY(filter, threshold), any_value(), "keep: threshold: the lowest kept score (higher is better).",
          kFixed),
      pipeline_key(kFilter, MT_KEY(filter, top_k), at_least(0), "keep: top_k: pairs kept.", kFixed),
      pipeline_key(kFilter, MT_KEY(filter, quantile), in_range(0, 1, false), "keep: quantile: the fraction kept.", kFixed),
      pipeline_key(kFilter, MT_KEY(filter, forward_weight), at_least(0), "mutual: weight of the forward direction.", kFixed),
      pipeline_key(kFilter, MT_KEY(filter, reverse_weight), at_least(0), "mutual: weight of the reverse direction.", kFixed),
      pipeline_key(kFilter, MT_KEY(filter, alignment_weight), at_least(0),
          "mutual: weight of the alignment scorer's z-score (the last forward model's learned scorer; needs "
          "alignment.stages to train it); 0 = not used.",
          kFixed),
      pipeline_key(kFilter, MT_KEY(filter, normalize), one_of({"zscore", "none"}),
          "mutual: each direction's mean NLL as a z-score over the candidates, or raw.", kFixed),
      pipeline_key(kFilter, MT_KEY(filter, dedupe), any_value(),
          "Drop a candidate whose (instruction, response) repeats an earlier candidate's (whitespace runs "
          "collapsed).",
          kFixed),
      pipeline_key(kFilter, MT_KEY(filter, drop_seed_pairs), any_value(),
          "Also drop candidates equal to a seed pair (they add no new pair; kept by default so precision counts "
          "every correct instruction).",
          kFixed),
      pipeline_key(kFilterAndDemo, MT_KEY(filter, self_curation_template), field_name(),
          "self_curation: the rating prompt; {instruction} and {response} are replaced.", kFixed),
      // final
      pipeline_key(kFinal, "final.models", [](auto& c) -> auto& { return c.final_tuning.models; },
          list_of(filter_rule_names()),
          "Filter rules whose kept pairs (with the seed pairs) train a final model each (stage 5); each must be "
          "filter.rule or in filter.compare.",
          kFixed),
      pipeline_key(kFinal, "final.steps", [](auto& c) -> auto& { return c.final_tuning.steps; }, at_least(1),
          "Optimizer steps of each final model.", kFixed),
      pipeline_key(kFinal, "final.alpha", [](auto& c) -> auto& { return c.final_tuning.alpha; }, any_value(),
          "Weight of the synthetic pairs in the final loss (training.synthetic_weight); -1 = one token mean over "
          "all pairs.",
          kFixed),
      pipeline_key(kFinal, "final.source_tags", [](auto& c) -> auto& { return c.final_tuning.source_tags; }, any_value(),
          "Mark seed and synthetic pairs with a system sentence (final.seed_tag, final.synthetic_tag).", kFixed),
      pipeline_key(kFinalAndDemo, "final.seed_tag", [](auto& c) -> auto& { return c.final_tuning.seed_tag; }, field_name(),
          "source_tags: the system sentence of seed pairs (and of the accuracy evaluation).", kFixed),
      pipeline_key(kFinalAndDemo, "final.synthetic_tag", [](auto& c) -> auto& { return c.final_tuning.synthetic_tag; }, field_name(),
          "source_tags: the system sentence of synthetic pairs.", kFixed),
      // demo
      pipeline_key(kDemo, MT_KEY(demo, enabled), any_value(),
          "Generate the demo task suite (seed, unlabeled and held-out pairs) and train its SentencePiece "
          "tokenizer in stage0_demo/; data.sources, data.eval_sources, pipeline.unlabeled and model.tokenizer "
          "are then set by the pipeline.",
          kFixed),
      pipeline_key(kDemo, MT_KEY(demo, seed), any_value(), "Seed of the demo suite.", kFixed),
      pipeline_key(kDemo, MT_KEY(demo, seed_pairs), at_least(1), "Labeled seed pairs.", kFixed),
      pipeline_key(kDemo, MT_KEY(demo, unlabeled), at_least(1), "Unlabeled responses.", kFixed),
      pipeline_key(kDemo, MT_KEY(demo, eval_pairs), at_least(1), "Held-out pairs (accuracy).", kFixed),
      pipeline_key(kDemo, MT_KEY(demo, noise_fraction), in_range(0, 1, false),
          "Fraction of unlabeled responses that no instruction of the suite yields.", kFixed),
  };
  return keys;
}

#undef MT_KEY
#undef MT_SOURCE_KEY

const std::vector<std::string>& section_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& k : config_keys())
      if (std::find(out.begin(), out.end(), k.section()) == out.end()) out.push_back(k.section());
    return out;
  }();
  return names;
}

const KeyDef<PipelineConfig>* find_config_key(const std::string& path) {
  for (const auto& k : config_keys())
    if (k.path == path) return &k;
  return nullptr;
}

const KeyDef<DataSourceConfig>* find_source_key(const std::string& name) {
  for (const auto& k : source_keys())
    if (k.path == name) return &k;
  return nullptr;
}

}  // namespace mt::config_detail
