"""`sweep logs SWEEP RUN [--err] [--follow]`: one run's output and its job's history, in one view.

What is shown, in this order:

- the run's job events from the sweep's job event log (results/<sweep>/events.log): each job of
  the run submitted, executing, evicted, held (code/subcode: reason), released, terminated (exit
  status or signal), removed, with its time; then its hold history. A local run has no event
  log: how its process ended (.local-exit.json) is shown instead;
- the run's stdout (stderr with --err): a finished run's from its folder, results/<sweep>/<run-id>/,
  where HTCondor transferred it back or the local backend wrote it; a running job's on a pool
  through HTCondor's own tail (`condor_tail`, which asks the job's starter for the file in the
  job's sandbox); a running local job's from its folder, where the local backend writes it.

With follow, new output is printed as it comes (and new job events on a pool) until the job
ends, or until Ctrl-C: on a pool with `condor_tail -follow` (HTCondor polls the starter every 2
seconds and ends quietly when the job leaves its slot); what the job wrote after the last poll is
read from the file transferred back. A local job's file is read as it grows, every `interval`
seconds, until the local backend writes the job's exit record.

Everything shown came from an execute node or names text a job controls (hold reasons): the files
are read bounded and never through a symlink (records.untrusted), each line escaped for a terminal
(core.errors.printable) and cut to MAX_LINE characters.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import BackendError, InputError, ResultsError, printable
from ..core.names import LOCAL_RECORD, LOCK_FILE, STDERR, STDOUT, SweepPaths
from ..core.states import RunState
from ..records.base import RecordError
from ..records.events import RUN_NOTE, RUNTIME_HOLD_CODES, Hold, is_memory_hold
from ..records.localexit import read_local_exit
from ..records.manifest import Manifest, load_manifest, on_pool
from ..records.runinfo import read_run_info
from ..records.lock import process_alive
from ..records.untrusted import UntrustedFileError, open_untrusted
from .status import running_here

#: The streams a run has: the option's word -> the file in the run's folder.
STREAMS = {"out": STDOUT, "err": STDERR}
#: How much of the end of a run's output is shown (a finished run's, or a running one's before it
#: is followed): the last 64 KiB, about the last thousand lines of a training's log. The rest of
#: the file is never read; the file's path is printed to read it whole.
SHOW_BYTES = 64 << 10
#: condor_tail's -maxbytes while following: what one poll (every 2 s) may bring. A training writes
#: a few lines an epoch; a job that writes more than 1 MiB in 2 s has its middle skipped by condor_tail.
FOLLOW_BYTES = 1 << 20
#: The longest line printed (longer ones are cut, with how much was left out).
MAX_LINE = 2000
#: The end of what condor_tail brought that is looked for in the file transferred back (to print
#: only what the job wrote after condor_tail's last poll).
RECENT_BYTES = 4096
#: How long a one-off condor_tail may take (it retries while the job's file does not exist yet).
TAIL_TIMEOUT_S = 30.0
#: After condor_tail stopped following, how long to wait for the job to leave its slot and for
#: its output to come back (HTCondor transfers it when the job exits).
END_WAIT_S = 60.0
#: How often the schedd is asked while a followed run's job is idle or held.
QUEUE_POLL_S = 5.0

Write = Callable[[str], Any]


def show_logs(sweep: str, root: Path, run_id: str, *, stream: str = "out", follow: bool = False,
              write: Write = print, interval: float = 0.5) -> int:
    """Show run `run_id` of `sweep`: its job events and hold history, then its stdout (or stderr);
    with `follow`, the output of a running job as it comes until the job ends or Ctrl-C.

    Args:
        sweep: the sweep's name.
        root: the project folder.
        run_id: the run's id (the first column of `sweep collect`).
        stream: "out" (stdout.txt) or "err" (stderr.txt).
        follow: keep printing a running job's new output (and, on a pool, its new job events) until
            the job ends; returns at once for a run that is not running.
        write: called with each line to show (no newline), already escaped for a terminal.
        interval: seconds between two looks at a local job's growing file.

    Returns:
        0.

    Raises:
        ResultsError: no such sweep or run (unknown run, unreadable manifest), or a run with
            nothing to show: never submitted, no event, no output ("no output yet: the run has
            not started").
        InputError: `stream` is neither "out" nor "err".
        BackendError: following a job running on a pool when `condor_tail` is not on PATH.
    """
    if stream not in STREAMS:
        raise InputError(f"expected stream 'out' or 'err', got {stream!r}")
    paths = SweepPaths(root.resolve())
    manifest = load_manifest(root, sweep)
    entry = manifest.run(run_id)
    if entry is None:
        raise ResultsError(f"sweep '{sweep}' has no run '{run_id}' (`sweep collect {sweep}` lists its runs)")
    view = _RunView(sweep, run_id, paths, manifest, STREAMS[stream], write)
    write(f"run {run_id} ({printable(entry.name)}) of sweep {sweep}")
    view.events.update()
    ad, note = view.queued_job()
    live_local = ad is None and view.local_running()
    output = view.folder / view.name
    has_output = output.exists() or output.is_symlink()
    if not view.events.lines and view.local is None and ad is None and not live_local and not has_output:
        raise ResultsError(f"run '{run_id}' of sweep '{sweep}': no output yet: the run has not started"
                           + (f" ({note})" if note else ""))
    view.show_history()
    if note:
        write(f"({note})")
    try:
        running = ad is not None and RunState.of_job_status(ad.get("JobStatus")) is RunState.RUNNING
        if ad is not None and follow:
            view.follow_pool(ad)
        elif running:
            view.tail_pool(_job_id(ad))
        elif live_local:
            view.show_local(follow, interval)
        else:
            if ad is not None:
                write(f"(job {_job_id(ad)} is {RunState.of_job_status(ad.get('JobStatus'))}: its output comes back "
                      "when it has run)")
            view.show_file(header=True)
    except KeyboardInterrupt:
        write("(stopped following)")
    return 0


def _job_id(ad) -> str:
    return f"{ad['ClusterId']}.{ad['ProcId']}"


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "?"


def _line(raw: bytes) -> str:
    """A line a job wrote, decoded, escaped for a terminal and cut to MAX_LINE characters."""
    text = printable(raw.decode("utf-8", errors="replace").rstrip("\r"))
    return text if len(text) <= MAX_LINE else f"{text[:MAX_LINE]}… ({len(text) - MAX_LINE} more characters)"


class _Lines:
    """Bytes as they come (a pipe, a growing file) -> whole lines, written one by one; `flush`
    writes an unfinished last line."""

    def __init__(self, write: Write):
        self.write, self.pending, self.total, self.recent = write, b"", 0, b""

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        self.recent = (self.recent + data)[-RECENT_BYTES:]
        *whole, self.pending = (self.pending + data).split(b"\n")
        for raw in whole:
            self.write(_line(raw))

    def flush(self) -> None:
        if self.pending:
            self.write(_line(self.pending))
        self.pending = b""


@dataclass
class _JobEvents:
    """The run's jobs' events, read from the sweep's job event log as it grows (kept open)."""

    path: Path
    run_id: str
    lines: list[str] = field(default_factory=list)
    holds: list[tuple[str, Hold, bool]] = field(default_factory=list)  # (job id, hold, released since)
    last: dict[str, str] = field(default_factory=dict)  # job id -> its last event's kind
    _jobs: set[tuple[int, int]] = field(default_factory=set)
    _log: Any = None

    def update(self) -> list[str]:
        """Read the events written since the last update; returns the new lines (also kept in lines)."""
        if self._log is None:
            if not self.path.is_file() or self.path.stat().st_size == 0:
                return []
            import htcondor2

            self._log = htcondor2.JobEventLog(str(self.path))
        import htcondor2

        new: list[str] = []
        for ev in self._log.events(stop_after=0):
            line = self._describe(ev, htcondor2.JobEventType)
            if line is not None:
                new.append(f"{_when(ev.timestamp)}  job {ev.cluster}.{ev.proc} {line}")
        self.lines += new
        return new

    def close(self) -> None:
        """Close the log."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def ended(self, job_id: str) -> bool:
        """Whether the job's last event says it left its slot for good (terminated, removed) or
        was held."""
        return self.last.get(job_id) in ("terminated", "removed", "held")

    def _describe(self, ev, T) -> str | None:
        key, t = (ev.cluster, ev.proc), ev.type
        if t == T.SUBMIT:
            m = RUN_NOTE.search(str(ev.get("LogNotes", "")))
            if not m or m.group(1) != self.run_id:
                return None
            self._jobs.add(key)
        if key not in self._jobs:
            return None
        job = f"{ev.cluster}.{ev.proc}"
        kind, text = None, None
        if t == T.SUBMIT:
            kind, text = "submitted", "submitted"
        elif t == T.EXECUTE:
            host = ev.get("SlotName") or ev.get("ExecuteHost") or ""
            kind, text = "executing", f"executing{' on ' + printable(str(host)) if host else ''}"
        elif t == T.JOB_EVICTED:
            kind, text = "evicted", "evicted from its slot (it will run again)"
        elif t == T.SHADOW_EXCEPTION:
            kind, text = "evicted", f"shadow exception: {printable(str(ev.get('Message', '')))[:MAX_LINE]}"
        elif t == T.JOB_HELD:
            hold = Hold(ev.timestamp, ev.get("HoldReasonCode"), ev.get("HoldReasonSubCode"),
                        str(ev.get("HoldReason", "")))
            self.holds.append((job, hold, False))
            kind, text = "held", f"held ({hold.code}/{hold.subcode}): {printable(hold.reason)[:MAX_LINE]}"
        elif t == T.JOB_RELEASED:
            self.holds = [(j, h, released or j == job) for j, h, released in self.holds]
            kind, text = "released", f"released{': ' + printable(str(ev['Reason'])) if ev.get('Reason') else ''}"
        elif t == T.JOB_ABORTED:
            reason = ev.get("Reason")
            kind, text = "removed", f"removed{': ' + printable(str(reason))[:MAX_LINE] if reason else ''}"
        elif t == T.JOB_TERMINATED:
            if bool(ev.get("TerminatedNormally", True)):
                text = f"terminated: exit {ev.get('ReturnValue')}"
            else:
                text = f"terminated: killed by signal {ev.get('TerminatedBySignal')}"
            kind = "terminated"
        if kind is None:
            return None
        self.last[job] = kind
        return text


class _RunView:
    """What show_logs shows of one run, and how."""

    def __init__(self, sweep: str, run_id: str, paths: SweepPaths, manifest: Manifest, name: str, write: Write):
        self.sweep, self.run_id, self.paths, self.manifest, self.name, self.write = (sweep, run_id, paths, manifest,
                                                                                     name, write)
        self.folder = paths.results(sweep) / run_id
        self.events = _JobEvents(paths.event_log(sweep), run_id)
        self.schedd: Any = None
        try:
            self.local = read_local_exit(self.folder)
        except RecordError as exc:
            self.local = None
            write(f"(unreadable {LOCAL_RECORD}: {printable(exc.detail)})")

    # ------------------------------------------------------------------ what is known of the run
    def queued_job(self) -> tuple[Any, str]:
        """(the run's job in the schedd's queue, or None; a note when the schedd did not answer)."""
        if not on_pool(self.manifest):
            return None, ""
        from .backends.htcondor import connect, sweep_queue

        try:
            if self.schedd is None:
                self.schedd = connect(timeout=5)
            return sweep_queue(self.schedd, self.sweep, self.manifest).jobs.get(self.run_id), ""
        except Exception as exc:  # noqa: BLE001 - an unreachable schedd: what the files say is still shown
            self.schedd = None
            why = exc if isinstance(exc, BackendError) else f"the schedd stopped answering: {exc}"
            return None, f"live state unavailable: {why}"

    def local_running(self) -> bool:
        """Whether the local backend is running the run's job here now.

        The backend's record (.local-exit.json) says so where it is written when the job starts
        (no exit status yet, the job's process and host): running while that process lives. An
        exit status in it: ended. Without a record (a backend that writes it only at the end):
        while the job's run.json names a live process of this machine, or, before the job has
        written it (and after it wrote how it ended, until the backend writes the record), while
        the submitting command holds the sweep's lock. A run with jobs on a pool is not a local one."""
        if not (self.folder / self.name).exists():
            return False
        try:
            record = read_local_exit(self.folder)
        except RecordError:
            record = None
        if record is not None:
            if record.returncode is not None:
                return False
            if record.pid is not None:
                return running_here(record)
        try:
            info = read_run_info(self.folder)
        except RecordError:
            info = None
        if info is not None and info.status is RunState.RUNNING:
            return info.host == socket.gethostname() and info.pid is not None and process_alive(info.pid)
        return not self.events.last and (self.paths.jobs(self.sweep) / LOCK_FILE).exists()

    def show_history(self) -> None:
        """The run's job events, its hold history, and how a local job ended."""
        rel = self.paths.event_log(self.sweep).relative_to(self.paths.root)
        if self.events.lines:
            self.write(f"job events ({rel}):")
            for line in self.events.lines:
                self.write(f"  {line}")
        if self.events.holds:
            self.write(f"hold history: {len(self.events.holds)} hold(s)")
            for job, hold, released in self.events.holds:
                memory = " (memory)" if is_memory_hold(hold.code, hold.subcode) else ""
                self.write(f"  {_when(hold.at)}  job {job} held{memory} ({hold.code}/{hold.subcode}): "
                           f"{printable(hold.reason)[:MAX_LINE]}{'; released' if released else ''}")
        elif self.events.lines:
            self.write("hold history: never held")
        if self.local is not None and self.local.returncode is None:
            where = f" (process {self.local.pid} on {printable(str(self.local.host))})" if getattr(
                self.local, "pid", None) else ""
            self.write(f"local job started{where}, not ended")
        elif self.local is not None:
            how = (f"exit {self.local.returncode}" if self.local.reason is None
                   else f"exit {self.local.returncode}: {printable(self.local.reason)[:MAX_LINE]}")
            wall = f" after {self.local.wall_s:.0f}s" if self.local.wall_s is not None else ""
            self.write(f"local job ended: {how}{wall}")

    # ------------------------------------------------------------------ a file in the run's folder
    def show_file(self, header: bool, start: int | None = None) -> None:
        """The end of the run's output file (SHOW_BYTES), or from byte `start` on (at most SHOW_BYTES)."""
        path = self.folder / self.name
        rel = path.relative_to(self.paths.root)
        try:
            with open_untrusted(path) as (fd, size):
                begin = max(0, size - SHOW_BYTES) if start is None else min(start, size)
                if start is not None and size - begin > SHOW_BYTES:
                    begin = size - SHOW_BYTES
                os.lseek(fd, begin, os.SEEK_SET)
                data = _read_upto(fd, size - begin)
        except FileNotFoundError:
            if header:
                self.write(f"{self.name}: none in {rel.parent}/ (not written, or not transferred back)")
            return
        except UntrustedFileError as exc:
            self.write(f"{self.name}: not shown: {printable(exc.detail)}")
            return
        if header:
            self.write(f"{self.name} ({rel}, {size} bytes)" + (":" if data else ": empty"))
        if begin > (start or 0):
            self.write(f"[... the first {begin - (start or 0)} bytes are not shown; the whole file: {rel}]")
        lines = _Lines(self.write)
        lines.feed(data)
        lines.flush()

    def show_local(self, follow: bool, interval: float) -> None:
        """A local job's output so far; with `follow`, as it grows until the job ends."""
        path = self.folder / self.name
        self.write(f"{self.name} ({path.relative_to(self.paths.root)}; the local job is running):")
        try:
            with open_untrusted(path) as (fd, size):
                begin = max(0, size - SHOW_BYTES)
                if begin:
                    self.write(f"[... the first {begin} bytes are not shown]")
                os.lseek(fd, begin, os.SEEK_SET)
                lines = _Lines(self.write)
                lines.feed(_read_upto(fd, size - begin))
                if not follow:
                    lines.flush()
                    return
                while True:
                    running = self.local_running()  # asked before the last read: nothing written after it is lost
                    while chunk := os.read(fd, 1 << 16):
                        lines.feed(chunk)
                    if not running:
                        break
                    time.sleep(interval)
                lines.flush()
        except FileNotFoundError:
            self.write(f"{self.name}: gone")
            return
        except UntrustedFileError as exc:
            self.write(f"{self.name}: not shown: {printable(exc.detail)}")
            return
        self._ended_local()

    def _ended_local(self) -> None:
        def record() -> Any:
            try:
                return read_local_exit(self.folder)
            except RecordError:
                return None
        # a job that was killed: the backend writes how it ended within a poll
        self._wait_for(lambda: getattr(record(), "returncode", None) is not None, 2.0)
        self.local = record()
        if self.local is not None and self.local.returncode is not None:
            how = f"exit {self.local.returncode}" + (f": {printable(self.local.reason)}" if self.local.reason else "")
            self.write(f"(the local job ended: {how})")
        else:
            self.write("(the local job is no longer running; it left no exit record)")

    # ------------------------------------------------------------------ a job running on a pool
    def tail_pool(self, job_id: str) -> None:
        """A running job's output so far, through `condor_tail` (once)."""
        self.write(f"{self.name} of running job {job_id} (condor_tail):")
        try:
            proc = subprocess.run(_condor_tail(job_id, self.name, False, SHOW_BYTES), capture_output=True,
                                  timeout=TAIL_TIMEOUT_S, env=_tool_env(), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.write(f"(condor_tail had nothing after {TAIL_TIMEOUT_S:.0f}s: the job has not written "
                       f"{self.name} yet, or its starter does not answer)")
            return
        lines = _Lines(self.write)
        lines.feed(proc.stdout)
        lines.flush()
        if proc.returncode != 0:
            self.write(f"(condor_tail failed: {_line(proc.stderr.strip()[-500:])})")

    def follow_pool(self, ad) -> None:
        """Follow the run on the pool until its job leaves the queue (or is held for good): its
        output through `condor_tail -follow` while it runs, its new events as they come, and what
        it wrote after condor_tail's last poll from the file transferred back."""
        tailed: _Lines | None = None  # what condor_tail brought of the job's last start
        job_id = _job_id(ad)
        while ad is not None:
            job_id, state = _job_id(ad), RunState.of_job_status(ad.get("JobStatus"))
            if state is RunState.RUNNING:
                self.write(f"{self.name} of running job {job_id} (condor_tail -follow):")
                tailed = self._pump(job_id)
                self._wait_off_slot(job_id)
            elif state is RunState.HELD and not _released_by_policy(ad):
                self._print_events()
                self.write(f"(job {job_id} is held: {printable(str(ad.get('HoldReason', '')))[:MAX_LINE]}; "
                           "`sweep resubmit` or condor_release runs it again)")
                return
            else:
                self._print_events()
                time.sleep(QUEUE_POLL_S)
            ad, note = self.queued_job()
            if note:
                self.write(f"({note})")
                return
        self._print_events()
        self._wait_for(lambda: self.events.ended(job_id) or (self.folder / self.name).exists(), END_WAIT_S)
        if tailed is None:
            self.show_file(header=True)
        elif self._continues(tailed):  # what condor_tail brought is the file's start: the rest from the file
            self.show_file(header=False, start=tailed.total)
        else:
            self.write(f"(the job has ended; its whole {self.name}: "
                       f"{(self.folder / self.name).relative_to(self.paths.root)})")
        self._print_events()

    def _continues(self, tailed: _Lines) -> bool:
        """Whether the file transferred back starts with what condor_tail brought (its first poll
        had the whole file): its bytes up to tailed.total end with the last ones seen."""
        if not tailed.recent:
            return True
        try:
            with open_untrusted(self.folder / self.name) as (fd, size):
                if size < tailed.total:
                    return False
                os.lseek(fd, tailed.total - len(tailed.recent), os.SEEK_SET)
                return _read_upto(fd, len(tailed.recent)) == tailed.recent
        except (OSError, UntrustedFileError):
            return False

    def _pump(self, job_id: str) -> _Lines:
        """Run condor_tail -follow on the job, writing its lines and the run's new events, until
        it ends; returns what it brought."""
        lines = _Lines(self.write)
        proc = subprocess.Popen(_condor_tail(job_id, self.name, True, FOLLOW_BYTES), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_tool_env(),
                                start_new_session=True)
        try:
            with selectors.DefaultSelector() as sel:
                assert proc.stdout is not None and proc.stderr is not None
                sel.register(proc.stdout, selectors.EVENT_READ, "out")
                sel.register(proc.stderr, selectors.EVENT_READ, "err")
                errors = b""
                while sel.get_map():
                    for key, _ in sel.select(timeout=1.0):
                        data = os.read(key.fd, 1 << 16)
                        if not data:
                            sel.unregister(key.fileobj)
                        elif key.data == "out":
                            lines.feed(data)
                        else:
                            errors = (errors + data)[-4096:]
                    self._print_events()
            proc.wait()
            lines.flush()
            problem = [ln for ln in errors.decode("utf-8", "replace").splitlines()
                       if ln.strip() and "GoAhead" not in ln]
            if proc.returncode != 0 and problem:
                self.write(f"(condor_tail: {_line(problem[-1].encode())})")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
        return lines

    def _wait_off_slot(self, job_id: str) -> None:
        """After condor_tail ended: wait until the job's events say it left its slot (or it left
        the queue), at most END_WAIT_S."""
        def off() -> bool:
            self._print_events()
            if self.events.ended(job_id) or self.events.last.get(job_id) == "evicted":
                return True
            ad, _ = self.queued_job()
            return ad is None or RunState.of_job_status(ad.get("JobStatus")) is not RunState.RUNNING
        self._wait_for(off, END_WAIT_S)

    def _print_events(self) -> None:
        for line in self.events.update():
            self.write(f"[event] {line}")

    @staticmethod
    def _wait_for(done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            time.sleep(1.0)


def _read_upto(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _released_by_policy(ad) -> bool:
    """A hold the job's own policy ends (memory escalation releases it; a runtime-limit hold is
    removed): following goes on through it."""
    code, sub = ad.get("HoldReasonCode"), ad.get("HoldReasonSubCode")

    def has(key: str) -> bool:
        return key in ad and str(ad.get(key)).strip().lower() not in ("false", "")

    return (is_memory_hold(code, sub) and has("PeriodicRelease")) or (code in RUNTIME_HOLD_CODES
                                                                       and has("PeriodicRemove"))


def _condor_tail(job_id: str, name: str, follow: bool, max_bytes: int) -> list[str]:
    """The condor_tail command line for the job's stdout (or stderr).

    Raises:
        BackendError: condor_tail is not on PATH.
    """
    tool = shutil.which("condor_tail")
    if tool is None:
        raise BackendError("condor_tail is not on PATH: a running job's output is read through it (HTCondor's "
                           "tools: the pool's condor_* commands); its output comes back to the run's folder when "
                           "it ends")
    return [tool, "-maxbytes", str(max_bytes), *(["-follow"] if follow else []),
            *(["-stderr"] if name == STDERR else []), job_id]


def _tool_env() -> dict[str, str]:
    """The environment of an HTCondor tool run by sweep: with SWEEP_IDTOKENS_DIR, authenticated
    with the user's own IDTOKEN from there, as sweep's bindings are (backends.htcondor.bindings),
    set for that one process only."""
    from .backends.htcondor import IDTOKENS_VAR

    env = dict(os.environ)
    tokens = env.get(IDTOKENS_VAR)
    if tokens:
        env["_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS"] = "IDTOKENS"
        env["_CONDOR_SEC_TOKEN_DIRECTORY"] = tokens
    return env
