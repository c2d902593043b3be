#!/usr/bin/env bash
# Set up sweep on a fresh machine (idempotent): a virtual environment in .venv with sweep,
# TensorFlow (CPU), the htcondor2 bindings and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import sweep, htcondor2, tensorflow" 2>/dev/null \
  || { echo "setup: the Python environment is incomplete (see pip's messages above)" >&2; exit 1; }
echo "setup: .venv ready ($(.venv/bin/python --version), sweep $(.venv/bin/python -c 'import sweep; print(sweep.__version__)'))"
