"""The sweep lock (records.lock) and the manifest writers that take it: one command at a time
decides and writes for a sweep, and concurrent writers lose nothing. Real processes, real files."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
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


# ------------------------------------------------------------------ owner token, breaking, fencing
TAKE_AND_LOG = """
import json, os, sys, time
from pathlib import Path
from sweep.records.lock import sweep_lock
folder = Path(sys.argv[1])
print("waiting", flush=True)
with sweep_lock(folder, timeout=30):
    entered = time.time()
    # the work done under the lock, a window in which a second holder would show: a marker only one
    # holder can create (O_EXCL: a second one inside fails here, whatever the timing), and a
    # counter read and written back a few hundred times (a second holder would lose increments)
    inside = os.open(folder / "inside", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    counter = folder / "counter"
    for _ in range(300):
        counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
    os.close(inside)
    os.unlink(folder / "inside")
    left = time.time()
print(json.dumps({"entered": entered, "left": left}), flush=True)
"""


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _wait_for_wchan(pid: int, wchans: tuple[str, ...], what: str, unknown_s: float) -> None:
    """Until the process waits in the kernel in one of `wchans` (its /proc wchan says so);
    where wchan is not shown, `unknown_s` seconds."""
    start = time.monotonic()
    while time.monotonic() < start + 30:
        try:
            wchan = open(f"/proc/{pid}/wchan").read().strip()
        except OSError:
            wchan = "0"
        if wchan in wchans:
            return
        if wchan == "0" and time.monotonic() > start + unknown_s:
            return
        time.sleep(0.05)
    raise AssertionError(f"the waiter never {what}")


def test_a_waiter_that_judged_a_dead_holder_never_takes_the_lock_another_took_meanwhile(tmp_path):
    """The race: waiter A reads the lock of a dead holder; before A breaks it, B breaks it and
    takes the lock; A must not then break B's live lock. A is held at exactly that point by
    making the stale lock a FIFO: A's read blocks until the test writes the dead holder into it."""
    lock = tmp_path / LOCK_FILE
    os.mkfifo(lock)
    old = time.time() - 3600
    os.utime(lock, (old, old))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    a = subprocess.Popen([sys.executable, "-c", TAKE_AND_LOG, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                         text=True)
    try:
        assert a.stdout.readline().strip() == "waiting"
        # A is reading the FIFO: it has judged nothing yet
        _wait_for_wchan(a.pid, ("wait_for_partner", "fifo_open"), "reached the FIFO", unknown_s=5)
        aside = tmp_path / "stale-fifo"
        os.rename(lock, aside)  # B (this test) breaks the stale lock ...
        with sweep_lock(tmp_path, timeout=5):  # ... and takes the lock
            dead = {"host": socket.gethostname(), "pid": _dead_pid(), "since": old}
            with open(aside, "w") as fifo:  # A now reads a dead holder, and acts on what it read
                fifo.write(json.dumps(dead))
            # A has acted on it when it sleeps again between two tries at the lock
            _wait_for_wchan(a.pid, ("hrtimer_nanosleep", "do_nanosleep"), "went back to waiting", unknown_s=1.5)
            holder = json.loads(lock.read_text()) if lock.exists() else None
            assert holder is not None and holder["pid"] == os.getpid(), f"the lock of a live holder was taken: {holder}"
            released = time.time()
        entered = json.loads(a.stdout.readline())["entered"]
        assert a.wait(30) == 0
        assert entered >= released, "two holders at once"
    finally:
        a.kill()
        a.wait()


def test_release_leaves_a_lock_that_is_no_longer_its_own_and_says_so(tmp_path):
    lock = tmp_path / LOCK_FILE
    other = {"schema_version": 2, "host": "elsewhere.example", "pid": 7, "since": time.time(),
             "command": "sweep submit", "token": "theirs"}
    with pytest.raises(LockedError, match="lost its lock"):
        with sweep_lock(tmp_path, stale_after=60):
            lock.unlink()  # broken by a command on another host, which took it
            lock.write_text(json.dumps(other))
    assert json.loads(lock.read_text()) == other  # theirs is not removed


def test_a_lost_lock_is_never_silent_check_raises_and_writers_stop(tmp_path):
    save_manifest(tmp_path, Manifest(sweep="s"))
    with pytest.raises(LockedError, match="lost its lock"):
        with sweep_lock(tmp_path, stale_after=2) as held:
            held.check()  # held: fine
            (tmp_path / LOCK_FILE).unlink()  # someone removed it
            deadline = time.monotonic() + 15
            while held.lost is None and time.monotonic() < deadline:
                time.sleep(0.05)  # the heartbeat notices by itself (every stale_after / 4)
            assert held.lost, "the heartbeat did not notice"
            assert "removed" in held.lost or "not refreshed" in held.lost
            with pytest.raises(LockedError, match="lost its lock"):
                held.check()
            with pytest.raises(LockedError, match="lost its lock"):  # a manifest writer under it stops
                update_submission(tmp_path, "x", backend="htcondor", runs=["r"])
    assert read_manifest(tmp_path).submissions == []


STOPPED_HOLDER = """
import sys
from pathlib import Path
from sweep.core.errors import LockedError
from sweep.records.lock import sweep_lock
from sweep.records.manifest import update_submission
folder = Path(sys.argv[1])
try:
    with sweep_lock(folder, stale_after=2):
        print("held", flush=True)
        sys.stdin.readline()  # stopped here (Ctrl-Z) while another host breaks the lock
        update_submission(folder, "late", backend="htcondor", runs=["r1"], state="submitting")
        print("wrote", flush=True)
except LockedError as exc:
    print(f"stopped: {exc}", flush=True)
"""


def test_a_holder_stopped_past_the_stale_age_finds_its_lock_gone_and_writes_nothing(tmp_path):
    """Ctrl-Z on a shared NFS home: while the holder is stopped, a command on another host
    judges the lock stale and takes it. When the holder goes on, it must not write."""
    save_manifest(tmp_path, Manifest(sweep="s"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", STOPPED_HOLDER, str(tmp_path)], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "held"
        os.kill(proc.pid, signal.SIGSTOP)
        lock = tmp_path / LOCK_FILE
        aged = time.time() - 3  # stopped, it does not refresh the lock: as after 3 s without a heartbeat
        os.utime(lock, (aged, aged))
        assert time.time() - lock.stat().st_mtime > 2
        # the other host breaks it (rename away) and writes its own holder
        os.rename(lock, tmp_path / "broken")
        lock.write_text(json.dumps({"schema_version": 2, "host": "elsewhere.example", "pid": 7,
                                    "since": time.time(), "token": "theirs"}))
        os.kill(proc.pid, signal.SIGCONT)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out = proc.stdout.read()
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert out.startswith("stopped: sweep lost its lock"), out
    assert read_manifest(tmp_path).submissions == []  # the late intent record was never written
    assert json.loads(lock.read_text())["token"] == "theirs"


def test_two_processes_on_one_host_never_hold_it_together(tmp_path):
    """Six processes take the lock (breaking a dead holder's first) and log when they held it."""
    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(),
                                                  "since": time.time()}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", TAKE_AND_LOG, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(6)]
    held = []
    for p in procs:
        lines = p.communicate(timeout=120)[0].splitlines()
        record = json.loads(lines[-1])
        held.append((record["entered"], record["left"]))
        assert p.returncode == 0
    held.sort()
    assert all(later[0] >= earlier[1] for earlier, later in zip(held, held[1:], strict=False)), held  # one at a time
    assert (tmp_path / "counter").read_text() == str(6 * 300)  # no increment lost to a second holder
    assert not (tmp_path / LOCK_FILE).exists()


def test_the_lock_file_names_its_holder_with_a_token(tmp_path):
    with sweep_lock(tmp_path) as held:
        data = json.loads((tmp_path / LOCK_FILE).read_text())
        assert data["schema_version"] == 2 and data["host"] == socket.gethostname()
        assert data["pid"] == os.getpid() and len(data["token"]) == 32 and data["token"] == held.holder.token
        assert [p.name for p in tmp_path.iterdir()] == [LOCK_FILE]  # no temporary file left
