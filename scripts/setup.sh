#!/usr/bin/env bash
# Create .venv (if missing) and install the toolkit with its test and notebook extras.
# CPU machines get the pinned CPU build of torch first; set TORCH_SPEC to choose another
# (e.g. TORCH_SPEC="torch" on a CUDA machine, or TORCH_SPEC="" to keep what is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
TORCH_SPEC="${TORCH_SPEC-torch==2.13.0}"
if [ -n "$TORCH_SPEC" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check "$TORCH_SPEC"
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
