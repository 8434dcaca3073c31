#!/usr/bin/env bash
# Set everything up, fetch and verify the real MNIST / Fashion-MNIST files (a no-op
# once they are in the cache), and run the whole test suite (verify/ and tests/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m nets.data fetch
.venv/bin/python -m pytest verify/ tests/ "$@"
