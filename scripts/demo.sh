#!/usr/bin/env bash
# The main job on the embedded default, on CPU, in minutes: set up, build, then run the demo MAIN
# pipeline (configs/demo.yaml): a checkable task suite and its SentencePiece tokenizer, a tiny
# LLaMA-architecture model from random weights, seed models, a mutual alignment round, synthesis,
# the mutual filter against the baselines, final models, and the report.
#   scripts/demo.sh [RUN_DIR]     (default: a new folder under /tmp; an existing run is resumed)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
"$here/setup.sh"
MT_BUILD_TARGET=maintune "$here/build.sh"  # the binary only: the tests are scripts/test.sh's
bin="${MT_BUILD_DIR:-$root/build}/maintune"
run="${1:-$(mktemp -d /tmp/maintune-demo.XXXXXX)/run}"
resume=()
[ -f "$run/pipeline.yaml" ] && resume=(--resume)
echo "== maintune pipeline --config configs/demo.yaml --run-dir $run ${resume[*]}"
"$bin" pipeline --config "$root/configs/demo.yaml" --run-dir "$run" "${resume[@]}"
echo "== $run/report/summary.json"
cat "$run/report/summary.json"
echo "== the report: $run/report/report.md (SVG plots beside it)"
