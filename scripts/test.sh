#!/usr/bin/env bash
# Set everything up and run the whole test suite (verify/ and tests/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest verify/ tests/ "$@"
