#!/usr/bin/env bash
# Fuzzes a parser with libFuzzer + ASan/UBSan for ${1:-60} seconds: target ${2:-safetensors_header}
# (the safetensors header, seeds fuzz/seeds/) or json_read (the bounded JSON parse of every config,
# tokenizer file and record, seeds fuzz/seeds_json/). Builds build-fuzz/fuzz_TARGET (clang, no
# torch), seeds build-fuzz/corpus_TARGET, runs, and ends with libFuzzer's final stats. Crash inputs
# land in build-fuzz/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"
target="${2:-safetensors_header}"
case "$target" in
  safetensors_header) sources="models/safetensors_header.cpp models/json_read.cpp"; seeds=fuzz/seeds ;;
  json_read) sources="models/json_read.cpp"; seeds=fuzz/seeds_json ;;
  *) echo "fuzz: unknown target '$target' (safetensors_header or json_read)" >&2; exit 2 ;;
esac
mkdir -p "build-fuzz/corpus_$target"
# -fno-sanitize-recover: a UBSan report stops the run like a crash instead of scrolling past.
# shellcheck disable=SC2086
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
  $sources "fuzz/fuzz_$target.cpp" -o "build-fuzz/fuzz_$target"
cp "$seeds"/* "build-fuzz/corpus_$target/"
cd build-fuzz
status=0
"./fuzz_$target" -max_total_time="${1:-60}" -print_final_stats=1 -artifact_prefix=./ "corpus_$target" \
  >"fuzz_$target.log" 2>&1 || status=$?
grep -E '^(#[0-9]+ +DONE|stat::|==[0-9]+==|SUMMARY|Done )' "fuzz_$target.log" || tail -20 "fuzz_$target.log"
if [ "$status" -ne 0 ]; then
  echo "fuzz: finding (exit $status); see build-fuzz/fuzz_$target.log and build-fuzz/crash-*" >&2
  exit 1
fi
