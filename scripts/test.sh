#!/usr/bin/env bash
# Set up, then run the whole test suite (the command CI runs). xdist workers: two more than the
# cores (at most 6), because two of them run the pool tests, which mostly wait on HTCondor: each
# of the two runs its share on a personal pool of its own while the others run the rest beside them (see
# pytest_xdist_make_scheduler in tests/conftest.py). The 25 slowest tests are listed at the end.
# Tiers: .venv/bin/pytest -m "not pool and not training" is the inner loop (see pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The suite starts a few hundred Python processes (jobs, sweep commands, benches): let them write the
# checkout's bytecode once instead of compiling sweep again in each one where the machine sets
# PYTHONDONTWRITEBYTECODE (__pycache__/ is ignored by git).
unset PYTHONDONTWRITEBYTECODE
workers=$(( $(nproc) + 2 ))
exec .venv/bin/python -m pytest -q -n $(( workers < 6 ? workers : 6 )) --dist load --durations=25 "$@"
