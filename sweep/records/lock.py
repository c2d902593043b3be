"""One sweep command at a time on a sweep's folder: an NFS-safe lock file.

`sweep submit`, `sweep resubmit`, the DAG's collect node and `sweep report` read the schedd and
the manifest, decide, and write. Two of them at once could queue every run twice or lose a
manifest entry, so each holds jobs/<sweep>/.sweep.lock while it decides and writes.

The lock file is created with O_CREAT | O_EXCL, which is atomic on local file systems and on NFS
v3 and later (Optuna's JournalFileOpenLock does the same). It holds who took it (host, pid,
command, when). While held, a heartbeat thread refreshes its modification time. A lock is broken,
by renaming it away (atomic, so only one waiter wins), when its holder is a dead process on this
host, or when it has not been refreshed for `stale_after` seconds (a holder on another host that
died). Within one process the lock is reentrant, so a command that holds it can call writers
that take it too.

The holder is a record (:class:`LockHolder`), written and read by this module alone. Schema
versions: 0, lock files written before they carried ``schema_version`` (read as 1); 1, the
same keys with ``schema_version``. A lock file that is empty or not JSON is being written, or
garbage: it is judged by its age.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import LockedError
from ..core.names import LOCK_FILE
from .base import Fields, JsonObject, Migration, NewerRecordError, RecordError, migrate, to_json

SCHEMA_VERSION = 1

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_STALE_AFTER_S = 120.0

_held: dict[Path, int] = {}  # lock path -> depth, for this process
_held_guard = threading.Lock()


def _start_time(pid: int) -> str | None:
    """A process's start time (clock ticks since boot, /proc): with the pid, it names the process
    even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[19]


@dataclass
class LockHolder:
    """Who holds a sweep's lock: host, pid (with its process's start time, which names it even
    after the pid is reused), since when, and the command."""

    host: str | None = None
    pid: int | None = None
    started: str | None = None
    since: float = 0.0
    command: str | None = None

    def to_json(self) -> JsonObject:
        """The record's JSON object (schema_version first)."""
        return to_json(self, SCHEMA_VERSION)

    @classmethod
    def from_json(cls, data: JsonObject, path: str | Path = LOCK_FILE) -> LockHolder:
        """A holder from its JSON object, of any schema version up to this sweep's.

        Raises:
            RecordError: written by a newer sweep, or a key of the wrong type.
        """
        f = Fields(migrate(path, data, SCHEMA_VERSION, MIGRATIONS), path)
        return cls(host=f.opt_text("host"), pid=f.opt_integer("pid", lo=0), started=f.opt_text("started"),
                   since=f.opt_number("since", finite=True) or 0.0, command=f.opt_text("command"))

    @classmethod
    def me(cls) -> LockHolder:
        """This process."""
        return cls(host=socket.gethostname(), pid=os.getpid(), started=_start_time(os.getpid()), since=time.time(),
                   command=" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300])


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _read_holder(path: Path) -> LockHolder | None:
    """The lock's holder; None when there is no lock file; an unknown holder (judged by the
    file's age) when it is being written, or garbage.

    Raises:
        NewerRecordError: the holder was written by a newer sweep.
    """
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return LockHolder()  # being written, or garbage: judged by its age
    if not isinstance(data, dict):
        return LockHolder()
    try:
        return LockHolder.from_json(data, path)
    except NewerRecordError:
        raise
    except RecordError:
        return LockHolder()


def _stale(path: Path, holder: LockHolder, stale_after: float) -> bool:
    if holder.host == socket.gethostname() and holder.pid is not None:
        pid = holder.pid
        started = holder.started
        return not _pid_alive(pid) or (started is not None and _start_time(pid) not in (None, started))
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age > stale_after


def _describe(holder: LockHolder | None) -> str:
    if holder is None or holder == LockHolder():
        return "another sweep command"
    since = time.strftime("%H:%M:%S", time.localtime(holder.since))
    return f"{holder.command or 'a sweep command'} (pid {holder.pid} on {holder.host}, since {since})"


@contextmanager
def sweep_lock(folder: Path, timeout: float = DEFAULT_TIMEOUT_S,
               stale_after: float = DEFAULT_STALE_AFTER_S) -> Iterator[Path]:
    """Hold the lock of a sweep's folder (jobs/<sweep>/) for the duration of the block.

    Args:
        folder: the sweep's jobs folder; created if missing, and removed again on release (with
            the parents the lock created) when still empty: a failed first submit leaves nothing.
        timeout: seconds to wait for another holder before giving up.
        stale_after: seconds without a heartbeat after which a lock of another host is broken.

    Yields:
        The lock file's path.

    Raises:
        LockedError: another live command held the lock for `timeout` seconds (named).
        NewerRecordError (a ResultsError): the lock is held by a newer sweep, whose lock file this
            sweep cannot judge.
    """
    path = folder.resolve() / LOCK_FILE
    with _held_guard:
        if path in _held:
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _held_guard:
                _held[path] -= 1
        return
    created = [p for p in [folder, *folder.parents] if not p.exists()]  # innermost first
    folder.mkdir(parents=True, exist_ok=True)
    _acquire(path.parent, timeout, stale_after)
    with _held_guard:
        _held[path] = 1
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(path, stop, max(1.0, stale_after / 4)), daemon=True)
    beat.start()
    try:
        yield path
    finally:
        stop.set()
        beat.join()
        with _held_guard:
            del _held[path]
        path.unlink(missing_ok=True)
        for made in created:  # the folders the lock made, while they are still empty
            try:
                made.rmdir()
            except OSError:
                break


def _acquire(folder: Path, timeout: float, stale_after: float) -> None:
    """Create `folder`/.sweep.lock with this process as its holder, breaking a stale one, waiting
    for a live one (up to `timeout` seconds)."""
    path = folder / LOCK_FILE
    deadline = time.monotonic() + timeout
    delay = 0.05
    text = json.dumps(LockHolder.me().to_json())
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read_holder(path)
            if holder is not None and _stale(path, holder, stale_after):
                _break(path)
                continue
            if time.monotonic() > deadline:
                raise LockedError(f"sweep folder {path.parent} is busy: {_describe(holder)} holds {path.name}; "
                                  f"waited {timeout:.0f}s. Try again when it has finished") from None
            time.sleep(delay)
            delay = min(1.0, delay * 1.5)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return


def _break(path: Path) -> None:
    """Take a stale lock away: rename it to a unique name (only one waiter can), then delete it."""
    aside = path.with_name(f"{path.name}.stale.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # someone else broke it first
    aside.unlink(missing_ok=True)


def _heartbeat(path: Path, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        try:
            os.utime(path)
        except OSError:
            return
