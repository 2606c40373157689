#!/usr/bin/env bash
# Create .venv (if missing) and install seqrl into it with its test extra. Idempotent.
# torch is installed first and pinned (TORCH_SPEC, default torch==2.13.0): on machines with a local
# CPU build that takes it, and a plain `torch` would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
.venv/bin/python -m pip install -q -e ".[test]"
echo "seqrl installed in $(pwd)/.venv"
