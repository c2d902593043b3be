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
  # sets SWEEP_JOB_OWNER (the pool's dedicated user) and its own SWEEP_IDTOKENS_DIR: sweep, started
  # as root, becomes that user before it touches a file; so the project is a folder of the owner's
  eval "$(.venv/bin/python tools/condor_pool.py env --root .condor-pool)"
  project=.condor-pool/demo-project
  .venv/bin/python -c "import sys; sys.path.insert(0, 'tools'); import condor_pool as c; c.Pool(sys.argv[1]).prepare_dir(sys.argv[2])" \
    .condor-pool "$project"
  if $sweep --root "$project" submit grids/demo.yaml --condor --wait --no-progress "$@"; then
    echo "demo: the sweep's files are in $project (the job owner's, $SWEEP_JOB_OWNER)"
    exit 0
  fi
  echo "demo: the personal pool did not take the sweep; running it on this machine instead" >&2
  unset SWEEP_JOB_OWNER SWEEP_IDTOKENS_DIR
fi
# root here: on root's own checkout with the local backend only (SWEEP_ALLOW_ROOT, docs/explanation/root.md);
# not exec: the EXIT trap must still stop a personal pool started above
if [ "$(id -u)" = 0 ]; then export SWEEP_ALLOW_ROOT=1; fi
$sweep submit grids/demo.yaml --local "$@"
