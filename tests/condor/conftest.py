"""Fixtures for tests that run jobs on a real, personal HTCondor pool.

``condor_pool`` (session scope) installs HTCondor (cached, see tools/condor_pool.py),
starts a loopback-only pool in a fresh /tmp/sweep-condor-pool-* folder, points this
process's htcondor2 bindings at it (CONDOR_CONFIG + IDTOKENS in-process, via
``condor_pool.client_setup``) and yields the ``Pool``. Every daemon is stopped at the
end of the session, also when tests fail. When HTCondor cannot be installed or the
pool does not come up, the fixture FAILS (never skips).

``condor_job_dir`` (function scope) is a fresh folder under the pool root that the
job owner (a dedicated user, ``sweeptest``, when the tests run as root) owns: use it as
initialdir. sweep itself runs as that owner (``tests/condor/owner.py``: ``sweep_cli``,
``run_sweep``), never as root.
``condor_pool_25`` (module scope) is a second pool of HTCondor 25.x (Debian sid's condor in
its own prefix, ``condor_pool.install_suite("sid")``, built once, ~20 s) in a folder of its own,
beside the session's pool when that one runs (each has its own LOCAL_DIR, locks and sockets and
a free collector port): while the module runs, this process's bindings and ``owner.POOL`` point at
it, and back at the session's pool after. Like the session's, it FAILS when it cannot be had.
Set SWEEP_CONDOR_KEEP=1 to keep the pool folder (logs) after the session. A SIGTERM to
pytest still stops the pool; pools left by killed (SIGKILL) sessions are stopped and
removed by the next session.
"""
from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest

from sweep.records.lock import process_start_time
from tests.condor import owner

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


def _reap_stale_pools() -> None:
    """Stop and delete pools of earlier sessions that were killed before their teardown
    (e.g. SIGKILL by a CI timeout). Pools of live sessions are left alone."""
    for root in Path(tempfile.gettempdir()).glob(ROOT_PREFIX + "*"):
        try:
            pid, started = (root / OWNER_FILE).read_text().split()
        except (OSError, ValueError):
            continue
        if process_start_time(int(pid)) == started or os.environ.get("SWEEP_CONDOR_KEEP"):
            continue
        try:
            _cp.Pool(root).stop()
        except Exception as e:  # noqa: BLE001 - clean-up of an earlier session's pool: report, go on
            print(f"could not stop stale pool {root}: {e}", file=sys.stderr)
            continue
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def condor_pool_fixture_root():
    _reap_stale_pools()
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
    root.chmod(0o755)  # the job owner must be able to traverse it
    (root / OWNER_FILE).write_text(f"{os.getpid()} {process_start_time(os.getpid())}\n")
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
    # a SIGTERM (CI timeout, `timeout`) must still run the teardown below
    old_term = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        with _running(pool, "personal HTCondor pool") as running:
            yield running
    finally:
        signal.signal(signal.SIGTERM, old_term)


@pytest.fixture(scope="module")
def condor_pool_25(condor_pool_fixture_root):
    """A running personal pool of HTCondor 25.x (see the module docstring): 2 nominal CPUs, 4 GB."""
    try:
        inst = _cp.install_suite("sid")
    except Exception as e:  # noqa: BLE001 - any install failure must fail loudly
        pytest.fail(f"HTCondor 25.x (Debian sid's condor) could not be installed for the 25.x pool tests "
                    f"(needs apt-get + network to deb.debian.org + dpkg-deb + patchelf): {e}", pytrace=False)
    root = condor_pool_fixture_root / "pool-25"
    root.mkdir(mode=0o755, exist_ok=True)
    pool = _cp.Pool(root, installation=inst, cpus=2, memory_mb=4096)
    with _running(pool, "personal HTCondor 25.x pool") as running:
        yield running


@contextlib.contextmanager
def _running(pool, what: str):
    """`pool` started (the tests FAIL, saying `what`, when it cannot start), with this process's
    bindings and owner.POOL pointed at it; after, the environment, the bindings' configuration and
    owner.POOL as they were (another pool's, or none), the pool stopped and no process of it left."""
    atexit.register(_quiet_stop, pool)  # e.g. the session is killed between yield and teardown
    try:
        pool.start(timeout=90)
    except Exception as e:  # noqa: BLE001 - whatever stops the start fails the tests, with its message
        _quiet_stop(pool)
        pytest.fail(f"{what} did not start: {e}", pytrace=False)
    import htcondor2

    saved_env, saved_pool = dict(os.environ), owner.POOL
    saved_auth = htcondor2.param.get("SEC_CLIENT_AUTHENTICATION_METHODS")
    _cp.client_setup(pool)
    owner.POOL = pool
    try:
        yield pool
    finally:
        owner.POOL = saved_pool
        os.environ.clear()
        os.environ.update(saved_env)
        htcondor2.reload_config()
        if saved_auth is not None:  # another pool's in-process setting (client_setup)
            htcondor2.param["SEC_CLIENT_AUTHENTICATION_METHODS"] = saved_auth
        pool.stop()
        left = pool.pids()
        assert not left, f"condor processes of the {what} left after stop: {left}"


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _quiet_stop(pool) -> None:
    try:
        pool.stop()
    except Exception as e:  # noqa: BLE001 - clean-up: report, go on
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
                pytest.fail(f"{parent} is not searchable by the HTCondor job owner: jobs could not "
                            f"run this checkout's Python; move the checkout or chmod o+x {parent}", pytrace=False)


@pytest.fixture
def project(condor_pool, condor_job_dir, small_dataset):
    """A project folder the job owner can reach, with the dataset in data/."""
    (condor_job_dir / "data").mkdir()
    shutil.copy(small_dataset, condor_job_dir / "data" / "small.npz")
    condor_pool.prepare_dir(condor_job_dir)
    return condor_job_dir


#: How long a test's teardown waits for its jobs to leave the queue and its slots to be freed
#: (a removed DAG removes its nodes, a shadow cleans up, the startd re-advertises: seconds).
SETTLE_TIMEOUT = 90


def pool_leftovers(pool, timeout: float = SETTLE_TIMEOUT) -> list[str]:
    """What keeps the pool from being as a test found it, after waiting up to `timeout` seconds
    for it to settle: jobs in the queue (the pool is this session's: any job is a test's) and
    slot resources not returned to the partitionable slot. [] when it is as found."""
    import time

    import htcondor2

    deadline = time.monotonic() + timeout
    while True:
        problems = []
        jobs = htcondor2.Schedd().query(constraint="true", projection=[
            "ClusterId", "ProcId", "JobStatus", "JobUniverse", "Owner", "SweepName", "SweepRole", "Cmd"])
        problems += [f"job {ad['ClusterId']}.{ad['ProcId']} (status {ad.get('JobStatus')}, universe "
                     f"{ad.get('JobUniverse')}, sweep {ad.get('SweepName')}, role {ad.get('SweepRole')}, "
                     f"{ad.get('Cmd')}) is still in the queue" for ad in jobs]
        slots = htcondor2.Collector().query(htcondor2.AdType.Startd, projection=[
            "Name", "SlotType", "Cpus", "Memory", "State", "Activity"])
        for ad in slots:
            if ad.get("SlotType") != "Partitionable":
                problems.append(f"slot {ad.get('Name')} ({ad.get('State')}/{ad.get('Activity')}, {ad.get('Cpus')} "
                                f"CPUs, {ad.get('Memory')} MB) is still carved out of the partitionable slot")
            elif ad.get("Cpus") != pool.cpus or ad.get("Memory") != pool.memory_mb:
                problems.append(f"the partitionable slot has {ad.get('Cpus')} of {pool.cpus} CPUs and "
                                f"{ad.get('Memory')} of {pool.memory_mb} MB free")
        if len([ad for ad in slots if ad.get("SlotType") == "Partitionable"]) != 1:
            problems.append(f"{len(slots)} slot ads, expected one partitionable slot: {[dict(a) for a in slots]}")
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(1)


@pytest.fixture(autouse=True)
def pool_left_as_found(request):
    """Every test that used the pool leaves it as it found it, checked at its own teardown (after
    the test's own clean-up fixtures): no job left in the queue, every slot free. A test that
    leaves something fails here, naming it, and the leftovers are removed so that the next test
    does not discover them."""
    if "condor_pool" not in request.fixturenames:
        yield
        return
    pool = request.getfixturevalue("condor_pool")
    yield
    problems = pool_leftovers(pool)
    if problems:
        pool.tool("condor_rm", "-all")
        pool.tool("condor_rm", "-all", "-forcex")
        still = pool_leftovers(pool, timeout=30)
        pytest.fail("the test left the pool as it did not find it:\n  " + "\n  ".join(problems)
                    + ("\nand after condor_rm -all:\n  " + "\n  ".join(still) if still else ""), pytrace=False)
