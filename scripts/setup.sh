#!/usr/bin/env bash
# Create .venv (if missing) and install the toolkit with its test and notebook extras.
# torch is installed first from TORCH_SPEC (default torch==2.13.0; TORCH_SPEC="torch" on a
# CUDA machine, TORCH_SPEC="" to keep what is installed). TORCH_INDEX_URL (opt-in) names the
# index torch comes from, e.g. https://download.pytorch.org/whl/cpu for the CPU-only build
# (on Linux the default index serves the multi-GB CUDA build); unset, pip's default index is used.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
TORCH_SPEC="${TORCH_SPEC-torch==2.13.0}"
TORCH_INDEX=()
[ -n "${TORCH_INDEX_URL:-}" ] && TORCH_INDEX=(--index-url "$TORCH_INDEX_URL")
if [ -n "$TORCH_SPEC" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check ${TORCH_INDEX[@]+"${TORCH_INDEX[@]}"} "$TORCH_SPEC"
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
