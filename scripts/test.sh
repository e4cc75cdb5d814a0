#!/usr/bin/env bash
# Set up (idempotent), build, and run every test under CTest. The output ends with CTest's summary.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
"$here/setup.sh"
"$here/build.sh"
cd "${MT_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "$(nproc)" "$@"
