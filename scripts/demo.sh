#!/usr/bin/env bash
# The demo: set up, then run a small real sweep end to end (4 LSTM peak finders trained on a
# simulated He/iC4H10 dataset) and print the ranked leaderboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/sweep submit grids/demo.yaml --local "$@"
