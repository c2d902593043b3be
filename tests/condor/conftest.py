"""Fixtures for tests that run jobs on a real, personal HTCondor pool.

``condor_pool`` (session scope) installs HTCondor (cached, see tools/condor_pool.py),
starts a loopback-only pool in a fresh /tmp/sweep-condor-pool-* folder, points this
process's htcondor2 bindings at it (CONDOR_CONFIG + IDTOKENS in-process, via
``condor_pool.client_setup``) and yields the ``Pool``. Every daemon is stopped at the
end of the session, also when tests fail. When HTCondor cannot be installed or the
pool does not come up, the fixture FAILS (never skips).

``condor_job_dir`` (function scope) is a fresh folder under the pool root that the
job owner (``nobody`` when the tests run as root) can write: use it as initialdir.
Set SWEEP_CONDOR_KEEP=1 to keep the pool folder (logs) after the session. A SIGTERM to
pytest still stops the pool; pools left by killed (SIGKILL) sessions are stopped and
removed by the next session.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import re
import shutil
import signal
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


ROOT_PREFIX = "sweep-condor-pool-"
OWNER_FILE = "pytest-owner"


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[19]


def _reap_stale_pools() -> None:
    """Stop and delete pools of earlier sessions that were killed before their teardown
    (e.g. SIGKILL by a CI timeout). Pools of live sessions are left alone."""
    for root in Path(tempfile.gettempdir()).glob(ROOT_PREFIX + "*"):
        try:
            pid, started = (root / OWNER_FILE).read_text().split()
        except (OSError, ValueError):
            continue
        if _start_time(int(pid)) == started or os.environ.get("SWEEP_CONDOR_KEEP"):
            continue
        try:
            _cp.Pool(root).stop()
        except Exception as e:  # noqa: BLE001
            print(f"could not stop stale pool {root}: {e}", file=sys.stderr)
            continue
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def condor_pool_fixture_root():
    _reap_stale_pools()
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
    root.chmod(0o755)  # the job owner must be able to traverse it
    (root / OWNER_FILE).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
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
    # a SIGTERM (CI timeout, `timeout`) must still run the teardown below
    old_term = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
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
        signal.signal(signal.SIGTERM, old_term)
        left = pool.pids()
        assert not left, f"condor processes left after stop: {left}"


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


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


@pytest.fixture(scope="session", autouse=True)
def checkout_reachable_by_job_owner():
    """Jobs run as the unprivileged owner, who must reach this checkout's .venv and package.

    A checkout inside a private temporary folder (e.g. `mktemp -d`, mode 700, as CI clones do)
    gets the search bit (o+x, not read) on those temporary folders only; anything else that
    blocks the owner fails the tests with the folder named.
    """
    if os.geteuid() != 0:
        return
    temp_root = Path(tempfile.gettempdir()).resolve()
    for target in (REPO, Path(sys.executable).parent):
        for parent in [target.resolve(), *target.resolve().parents]:
            if parent.stat().st_mode & 0o001:
                continue
            if temp_root in parent.parents and parent.stat().st_uid == os.geteuid():
                parent.chmod(parent.stat().st_mode | 0o001)
                print(f"made {parent} searchable (o+x) for the job owner", file=sys.stderr)
            else:
                pytest.fail(f"{parent} is not searchable by the HTCondor job owner (nobody): jobs could not "
                            f"run this checkout's Python; move the checkout or chmod o+x {parent}", pytrace=False)


@pytest.fixture
def project(condor_pool, condor_job_dir, small_dataset):
    """A project folder the job owner can reach, with the dataset in data/."""
    (condor_job_dir / "data").mkdir()
    shutil.copy(small_dataset, condor_job_dir / "data" / "small.npz")
    condor_pool.prepare_dir(condor_job_dir)
    return condor_job_dir
