#!/usr/bin/env bash
# Idempotent, non-interactive set-up of everything maintune builds against:
#  - Debian packages (where apt-get exists and a package is missing),
#  - libtorch 2.11.0: an existing Python with torch 2.11 (the GPU image) is used as is; otherwise
#    the PyPI torch wheel goes into a venv in the user's cache directory (reused by later clones).
# Prints what it found and what it did.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"

DEB_PACKAGES=(build-essential cmake ninja-build ccache pkg-config python3-venv
              libyaml-cpp-dev libfmt-dev libsentencepiece-dev nlohmann-json3-dev catch2 clang
              libgloo-dev)  # gloo headers: torch's c10d Gloo backend (CPU data parallelism)

if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: Debian packages present: ${DEB_PACKAGES[*]}"
  fi
else
  echo "setup: no apt-get here; expecting yaml-cpp, fmt, sentencepiece, nlohmann-json, Catch2 installed (gloo optional)"
fi

if py="$(mt_find_python)"; then
  echo "setup: using torch $("$py" -c 'import torch; print(torch.__version__)') from $py"
else
  echo "setup: no torch $MT_TORCH_VERSION found; creating venv $MT_VENV from PyPI"
  mkdir -p "$MT_CACHE_DIR"
  base_py="$(command -v python3)"
  "$base_py" -m venv "$MT_VENV"
  "$MT_VENV/bin/pip" install -q --upgrade pip
  "$MT_VENV/bin/pip" install -q "torch==$MT_TORCH_VERSION" numpy
  py="$MT_VENV/bin/python"
  echo "setup: installed torch $("$py" -c 'import torch; print(torch.__version__)') into $MT_VENV"
fi
# Python references: tests check that transformers / safetensors load what we write; the fixture,
# tokenizer-vector and benchmark scripts use sentencepiece, tiktoken and tokenizers. protobuf:
# transformers reads a SentencePiece tokenizer.model (llama2 / mistral exports) through it.
if ! "$py" -c "import safetensors, numpy, transformers, sentencepiece, tiktoken, unicodedata2, google.protobuf" 2>/dev/null; then
  if [ "$py" = "$MT_VENV/bin/python" ]; then
    echo "setup: installing safetensors, numpy, transformers==5.17.0, sentencepiece, tiktoken, unicodedata2, protobuf into $MT_VENV"
    "$MT_VENV/bin/pip" install -q safetensors numpy "transformers==5.17.0" sentencepiece tiktoken "unicodedata2==16.0.0" protobuf
  else
    echo "setup: $py lacks some of safetensors/numpy/transformers/sentencepiece/tiktoken/protobuf; Python interop tests may fail"
  fi
fi
echo "setup: torch CMake prefix: $("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
echo "setup: done"
