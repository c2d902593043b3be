#!/usr/bin/env bash
# The demo: set up, then run a small real sweep end to end (4 LSTM peak finders trained on a
# simulated He/iC4H10 dataset) and print the ranked leaderboard with the jobs' resource use.
#
# Where it runs: on your HTCondor pool if a schedd is reachable; otherwise on a personal
# loopback-only HTCondor pool started for the demo (tools/condor-pool, needs root + apt), stopped
# afterwards; otherwise on this machine with the local backend.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
sweep=.venv/bin/sweep

if .venv/bin/python -c "from sweep.submit.backends.htcondor import reachable; import sys; sys.exit(not reachable(5))" 2>/dev/null; then
  exec $sweep submit grids/demo.yaml --condor --wait --no-progress "$@"
fi
if [ "$(id -u)" = 0 ] && .venv/bin/python tools/condor_pool.py start --root .condor-pool; then
  trap '.venv/bin/python tools/condor_pool.py stop --root .condor-pool >/dev/null' EXIT
  eval "$(.venv/bin/python tools/condor_pool.py env --root .condor-pool)"
  if $sweep submit grids/demo.yaml --condor --wait --no-progress "$@"; then
    exit 0
  fi
  echo "demo: the personal pool did not take the sweep; running it on this machine instead" >&2
fi
# not exec: the EXIT trap must still stop a personal pool started above
$sweep submit grids/demo.yaml --local "$@"
