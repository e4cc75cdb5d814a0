#!/usr/bin/env bash
# Configures and builds maintune into build/ (or $MT_BUILD_DIR) with all cores, ccache and PCH.
# Extra arguments go to cmake's configure step (e.g. -DMAINTUNE_ASAN=ON). MT_BUILD_TARGET names one
# target to build instead of all (scripts/demo.sh builds only `maintune`, not the test suite).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
source "$here/env.sh"
py="$(mt_find_python)" || { echo "build: no torch $MT_TORCH_VERSION found; run scripts/setup.sh first" >&2; exit 1; }
prefix="$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
build="${MT_BUILD_DIR:-$root/build}"
# PCH and ccache: let ccache reuse objects compiled against a precompiled header.
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# Paths relative to the clone, so a fresh clone elsewhere (CI) hits the cache of an earlier one.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
mkdir -p "$build"
# torch's CMake config prints warnings that are not ours; keep them in a log, show it on failure.
if ! cmake -S "$root" -B "$build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DMT_PYTHON="$py" "$@" \
     >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "build: cmake configure failed (log: $build/configure.log)" >&2
  exit 1
fi
grep -E "^-- maintune:" "$build/configure.log" || true
targets=()
[ -n "${MT_BUILD_TARGET:-}" ] && targets=(--target "$MT_BUILD_TARGET")
cmake --build "$build" -j "$(nproc)" "${targets[@]}"
