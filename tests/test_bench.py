"""Every bench/ script still runs (issue 21): benchmarks rot when nothing runs them.

Each bench/bench_*.py runs as its own process at its smoke size (``--smoke``: tiny sizes, every
part and variant of the script) in a temporary working folder, with its output folders pointed
there too, and must exit 0 having printed its figures. No figure is asserted: speed lives in
bench/, tests never time things. A new script without ``--smoke`` fails here.

Marks: the benches that start their own HTCondor pool are ``pool`` (they need root, and fail
without it, never skip; their pool is their own, so they run beside the session pool's tests);
those that train Keras models are ``training``; the other ones over ~5 s are ``slow``.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
SCRIPTS = sorted(BENCH.glob("bench_*.py"))

#: seconds a smoke run may take before it is stopped (they take seconds to about a minute; a
#: loaded CI machine is several times slower than an idle one)
TIMEOUT_S = 300
#: after a timeout: how long a script has to stop its pool after SIGTERM before it is killed
GRACE_S = 60

POOL = (pytest.mark.pool,)  # their own pool, not the session's: they run beside the pool tests
TRAINING = (pytest.mark.training,)
SLOW = (pytest.mark.slow,)

#: per script: its marks and the options that point whatever it writes at the test's folders
#: (`tmp`: a private temporary folder; `pool_tmp`: one that the pool's job owner can enter)
CASES = {
    "bench_cli": ((), lambda tmp, pool_tmp: []),
    "bench_cluster_limit": (SLOW, lambda tmp, pool_tmp: []),
    "bench_collect": (SLOW, lambda tmp, pool_tmp: []),
    "bench_counting": ((), lambda tmp, pool_tmp: []),
    "bench_condor_submit": (POOL, lambda tmp, pool_tmp: ["--pool-dir", str(pool_tmp / "pool")]),
    "bench_evaluate": (TRAINING, lambda tmp, pool_tmp: ["--out", str(tmp / "out")]),
    "bench_deploy": (TRAINING, lambda tmp, pool_tmp: []),
    "bench_faults": (POOL, lambda tmp, pool_tmp: ["--dir", str(pool_tmp)]),
    "bench_hostile": (SLOW, lambda tmp, pool_tmp: []),
    "bench_job_cost": (TRAINING, lambda tmp, pool_tmp: ["--dir", str(tmp / "work")]),
    "bench_makespan": (POOL, lambda tmp, pool_tmp: ["--dir", str(pool_tmp)]),
    "bench_hostile_outputs": (SLOW, lambda tmp, pool_tmp: []),
    "bench_packing": (TRAINING, lambda tmp, pool_tmp: []),
    "bench_render": ((), lambda tmp, pool_tmp: ["--dir", str(tmp / "render")]),
    "bench_search": (TRAINING, lambda tmp, pool_tmp: ["--root", str(tmp / "project")]),
    "bench_simulator": ((), lambda tmp, pool_tmp: []),
    "bench_throughput": (TRAINING, lambda tmp, pool_tmp: ["--dir", str(tmp / "build")]),
    "bench_trainer": (TRAINING, lambda tmp, pool_tmp: []),
}


def _no_options(tmp: Path, pool_tmp: Path) -> list[str]:
    return []


def _params():
    for script in SCRIPTS:
        marks, _ = CASES.get(script.stem, ((), _no_options))  # a new script: no marks, no options
        yield pytest.param(script, marks=list(marks), id=script.stem)


def _condor_pool_module():
    """tools/condor_pool.py (as tests/condor/conftest.py loads it, once per process)."""
    if "condor_pool" not in sys.modules:
        spec = importlib.util.spec_from_file_location("condor_pool", REPO / "tools" / "condor_pool.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["condor_pool"] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules["condor_pool"]


def _stop_pools_under(folder: Path) -> list[str]:
    """Stop every pool left under `folder` (a bench killed before its clean-up); the roots of
    those that were still running."""
    running = []
    for config in folder.rglob("condor_config"):
        try:
            pool = _condor_pool_module().Pool(config.parent)
            if pool.is_running() or pool.pids():
                running.append(str(config.parent))
            pool.stop()
        except Exception as e:  # noqa: BLE001 - clean-up: report, go on
            running.append(f"{config.parent} (could not stop it: {e})")
    return running


def _environment(tmp: Path | None) -> dict[str, str]:
    """This process's environment without a pool the test session may have set up (the condor
    tests' CONDOR_CONFIG and the like) and, but for the pool benches, temporary files in `tmp`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("_CONDOR_") and k not in ("CONDOR_CONFIG", "SWEEP_CONDOR_POOL", "SWEEP_DATA_ROOTS")}
    if tmp is not None:
        tmp.mkdir()
        env["TMPDIR"] = str(tmp)
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int | None, str, str]:
    """Run the script in its own process group: (exit status or None on timeout, stdout, stderr).
    On a timeout the group gets SIGTERM (a pool bench then stops its pool), then SIGKILL."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        return None, out, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("script", list(_params()))
def test_bench_smoke(script: Path, tmp_path: Path):
    # a script that reads no options would run at full size, ignoring --smoke
    assert '"--smoke"' in script.read_text(), f"{script.name} has no --smoke option (tiny sizes, issue 21)"
    marks, options = CASES.get(script.stem, ((), _no_options))
    starts_pool = marks is POOL
    if starts_pool and os.geteuid() != 0:
        pytest.fail(f"{script.name} starts its own HTCondor pool, whose jobs run as an unprivileged owner: "
                    "it needs root (run the pool tests as root)", pytrace=False)
    # the pool's job owner must enter the pool's folder: not pytest's private tmp_path (mode 700)
    pool_tmp = Path(tempfile.mkdtemp(prefix="sweep-bench-pool-")) if starts_pool else None
    leftovers, running = [], []
    try:
        if pool_tmp is not None:
            pool_tmp.chmod(0o755)
        argv = [sys.executable, str(script), "--smoke", *options(tmp_path, pool_tmp)]
        status, out, err = _run(argv, tmp_path, _environment(None if starts_pool else tmp_path / "tmp"))
    finally:
        if pool_tmp is not None:  # whatever happened: no pool left running, no folder left behind
            leftovers = sorted(p.name for p in pool_tmp.iterdir())
            running = _stop_pools_under(pool_tmp)
            shutil.rmtree(pool_tmp, ignore_errors=True)
    said = f"\n--- stdout (end) ---\n{out[-4000:]}\n--- stderr (end) ---\n{err[-6000:]}"
    if status is None:
        pytest.fail(f"{script.name} --smoke did not end within {TIMEOUT_S} s{said}", pytrace=False)
    assert status == 0, f"{' '.join(argv)} exited with {status}{said}"
    assert out.strip(), f"{script.name} --smoke printed no figures{said}"
    assert not running, f"{script.name} left its pool running: {running}{said}"
    assert not leftovers, f"{script.name} did not remove its pool's folder: {leftovers} in {pool_tmp}{said}"
