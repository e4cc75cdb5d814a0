#!/usr/bin/env bash
# The main job on the embedded default, on CPU, in minutes: set up, build, then generate from and
# score with the tiny LLaMA-3-style model in tests/fixtures/llama3 (a real HF model directory:
# sharded safetensors, llama3 rope scaling, GQA). This becomes the demo MAIN pipeline once the
# pipeline lands.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
"$here/setup.sh"
"$here/build.sh"
bin="${MT_BUILD_DIR:-$root/build}/maintune"
model="$root/tests/fixtures/llama3"
echo "== maintune generate (greedy, KV cache, 3 prompts of different lengths)"
"$bin" generate --model "$model" --data "$root/configs/demo_prompts.jsonl" --max-new-tokens 12
echo "== maintune generate (sampling: temperature 0.8, top-p 0.9, seed 7)"
"$bin" generate --model "$model" --data "$root/configs/demo_prompts.jsonl" --max-new-tokens 12 \
  --sample --temperature 0.8 --top-p 0.9 --seed 7
echo "== maintune score (NLL of target ids given prompt ids, fp32)"
"$bin" score --model "$model" --data "$root/configs/demo_pairs.jsonl"
