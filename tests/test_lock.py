"""The sweep lock (records.lock) and the manifest writers that take it: one command at a time
decides and writes for a sweep, and concurrent writers lose nothing. Real processes, real files."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import pytest

from sweep.core.errors import LockedError
from sweep.core.names import LOCK_FILE
from sweep.records.lock import sweep_lock
from sweep.records.manifest import Manifest, read_manifest, remember_memory, save_manifest, update_submission
from tests.conftest import REPO

HOLD = """
import sys, time
from pathlib import Path
from sweep.records.lock import sweep_lock
with sweep_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold_in_another_process(folder, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_waits_then_gets_a_clear_error(tmp_path):
    proc = _hold_in_another_process(tmp_path, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(LockedError) as err:
            with sweep_lock(tmp_path, timeout=1.0):
                pass
        assert time.monotonic() - t0 >= 1.0  # it waited for the holder its whole timeout before giving up
        message = str(err.value)
        assert f"pid {proc.pid}" in message and socket.gethostname() in message and LOCK_FILE in message
    finally:
        proc.kill()
        proc.wait()


def test_the_lock_is_taken_as_soon_as_the_holder_ends(tmp_path):
    proc = _hold_in_another_process(tmp_path, 1.0)
    t0 = time.monotonic()
    with sweep_lock(tmp_path, timeout=30):
        waited = time.monotonic() - t0
    proc.wait()
    assert waited > 0.3  # it waited for the holder (taken as soon as it ended, well within the timeout)
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_killed_holder_leaves_a_lock_that_is_broken(tmp_path):
    proc = _hold_in_another_process(tmp_path, 60)
    proc.kill()  # SIGKILL: no cleanup, the lock file stays
    proc.wait()
    assert (tmp_path / LOCK_FILE).exists()
    with sweep_lock(tmp_path, timeout=2):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid()


def test_a_lock_of_another_host_is_broken_only_when_its_heartbeat_stopped(tmp_path):
    lock = tmp_path / LOCK_FILE
    lock.write_text(json.dumps({"host": "elsewhere.example", "pid": 1, "since": time.time()}))
    with pytest.raises(LockedError):  # fresh: its holder may be alive on that host
        with sweep_lock(tmp_path, timeout=0.5, stale_after=60):
            pass
    old = time.time() - 120
    os.utime(lock, (old, old))
    with sweep_lock(tmp_path, timeout=0.5, stale_after=60):  # no heartbeat for 2 minutes: broken
        assert json.loads(lock.read_text())["host"] == socket.gethostname()


def test_the_heartbeat_keeps_a_long_hold_fresh(tmp_path):
    with sweep_lock(tmp_path, stale_after=2):
        lock = tmp_path / LOCK_FILE
        old = time.time() - 100
        os.utime(lock, (old, old))
        time.sleep(1.2)  # the heartbeat runs every stale_after / 4 (at least 1 s)
        assert time.time() - lock.stat().st_mtime < 2


def test_reentrant_and_leaves_no_folder_it_made(tmp_path):
    folder = tmp_path / "jobs" / "new"
    with sweep_lock(folder):
        with sweep_lock(folder):  # a writer called by a command that holds it
            assert (folder / LOCK_FILE).exists()
        assert (folder / LOCK_FILE).exists()
    assert not folder.exists() and not folder.parent.exists()  # made for the lock, empty again: removed
    folder.mkdir(parents=True)
    with sweep_lock(folder):
        (folder / "keep").write_text("x")
    assert (folder / "keep").exists() and not (folder / LOCK_FILE).exists()


def _writer(folder: str, tag: str, n: int) -> None:
    from pathlib import Path

    for i in range(n):
        update_submission(Path(folder), f"{tag}{i}", backend="htcondor", runs=[f"{tag}{i}"])
        remember_memory(Path(folder), {f"{tag}{i}": 100 + i})


def test_concurrent_manifest_writers_lose_nothing(tmp_path):
    save_manifest(tmp_path, Manifest(sweep="s"))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), tag, 25)) for tag in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    manifest = read_manifest(tmp_path)
    assert len({s.id for s in manifest.submissions}) == 75
    assert len(manifest.learned_memory_mb) == 75
    assert not (tmp_path / LOCK_FILE).exists()
