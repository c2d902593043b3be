#!/usr/bin/env bash
# Set up, then run the whole test suite (the command CI runs): two xdist workers (at most four on a
# larger machine); the pool tests share one of them and one personal HTCondor pool while the other
# runs the rest beside them; the 25 slowest tests are listed at the end.
# Tiers: .venv/bin/pytest -m "not pool and not training" is the inner loop (see pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -n auto --maxprocesses 4 --dist load --durations=25 "$@"
