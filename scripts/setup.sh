#!/usr/bin/env bash
# Set up sweep on a fresh machine (idempotent): a virtual environment in .venv with sweep,
# TensorFlow (CPU), the htcondor2 bindings, the test tools and the docs tools. Run again with
# pyproject.toml unchanged, it installs nothing (a stamp in .venv records what was installed).
#
# The interpreter: jobs on an HTCondor pool run as an unprivileged user, who must be able to
# run .venv/bin/python, i.e. reach the base interpreter it links to. A Python installed under a
# private home (pyenv in /root, mode 700) is not reachable, so a Python 3.11+ that every user
# can reach (Debian's /usr/bin/python3.11) is preferred. PYTHON=... overrides.
set -euo pipefail
cd "$(dirname "$0")/.."

reachable_by_all() {  # every ancestor of the interpreter's real path is o+x
  local p
  p=$(readlink -f "$1") || return 1
  while [ "$p" != "/" ]; do
    p=$(dirname "$p")
    [ $(( 0$(stat -c %a "$p") & 1 )) -eq 1 ] || return 1
  done
}
usable() {  # Python >= 3.11 with venv, reachable by all
  [ -x "$1" ] && "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    && reachable_by_all "$1"
}

if [ -z "${PYTHON:-}" ]; then
  for candidate in /usr/bin/python3.11 /usr/local/bin/python3.11 /usr/bin/python3 "$(command -v python3.11 || true)"; do
    if [ -n "$candidate" ] && usable "$candidate"; then PYTHON=$candidate; break; fi
  done
  PYTHON=${PYTHON:-python3}
fi
if [ -x .venv/bin/python ]; then
  base=$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')
  if ! reachable_by_all "$base/bin" && usable "$PYTHON"; then
    echo "setup: .venv is built on $base, which unprivileged job owners cannot reach; rebuilding on $PYTHON"
    rm -rf .venv
  fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# HTCondor's personal pool (tests, demo) needs patchelf on Debian 12, where the condor package is
# unpacked into a private prefix (tools/condor_pool.py); Debian 13 installs condor itself.
if [ "$(id -u)" = 0 ] && ! command -v patchelf >/dev/null && command -v apt-get >/dev/null; then
  apt-get update -qq >/dev/null && apt-get install -y -qq patchelf >/dev/null \
    || echo "setup: could not install patchelf; the HTCondor tests need it on Debian 12" >&2
fi
# The report's browser test renders report.html in headless Chromium (Debian's package).
if [ "$(id -u)" = 0 ] && ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; } \
    || echo "setup: could not install chromium; tests/test_report.py needs it" >&2
fi
stamp=".venv/.sweep-setup-$(sha256sum pyproject.toml | cut -c1-16)"
# uv (from PyPI, into .venv) installs the same releases as pip in a third of the time (32 s against
# 94 s here, cold caches: it unpacks TensorFlow's wheels in parallel). It compiles the bytecode at
# install, as pip does: where PYTHONDONTWRITEBYTECODE is set (these machines), Python never writes
# it, and an uncompiled TensorFlow costs every process 6 s of CPU more. Where uv cannot be had or
# fails (a site that only allows its own index through pip's configuration, which uv does not read),
# pip does it. SWEEP_SETUP_PIP=1 asks for pip.
pip_install() {
  .venv/bin/python -m pip install -q "$@" 2>&1 | grep -v "is ignored" || true
}
if [ ! -f "$stamp" ]; then
  if [ -z "${SWEEP_SETUP_PIP:-}" ] && pip_install uv && .venv/bin/python -m uv --version >/dev/null 2>&1 \
      && .venv/bin/python -m uv pip install -q --compile-bytecode --python .venv/bin/python -e ".[test,docs]"; then
    :
  else
    pip_install --upgrade pip
    pip_install -e ".[test,docs]"
  fi
fi
# What was just installed is imported once (TensorFlow: 5 s of CPU); an environment set up before
# (the stamp is there: scripts/test.sh after .ci/run's own setup) is only checked to hold them.
if [ -f "$stamp" ]; then
  check='import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))'
else
  check='import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]'
fi
.venv/bin/python -c "$check" sweep htcondor2 tensorflow pytest xdist mkdocs material 2>/dev/null \
  || { rm -f .venv/.sweep-setup-*; echo "setup: the Python environment is incomplete (see pip's messages above)" >&2; exit 1; }
rm -f .venv/.sweep-setup-* && touch "$stamp"
echo "setup: .venv ready ($(.venv/bin/python --version) from $(.venv/bin/python -c 'import sys; print(sys.base_prefix)'), sweep $(.venv/bin/python -c 'import sweep; print(sweep.__version__)'))"
