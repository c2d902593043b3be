"""One sweep command at a time on a sweep's folder: an NFS-safe lock file with an owner token.

`sweep submit`, `sweep resubmit`, the DAG's collect node and `sweep report` read the schedd and
the manifest, decide, and write. Two of them at once could queue every run twice or lose a
manifest entry, so each holds jobs/<sweep>/.sweep.lock while it decides and writes.

Taking it. The holder's record (who: host, pid, the process's start time, a random token) is
written and fsynced under a temporary name, then hard-linked to the lock's name: the link is an
atomic create-if-absent on local file systems and on NFS (the classic NFS lock), so the lock
file never exists half-written. (On a file system without hard links it is created in place
with O_CREAT | O_EXCL, as Optuna's JournalFileOpenLock does, and written at once.) Within
one process the lock is reentrant, so a command that holds it can call writers that take it too.

Breaking it. A lock is stale when its holder is a dead process on this host (its pid gone, or
reused by a process started at another time), or when it has not been refreshed for
`stale_after` seconds (a holder on another host that died). A waiter that judged it stale
renames it away (atomic: only one waiter wins) and then reads what it took: when that is not
the holder it judged (another waiter broke the stale lock and took the lock in between), it
puts it back (a hard link, which fails if a third one holds the name by then). Release works the
same way: only a lock that still carries this holder's token is removed.

Fencing. While held, a heartbeat thread checks the token and refreshes the file's modification
time. Losing the lock (the file gone or another holder's, the refresh failing, the process
stopped for longer than `stale_after` so that another host may be breaking it) is never
silent: :meth:`HeldLock.check` raises :class:`LockLostError` from then on, and the writers that
act under the lock call it before each action (the manifest before it is replaced, so before the
intent record of a submission; the search's driver at every step). A holder that finds its lock
gone stops: it leaves the lock alone (it is someone else's now) and exits with the error.

The holder is a record (:class:`LockHolder`), written and read by this module alone. Schema
versions: 0, lock files written before they carried ``schema_version`` (read as 1); 1, the
same keys with ``schema_version``; 2, with ``token``. A lock file that is empty or not JSON is
garbage (or written by a sweep before version 2, which wrote it in place): it is judged by its
age.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import LockedError
from ..core.names import LOCK_FILE
from .base import OMIT_NONE, Fields, JsonObject, Migration, NewerRecordError, RecordError, migrate, to_json

SCHEMA_VERSION = 2

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_STALE_AFTER_S = 120.0


def _since_boot() -> float:
    """Seconds on a clock that keeps counting while the machine sleeps (CLOCK_BOOTTIME where
    there is one): a laptop suspended for an hour was not refreshing its lock for an hour."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else time.monotonic()


class LockLostError(LockedError):
    """This process held a sweep's lock and no longer does (broken by another command, removed,
    or no longer refreshed): whatever it was about to do under the lock is not done."""


def process_start_time(pid: int) -> str | None:
    """A process's start time (clock ticks since boot, /proc): with the pid, it names the process
    even after the pid is reused (None when it cannot be read: no such process, no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[19]


@dataclass
class LockHolder:
    """Who holds a sweep's lock: host, pid (with its process's start time, which names it even
    after the pid is reused), since when, the command, and a random token that names this one
    holding (a lock file with another token is someone else's)."""

    host: str | None = None
    pid: int | None = None
    started: str | None = None
    since: float = 0.0
    command: str | None = None
    token: str | None = field(default=None, metadata=OMIT_NONE)

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
                   since=f.opt_number("since", finite=True) or 0.0, command=f.opt_text("command"),
                   token=f.opt_text("token"))

    @classmethod
    def me(cls) -> LockHolder:
        """This process, with a fresh token."""
        return cls(host=socket.gethostname(), pid=os.getpid(), started=process_start_time(os.getpid()),
                   since=time.time(),
                   command=" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300],
                   token=secrets.token_hex(16))


def _v0_to_v1(data: JsonObject) -> JsonObject:
    """Version 0 (no schema_version) has the keys of version 1."""
    return data


def _v1_to_v2(data: JsonObject) -> JsonObject:
    """Version 1 has no token: such a lock is judged by who holds it and its age, as before."""
    return data


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1, 1: _v1_to_v2}


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether process `pid` of this host lives and, when `started` (process_start_time's) is
    given, is still the process that started then (not another that took its pid since)."""
    return _pid_alive(pid) and (started is None or process_start_time(pid) in (None, started))


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
    file's age) when it is garbage.

    Raises:
        NewerRecordError: the holder was written by a newer sweep.
    """
    try:
        with open(path, encoding="utf-8", opener=_nofollow) as fh:
            data: Any = json.loads(fh.read(1 << 16))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return LockHolder()  # garbage (or a link): judged by its age
    if not isinstance(data, dict):
        return LockHolder()
    try:
        return LockHolder.from_json(data, path)
    except NewerRecordError:
        raise
    except RecordError:
        return LockHolder()


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def _stale(path: Path, holder: LockHolder, stale_after: float) -> bool:
    if holder.host == socket.gethostname() and holder.pid is not None:
        pid = holder.pid
        started = holder.started
        return not _pid_alive(pid) or (started is not None and process_start_time(pid) not in (None, started))
    try:
        age = time.time() - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > stale_after


def _describe(holder: LockHolder | None) -> str:
    if holder is None or holder == LockHolder():
        return "another sweep command"
    since = time.strftime("%H:%M:%S", time.localtime(holder.since))
    return f"{holder.command or 'a sweep command'} (pid {holder.pid} on {holder.host}, since {since})"


class HeldLock:
    """A sweep's lock as this process holds it (what :func:`sweep_lock` yields).

    Attributes:
        path: the lock file.
        holder: this holding's record (its token names it).
        stale_after: seconds without a refresh after which another host may break it.
    """

    def __init__(self, path: Path, holder: LockHolder, stale_after: float):
        self.path = path
        self.holder = holder
        self.stale_after = stale_after
        self.depth = 1
        self.lost: str | None = None  # why it was lost, once it was
        self.last_beat = _since_boot()
        self._guard = threading.Lock()

    def _lose(self, why: str) -> None:
        """Record that the lock is lost (the first reason), with a warning on stderr."""
        if self.lost is None:
            self.lost = why
            print(f"warning: lost the lock {self.path}: {why}", file=sys.stderr)

    def check(self) -> None:
        """Fencing: make sure this process still holds the lock before it acts under it (and
        refresh it). Call it before each write that the lock protects.

        Raises:
            LockLostError: the lock file is gone or another holder's, cannot be refreshed, or was
                not refreshed for longer than stale_after (the process was stopped: another host
                may be breaking it). It keeps raising from then on.
        """
        with self._guard:
            if self.lost is None:
                self._verify(from_heartbeat=False)
        if self.lost is not None:
            raise LockLostError(f"sweep lost its lock {self.path} ({self.lost}); it stopped before acting on it, "
                                "so nothing more was written. Run the command again")

    def _verify(self, from_heartbeat: bool) -> None:
        """Check the token, then refresh the file's time; record a loss in self.lost."""
        quiet = _since_boot() - self.last_beat
        if quiet > self.stale_after:
            self._lose(f"not refreshed for {quiet:.0f}s (more than {self.stale_after:.0f}s: the process was "
                       "stopped or too slow), so another command may have broken it")
            return
        try:
            found = _read_holder(self.path)
        except NewerRecordError:
            found = None
        if found is None:
            self._lose("its file was removed")
            return
        if found.token != self.holder.token:
            self._lose(f"{_describe(found)} holds it now")
            return
        try:
            os.utime(self.path, follow_symlinks=False)
        except OSError as exc:
            self._lose(f"it cannot be refreshed: {exc}")
            return
        self.last_beat = _since_boot()

    def beat(self, stop: threading.Event, every: float) -> None:
        """The heartbeat thread: verify and refresh every `every` seconds until `stop` is set
        or the lock is lost (never dies silently: any failure is recorded as a loss)."""
        try:
            while not stop.wait(every):
                with self._guard:
                    if self.lost is None:
                        self._verify(from_heartbeat=True)
                if self.lost is not None:
                    return
        except BaseException as exc:  # noqa: BLE001 - whatever it was, the lock is no longer kept fresh
            self._lose(f"its heartbeat failed: {exc!r}")


_held: dict[Path, HeldLock] = {}  # lock path -> this process's holding
_held_guard = threading.Lock()


def held_lock(folder: Path) -> HeldLock | None:
    """This process's holding of `folder`'s lock, or None when it does not hold it."""
    with _held_guard:
        return _held.get(folder.resolve() / LOCK_FILE)


def check_lock(folder: Path) -> None:
    """Fencing for writers that act under a sweep's lock without holding its handle: when this
    process holds `folder`'s lock, make sure it still does (:meth:`HeldLock.check`).

    Raises:
        LockLostError: the lock was lost.
    """
    lock = held_lock(folder)
    if lock is not None:
        lock.check()


@contextmanager
def sweep_lock(folder: Path, timeout: float = DEFAULT_TIMEOUT_S,
               stale_after: float = DEFAULT_STALE_AFTER_S) -> Iterator[HeldLock]:
    """Hold the lock of a sweep's folder (jobs/<sweep>/) for the duration of the block.

    Args:
        folder: the sweep's jobs folder; created if missing, and removed again on release (with
            the parents the lock created) when still empty: a failed first submit leaves nothing.
        timeout: seconds to wait for another holder before giving up.
        stale_after: seconds without a heartbeat after which a lock of another host is broken.

    Yields:
        The holding (:class:`HeldLock`): its `check()` is the fencing call, its `path` the file.

    Raises:
        LockedError: another live command held the lock for `timeout` seconds (named).
        LockLostError (a LockedError): the block ended normally but the lock had been lost
            meanwhile (what the block wrote after its last check is not protected).
        NewerRecordError (a ResultsError): the lock is held by a newer sweep, whose lock file this
            sweep cannot judge.
    """
    path = folder.resolve() / LOCK_FILE
    with _held_guard:
        mine = _held.get(path)
        if mine is not None:
            mine.depth += 1
    if mine is not None:
        try:
            yield mine
        finally:
            with _held_guard:
                mine.depth -= 1
        return
    created = [p for p in [folder, *folder.parents] if not p.exists()]  # innermost first
    folder.mkdir(parents=True, exist_ok=True)
    holder = _acquire(path, timeout, stale_after)
    lock = HeldLock(path, holder, stale_after)
    with _held_guard:
        _held[path] = lock
    stop = threading.Event()
    beat = threading.Thread(target=lock.beat, args=(stop, max(0.5, stale_after / 4)), daemon=True,
                            name=f"sweep-lock-heartbeat {path}")
    beat.start()
    ok = False
    try:
        yield lock
        ok = True
    finally:
        stop.set()
        beat.join()
        with _held_guard:
            del _held[path]
        if lock.lost is None and not _take_away(path, holder.token):
            lock._lose("when it was released it was gone or another holder's (left alone)")
        for made in created:  # the folders the lock made, while they are still empty
            try:
                made.rmdir()
            except OSError:
                break
    if ok and lock.lost is not None:
        lock.check()  # raises: the block's work was not protected to its end


def _acquire(path: Path, timeout: float, stale_after: float) -> LockHolder:
    """Create `path` with this process as its holder, breaking a stale lock, waiting for a live
    one (up to `timeout` seconds). Returns the holder record written."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    me = LockHolder.me()
    while True:
        if _create(path.parent, me):
            return me
        holder = _read_holder(path)
        if holder is not None and _stale(path, holder, stale_after):
            _break(path, holder)
            continue
        if time.monotonic() > deadline:
            raise LockedError(f"sweep folder {path.parent} is busy: {_describe(holder)} holds {path.name}; "
                              f"waited {timeout:.0f}s. Try again when it has finished") from None
        time.sleep(delay)
        delay = min(1.0, delay * 1.5)


def _create(folder: Path, holder: LockHolder) -> bool:
    """Write `holder` under a temporary name (fsynced), then link it to `folder`/.sweep.lock:
    True when this made the lock, False when the lock exists."""
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    tmp = f".{LOCK_FILE}.{secrets.token_hex(6)}.new"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
        try:
            os.write(fd, json.dumps(holder.to_json()).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, LOCK_FILE, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno in _NO_LINKS:  # a file system without hard links: create it in place
                return _create_in_place(dir_fd, holder)
            # NFS: the link may have been made and its reply lost; then the file has two names
            if os.stat(tmp, dir_fd=dir_fd, follow_symlinks=False).st_nlink != 2:
                raise
        os.fsync(dir_fd)
        return True
    finally:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        os.close(dir_fd)


_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


def _create_in_place(dir_fd: int, holder: LockHolder) -> bool:
    """The lock made with O_CREAT | O_EXCL and then written (file systems without hard links;
    until it is written it is empty, and judged by its age)."""
    try:
        fd = os.open(LOCK_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=dir_fd)
    except FileExistsError:
        return False
    try:
        os.write(fd, json.dumps(holder.to_json()).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.fsync(dir_fd)
    return True


def _take_away(path: Path, token: str | None, judged: LockHolder | None = None) -> bool:
    """Remove the lock at `path` if it is the one expected (carrying `token`; or, for a holder
    without a token, the same record as `judged`): rename it to a unique name (only one process
    can), read what was taken, and delete it; when it was someone else's, put it back. Returns
    whether the expected lock was removed."""
    aside = path.with_name(f"{path.name}.taken.{secrets.token_hex(6)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False  # someone else took it away first
    taken = _read_holder(aside)
    expected = taken is not None and (taken.token == token if token is not None else taken == judged)
    if not expected:
        try:  # not the one judged: put it back, unless a new lock already has the name
            os.link(aside, path, follow_symlinks=False)
        except OSError:
            pass  # its holder finds it gone at its next check, and stops
    aside.unlink(missing_ok=True)
    return expected


def _break(path: Path, holder: LockHolder) -> None:
    """Take away the stale lock of `holder` (only that one: a lock that another waiter took in
    the meantime is put back)."""
    _take_away(path, holder.token, holder)
