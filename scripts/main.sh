#!/usr/bin/env bash
# Set everything up and run the main job: the Proposition 3.1 report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p results
.venv/bin/python -m theory.spectral_flow --json results/spectral_flow.json --plot results/spectral_flow.png
