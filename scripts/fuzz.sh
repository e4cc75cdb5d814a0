#!/usr/bin/env bash
# Fuzzes a parser with libFuzzer + ASan/UBSan for ${1:-60} seconds: target ${2:-safetensors_header},
# one of fuzz/targets.txt (safetensors_header, json_read, hf_config, tokenizer_files, records,
# yaml_config; seeds in fuzz/seeds_TARGET). Builds build-fuzz/fuzz_TARGET (clang, no torch), seeds build-fuzz/corpus_TARGET, runs, and ends with libFuzzer's final stats. Crash inputs
# land in build-fuzz/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"
target="${2:-safetensors_header}"
# The target's sources and libraries, from fuzz/targets.txt (CMakeLists.txt reads it too).
tokenizer_sources="$(sed -n 's/^TOKENIZER_SOURCES = //p' fuzz/targets.txt)"
line="$(grep -E "^$target \\|" fuzz/targets.txt || true)"
if [ -z "$line" ]; then
  echo "fuzz: unknown target '$target' (known: $(grep -oE '^[a-z_]+ \|' fuzz/targets.txt | tr -d ' |' | tr '\n' ' '))" >&2
  exit 2
fi
sources="$(echo "$line" | cut -d'|' -f2)"
sources="${sources//TOKENIZER_SOURCES/$tokenizer_sources}"
libs=""
for lib in $(echo "$line" | cut -d'|' -f3); do libs="$libs -l$lib"; done
seeds=fuzz/seeds_$target
mkdir -p "build-fuzz/corpus_$target"
# -fno-sanitize-recover: a UBSan report stops the run like a crash instead of scrolling past.
# shellcheck disable=SC2086
clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DFMT_HEADER_ONLY=1 -I. \
  $sources "fuzz/fuzz_$target.cpp" -o "build-fuzz/fuzz_$target" $libs
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
