#!/usr/bin/env bash
# Set everything up and run the main job: the Proposition 3.1 report, then the paper's
# experiments at the `quick` profile (REPORT.md under results/local/quick/).
# PROFILE=paper bash scripts/main.sh runs the exact protocol instead (resumable).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p results
.venv/bin/python -m theory.spectral_flow --json results/spectral_flow.json --plot results/spectral_flow.png
.venv/bin/python -m nets.data fetch
# The newcomer's run goes to its own git-ignored folder (RESULTS, default results/local), so the
# committed results under results/<profile>/ stay as they are and `git status` stays clean.
# PROFILE=paper starts from hard links to the paper checkpoints (restored from the history) (atomic writes replace a
# file, never write into it, so the committed ones are never changed) and resumes from them.
PROFILE="${PROFILE:-quick}"
RESULTS="${RESULTS:-results/local}"
if [ "$PROFILE" = paper ] && [ ! -e "$RESULTS/paper/checkpoints" ]; then
    # the paper checkpoints live in the repository's history: bring them back, verified
    .venv/bin/python -m nets checkpoints restore --profile paper
    mkdir -p "$RESULTS/paper"
    cp -al results/paper/checkpoints "$RESULTS/paper/checkpoints" 2>/dev/null \
        || cp -a results/paper/checkpoints "$RESULTS/paper/checkpoints"
fi
.venv/bin/python -m nets reproduce --profile "$PROFILE" --results "$RESULTS" "$@"
echo "Your run's results: $RESULTS/$PROFILE/REPORT.md (figures and JSON beside it); the committed ones, to compare with: results/$PROFILE/REPORT.md"
