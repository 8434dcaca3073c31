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
# torchvision, for the test that audits a torchvision ResNet-18 (tests/test_audit.py): the release
# made for the installed torch (torch 2.N pairs with torchvision 0.(N+15)), --no-deps so that it never
# replaces torch. TORCHVISION_SPEC="" skips it; where pip cannot install it, that test skips, saying why.
TORCHVISION_SPEC="${TORCHVISION_SPEC-auto}"
if [ "$TORCHVISION_SPEC" = auto ]; then
    TORCHVISION_SPEC="$(.venv/bin/python -c 'import torch; v = torch.__version__.split("+")[0].split("."); print(f"torchvision==0.{int(v[1]) + 15}.*" if v[0] == "2" else "")')"
fi
# From torch's own index (TORCH_INDEX_URL) where given: PyPI's Linux torchvision is built against CUDA
# torch, and beside a CPU torch `import torchvision` fails ("operator torchvision::nms does not exist").
if [ -n "$TORCHVISION_SPEC" ]; then
    if ! .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps ${TORCH_INDEX[@]+"${TORCH_INDEX[@]}"} \
            "$TORCHVISION_SPEC"; then
        echo "setup.sh: could not install $TORCHVISION_SPEC; the torchvision ResNet-18 test will skip" >&2
    elif ! .venv/bin/python -c "import torchvision" 2>/dev/null; then
        echo "setup.sh: $TORCHVISION_SPEC is installed but \`import torchvision\` fails (a build for another torch:" \
             "install it from torch's index, e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu); the tests" \
             "import torchvision.models without it" >&2
    fi
fi
