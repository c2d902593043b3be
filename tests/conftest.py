import os
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if os.geteuid() == 0:
    # sweep refuses root (sweep/submit/identity.py) unless told that root works on its own files with the
    # local backend only: the tests outside tests/condor do just that, in root's own temporary
    # folders, in this process and in the sweep commands they start. The pool tests run sweep as
    # the pool's job owner (tests/condor/owner.py), without this.
    os.environ["SWEEP_ALLOW_ROOT"] = "1"
POOL_TESTS = REPO / "tests" / "condor"
#: Modules whose tests share a module-scoped fixture that costs a training: one xdist worker runs
#: each of them whole (a module fixture is made once per worker that runs the module's tests).
MODULE_SCOPED = {"tests/test_job.py"}
#: The pool tests in two pieces of about equal length (a pool each, on two workers): the sweep
#: tests; the rest (searches, the chain, the pool itself). A module not named here joins the last.
POOL_GROUPS = {"pool-sweeps": {"tests/condor/test_sweep_on_pool.py"}}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test under tests/condor is a `pool` test. The longest come first: the pool tests (each
    piece a worker's whole share), then those that train, then the slow ones, then the rest, each
    kind in the order collected. xdist hands tests out in this order, so on a machine of few cores
    the short tests fill the last minutes instead of one long training that started late. (Every
    worker collects the same order: the sort depends on the markers alone.)"""
    for item in items:
        if POOL_TESTS in item.path.parents:
            item.add_marker(pytest.mark.pool)
    kinds = ("pool", "training", "slow")
    items.sort(key=lambda item: next((k for k, kind in enumerate(kinds) if item.get_closest_marker(kind)),
                                     len(kinds)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With xdist (scripts/test.sh: `-n N --dist load`), the tests under tests/condor go to the workers
    in POOL_GROUPS pieces: each piece's worker starts its own personal pool once (the session
    fixture), and its tests share it, while they mostly wait on HTCondor; the other workers run the
    rest beside them, a test at a time, except the modules of MODULE_SCOPED, a module at a time
    (their module fixture, such as test_job's trained run, is made once). (xdist's own `--dist
    loadgroup` renames node ids, which pytest 9.2 no longer takes: its groups fall apart silently.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    prefix = POOL_TESTS.relative_to(config.rootpath).as_posix() + "/"

    class PoolTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            if nodeid.startswith(prefix):
                return next((group for group, modules in POOL_GROUPS.items() if module in modules), "pool")
            return module if module in MODULE_SCOPED else nodeid

    return PoolTestsTogether(config, log)


BASE_GRID = """\
sweep: t
model: lstm
data:
  path: data/x.npz
params:
  batch_size: 150
axes:
  optimizer: [adam, sgd]
  topology:
    - [32, 64, 1]
    - [96, 128, 1]
"""


@pytest.fixture
def write_grid(tmp_path):
    """Write a grid file (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "grid.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """A small real simulated dataset (a few thousand balanced windows, 600 waveforms)."""
    from sweep.physics.datasets import simulate_to_file

    path = tmp_path_factory.mktemp("data") / "small.npz"
    simulate_to_file(path, 600, seed=11)
    # outside every test's project: the tests' grids read it from there, as a user allows a data
    # folder on shared storage (tests/test_hostile_grids.py checks it is refused without this)
    os.environ["SWEEP_DATA_ROOTS"] = str(path.parent)
    return path


def wait_until(predicate, timeout: float, what: str, interval: float = 1.0):
    """Poll `predicate` every `interval` seconds until it returns something true, and return that;
    an AssertionError naming `what` after `timeout` seconds. A wait on an event, not a timing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


#: For a stand-in job (a test's own wrapper template): `$part`, the run's own part of its
#: configuration as JSON, decoded from the job's `--run` argument ($3) as sweep.core.runconfig
#: encodes it (URL-safe base64 without padding).
RUN_PART_SH = ('part=$(printf "%s" "$3" | tr "_-" "/+"); n=$(printf "%s" "$part" | wc -c); '
               'while [ $((n % 4)) -ne 0 ]; do part="$part="; n=$((n + 1)); done; '
               'part=$(printf "%s" "$part" | base64 -d)\n')  # no ${#...}: the wrapper is a Jinja template


def grid_text(dataset, sweep="e2e", axes="  optimizer: [adam, rmsprop]\n", extra="", epochs=2, max_samples=5000):
    return (f"sweep: {sweep}\nmodel: lstm\nseed: 5\n"
            f"data: {{path: {dataset}, max_samples: {max_samples}}}\n"
            f"params: {{topology: [32, 64, 1], epochs: {epochs}, patience: 5, batch_size: 150, learning_rate: 0.005}}\n"
            f"axes:\n{axes}"
            f"resources: {{request_cpus: 1, request_memory: 1GB, runtime: 10m}}\n" + extra)
