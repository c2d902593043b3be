#!/usr/bin/env bash
# Set up, then run the whole test suite (the command CI runs). xdist workers: one more than the
# cores (at most 5), because one of them runs the pool tests, which mostly wait on HTCondor: they
# share that worker and one personal pool while the others run the rest beside them (see
# pytest_xdist_make_scheduler in tests/conftest.py). The 25 slowest tests are listed at the end.
# Tiers: .venv/bin/pytest -m "not pool and not training" is the inner loop (see pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
workers=$(( $(nproc) + 1 ))
exec .venv/bin/python -m pytest -q -n $(( workers < 5 ? workers : 5 )) --dist load --durations=25 "$@"
