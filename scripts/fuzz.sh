#!/usr/bin/env bash
# Fuzzes the safetensors header parser with libFuzzer + ASan/UBSan for ${1:-60} seconds.
# Builds build-fuzz/fuzz_safetensors_header (clang, no torch), seeds build-fuzz/corpus from
# fuzz/seeds/, runs, and ends with libFuzzer's final stats. Crash inputs land in build-fuzz/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"
mkdir -p build-fuzz/corpus
# -fno-sanitize-recover: a UBSan report stops the run like a crash instead of scrolling past.
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. \
  models/safetensors_header.cpp fuzz/fuzz_safetensors_header.cpp -o build-fuzz/fuzz_safetensors_header
cp fuzz/seeds/* build-fuzz/corpus/
cd build-fuzz
status=0
./fuzz_safetensors_header -max_total_time="${1:-60}" -print_final_stats=1 -artifact_prefix=./ corpus \
  >fuzz.log 2>&1 || status=$?
grep -E '^(#[0-9]+ +DONE|stat::|==[0-9]+==|SUMMARY|Done )' fuzz.log || tail -20 fuzz.log
if [ "$status" -ne 0 ]; then
  echo "fuzz: finding (exit $status); see build-fuzz/fuzz.log and build-fuzz/crash-*" >&2
  exit 1
fi
