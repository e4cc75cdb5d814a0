# Sourced by the other scripts: finds the libtorch to build against (no installs here).
# Prefers an image Python that already has torch 2.11 (the GPU machine), else the venv that
# scripts/setup.sh makes in the user's cache directory, keyed by the pinned torch version.
MT_TORCH_VERSION=2.11.0
MT_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/maintune"
MT_VENV="$MT_CACHE_DIR/torch-$MT_TORCH_VERSION"

mt_torch_ok() {  # $1: a python; true if it imports torch 2.11.x
  "$1" -c "import torch,sys; sys.exit(0 if torch.__version__.startswith('2.11.') else 1)" 2>/dev/null
}

mt_find_python() {
  if [ -n "${MT_PYTHON:-}" ] && mt_torch_ok "$MT_PYTHON"; then echo "$MT_PYTHON"; return 0; fi
  if [ -x "$MT_VENV/bin/python" ] && mt_torch_ok "$MT_VENV/bin/python"; then echo "$MT_VENV/bin/python"; return 0; fi
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && mt_torch_ok "$(command -v "$p")"; then command -v "$p"; return 0; fi
  done
  return 1
}
