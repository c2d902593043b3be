"""Fixtures for tests that run jobs on a real, personal HTCondor pool.

``condor_pool`` (session scope) installs HTCondor (cached, see tools/condor_pool.py),
starts a loopback-only pool in a fresh /tmp/sweep-condor-pool-* folder, points this
process's htcondor2 bindings at it (CONDOR_CONFIG + IDTOKENS in-process, via
``condor_pool.client_setup``) and yields the ``Pool``. Every daemon is stopped at the
end of the session, also when tests fail. When HTCondor cannot be installed or the
pool does not come up, the fixture FAILS (never skips).

``condor_job_dir`` (function scope) is a fresh folder under the pool root that the
job owner (``nobody`` when the tests run as root) can write: use it as initialdir.
Set SWEEP_CONDOR_KEEP=1 to keep the pool folder (logs) after the session.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("condor_pool", REPO / "tools" / "condor_pool.py")
_cp = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("condor_pool", _cp)
_spec.loader.exec_module(_cp)


@pytest.fixture(scope="session")
def condor_pool_module():
    """The tools/condor_pool.py module (Pool, install, client_setup, ...)."""
    return _cp


@pytest.fixture(scope="session")
def condor_pool_fixture_root():
    root = Path(tempfile.mkdtemp(prefix="sweep-condor-pool-"))
    root.chmod(0o755)  # the job owner must be able to traverse it
    yield root
    if not os.environ.get("SWEEP_CONDOR_KEEP"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def condor_pool(condor_pool_fixture_root):
    try:
        inst = _cp.install()
    except Exception as e:  # noqa: BLE001 - any install failure must fail loudly
        pytest.fail(f"HTCondor could not be installed for the condor tests "
                    f"(needs apt-get + network to deb.debian.org + patchelf on Debian 12): {e}",
                    pytrace=False)
    pool = _cp.Pool(condor_pool_fixture_root, installation=inst, memory_mb=4096)
    atexit.register(_quiet_stop, pool)  # e.g. the session is killed between yield and teardown
    try:
        pool.start(timeout=90)
    except Exception as e:  # noqa: BLE001
        _quiet_stop(pool)
        pytest.fail(f"personal HTCondor pool did not start: {e}", pytrace=False)

    saved_env = dict(os.environ)
    htcondor2 = _cp.client_setup(pool)
    try:
        yield pool
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        htcondor2.reload_config()
        pool.stop()
        left = pool.pids()
        assert not left, f"condor processes left after stop: {left}"


def _quiet_stop(pool) -> None:
    try:
        pool.stop()
    except Exception as e:  # noqa: BLE001
        print(f"condor pool stop failed: {e}", file=sys.stderr)


@pytest.fixture
def condor_job_dir(condor_pool, request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]
    path = condor_pool.root / "jobs" / name
    if path.exists():
        shutil.rmtree(path)
    return condor_pool.prepare_dir(path)
