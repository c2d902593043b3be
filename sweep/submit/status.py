"""`sweep status`: where every run of a sweep stands, from the schedd (live), the sweep's job
event log (history) and the results folder (what came back)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import BackendError, printable
from ..core.names import ATTR_LIVE, DAGS_DIR, JOB_EXIT_NEVER_RETRIED, SweepPaths
from ..core.states import RunState
from ..records.events import (RUNTIME_HOLD_CODES, EventLogReader, attempts_by_run, is_memory_hold, latest_by_run,
                              read_event_log)
from ..records.base import RecordError
from ..records.localexit import LocalExit
from ..records.lock import process_alive
from ..records.manifest import Manifest, Submission, list_sweeps, load_manifest, on_pool
from ..records.progress import Live, parse_live, read_progress
from ..records.runs import read_run

#: The order in which counts are shown.
ORDER = (RunState.IDLE, RunState.RUNNING, RunState.HELD, RunState.DONE, RunState.FAILED, RunState.REMOVED,
         RunState.UNKNOWN, RunState.NOT_RUN)
#: Shown in the table under the counts, with why.
TROUBLE = (RunState.HELD, RunState.FAILED, RunState.REMOVED, RunState.UNKNOWN)


@dataclass
class RunStatus:
    """Where one run stands: its state with a detail (a hold reason, what it waits for, why it
    failed), its last job and how often that started."""

    run_id: str
    name: str
    state: RunState
    detail: str = ""
    job_id: str | None = None
    starts: int = 0
    transient: bool = False  # held, but the job's own policy will release or remove it
    live: Live | None = None  # a running job's last epoch (records.progress): epoch k of n, metric, losses

    def as_json(self) -> dict:
        """The run as `sweep status --json` gives it."""
        out = {"run_id": self.run_id, "name": self.name, "state": str(self.state), "detail": self.detail,
               "job_id": self.job_id, "starts": self.starts}
        if self.live is not None:
            out["live"] = {**vars(self.live), "eta_s": round(self.live.eta_s, 1)}
        return out


@dataclass
class Best:
    """The best finished run so far by the sweep's first ranking metric."""

    run_id: str
    name: str
    metric: str
    value: float


@dataclass
class SweepStatus:
    """Where a sweep's runs stand, with what was seen of the pool: a note when its schedd did not
    answer, the sweep's DAGs still active, and the schedd (to remove held jobs)."""

    sweep: str
    runs: list[RunStatus]
    pool_note: str = ""
    active_dags: int = 0
    schedd: object = field(default=None, repr=False)
    best: Best | None = None

    def as_json(self) -> dict:
        """The sweep as `sweep status --json` gives it (one object; with --watch one per line)."""
        return {"sweep": self.sweep, "counts": {str(k): v for k, v in self.counts().items()},
                "finished": self.finished, "active_dags": self.active_dags, "note": self.pool_note,
                "best": vars(self.best) if self.best is not None else None,
                "runs": [r.as_json() for r in self.runs]}

    def counts(self) -> Counter:
        """state -> how many runs are in it."""
        return Counter(r.state for r in self.runs)

    @property
    def finished(self) -> bool:
        """No run is queued or running, no DAG of the sweep is active, and no hold is one the
        job's own policy will end (held runs otherwise end the wait: they need a person)."""
        return (not any(r.state in (RunState.IDLE, RunState.RUNNING, RunState.UNKNOWN) for r in self.runs)
                and not self.active_dags and not any(r.transient for r in self.runs))

    def remove_held(self, run_ids: list[str]) -> list[RunStatus]:
        """Remove held jobs of these runs from the queue before they are rerun; returns them."""
        held = [r for r in self.runs if r.run_id in run_ids and r.state is RunState.HELD and r.job_id]
        if not held or self.schedd is None:
            return []
        from .backends.htcondor import bindings

        htcondor2 = bindings()
        self.schedd.act(htcondor2.JobAction.Remove, [r.job_id for r in held], reason="sweep resubmit")
        return held


@dataclass
class Follower:
    """What a poll loop (`--wait`, `status --watch`) keeps between ticks: the open event log
    (read incrementally) and the schedd connection (made once, made again after a failure)."""

    events: dict[str, EventLogReader] = field(default_factory=dict)  # sweep -> its log
    schedd: object = None

    def log(self, path: Path) -> EventLogReader:
        """The reader of the event log at `path`, opened on first use and kept."""
        return self.events.setdefault(str(path), EventLogReader(path))


class Backoff:
    """Poll intervals that grow from `start` by `factor` up to `cap` while nothing changes, and
    start again when something does (submitit's watcher does the same): a sweep of 8-hour jobs
    is not asked about every 3 seconds, a sweep that moves is followed closely."""

    def __init__(self, start: float, cap: float = 60.0, factor: float = 1.5):
        self.start, self.cap, self.factor = start, max(cap, start), factor
        self.interval, self._last = start, None

    def next(self, observed) -> float:
        """The wait before the next poll, given what this poll saw."""
        self.interval = self.start if observed != self._last else min(self.cap, self.interval * self.factor)
        self._last = observed
        return self.interval


def _live(sweep: str, manifest: Manifest, follower: Follower | None = None
          ) -> tuple[dict, int, object, str, dict[str, Submission], dict[str, Live]]:
    """(run id -> (state, detail, job id, transient), active DAGs, schedd, note, run id -> the
    manifest entry of the active DAG it waits in, run id -> a running job's live line) from the
    schedd, if reachable."""
    if not on_pool(manifest):
        return {}, 0, None, "", {}, {}
    from .backends.htcondor import connect, sweep_queue

    try:
        schedd = follower.schedd if follower is not None and follower.schedd is not None else connect(timeout=5)
        queue = sweep_queue(schedd, sweep, manifest)
    except Exception as exc:  # noqa: BLE001 - an unreachable schedd, or one that stopped answering
        if follower is not None:
            follower.schedd = None
        why = exc if isinstance(exc, BackendError) else f"the schedd stopped answering: {exc}"
        return {}, 0, None, f"live state unavailable: {why}", {}, {}
    if follower is not None:
        follower.schedd = schedd
    live, lines = {}, {}
    for run_id, ad in queue.jobs.items():
        state = RunState.of_job_status(ad.get("JobStatus"))
        detail = str(ad.get("HoldReason", "")) if state is RunState.HELD else ""
        live[run_id] = (state, detail, f"{ad['ClusterId']}.{ad['ProcId']}", _transient(ad, state))
        line = parse_live(ad.get(ATTR_LIVE)) if state is RunState.RUNNING else None
        if line is not None:
            lines[run_id] = line
    for run_id in queue.pending:
        live[run_id] = (RunState.IDLE, "waiting in its DAG", None, False)
    return live, queue.active_dags, schedd, "; ".join(queue.dag_problems), queue.pending_in, lines


def running_here(local: LocalExit | None) -> bool:
    """A local run whose job is still running: the local backend recorded its start and not its
    end, and the process it started lives on this host (the same process: its start time too, so
    a pid taken by another process since a crash or a reboot is not it)."""
    import socket

    if local is None or local.returncode is not None or not local.pid or local.host != socket.gethostname():
        return False
    return process_alive(local.pid, local.started)


def _live_line(results: Path) -> Live | None:
    """A local run's live line from its progress.json (None when it has none or it is unreadable)."""
    try:
        progress = read_progress(results)
    except RecordError:
        return None
    return progress.live if progress is not None else None


def dag_wait(has_result: bool, in_dag: list, retries: int) -> str | None:
    """Why a run of an active DAG with no job in the queue is still waiting, or None when it has
    ended in this DAG.

    Args:
        has_result: a valid result came back.
        in_dag: the run's jobs of this DAG (the event log's records, oldest first).
        retries: the DAG's RETRY count.

    Returns:
        "waiting in its DAG" before its first job, "retrying (attempt k of n)" after a failure
        DAGMan retries (not exit 2 or 3, not a removal: the POST script stops those), else None.
    """
    if has_result:
        return None
    if not in_dag:
        return "waiting in its DAG"
    last = in_dag[-1]
    if not last.state.is_finished():
        return "waiting in its DAG"
    retried = last.state is RunState.FAILED and last.exit_code not in (0, *JOB_EXIT_NEVER_RETRIED)
    if retried and len(in_dag) <= retries:
        return f"retrying (attempt {len(in_dag) + 1} of {retries + 1}) after exit {last.exit_code}"
    return None


def _transient(ad, state: RunState) -> bool:
    """A hold the job's own policy ends: a memory hold with a release expression (escalation),
    or a runtime-limit hold with a remove expression. A user's hold is not transient."""
    if state is not RunState.HELD:
        return False
    code, sub = ad.get("HoldReasonCode"), ad.get("HoldReasonSubCode")

    def has(key: str) -> bool:
        return key in ad and str(ad.get(key)).strip().lower() not in ("false", "")

    return (is_memory_hold(code, sub) and has("PeriodicRelease")) or (code in RUNTIME_HOLD_CODES
                                                                       and has("PeriodicRemove"))


def sweep_status(sweep: str, root: Path, query_schedd: bool = True, follower: Follower | None = None) -> SweepStatus:
    """Where every run of the sweep stands.

    Args:
        sweep: the sweep's name.
        root: the project folder.
        query_schedd: ask the schedd for live states (when the sweep was submitted to a pool);
            an unreachable schedd gives a pool_note, not an error.
        follower: kept by a poll loop: the event log is then read incrementally and the schedd
            connection reused.

    Returns:
        One RunStatus per run of the manifest.

    Raises:
        ResultsError: no such sweep, or an unreadable manifest.
    """
    paths = SweepPaths(root.resolve())
    manifest = load_manifest(root, sweep)
    live, dags, schedd, note, pending_in, lines = (_live(sweep, manifest, follower) if query_schedd
                                                    else ({}, 0, None, "", {}, {}))
    offline = schedd is None and bool(note)  # on a pool whose schedd did not answer: the queue is unknown
    log = paths.event_log(sweep)
    jobs = follower.log(log).update() if follower is not None else read_event_log(log)
    events, attempts = latest_by_run(jobs), attempts_by_run(jobs)
    required = [m for m, _ in manifest.ranking]
    submitted = {r for s in manifest.submissions for r in s.runs or ()}
    # the best so far as collect ranks: a search by its first objective, a grid by its first ranking metric
    order = list(manifest.search.objectives) if manifest.search is not None else list(manifest.ranking)
    metric, direction = order[0] if order else (None, "max")
    best: Best | None = None
    runs = []
    for entry in manifest.runs:
        run_id = entry.run_id
        job = events.get(run_id)
        rs = RunStatus(run_id, entry.name, RunState.NOT_RUN, job_id=job.job_id if job else None,
                       starts=job.starts if job else 0)
        outcome = read_run(paths.results(sweep), run_id, required) if run_id not in live or live[run_id][2] is None \
            else None
        # a run of an active DAG with no job in the queue is waiting for DAGMan, unless it has already
        # ended in this DAG (a result came back, or its last job there ended and DAGMan will not retry it)
        waiting_but_ended = False
        if run_id in live and live[run_id][2] is None:
            dag = pending_in.get(run_id)
            cluster = dag.cluster if dag is not None else None
            if cluster is not None:  # its jobs of this DAG: queued after the DAGMan job
                in_dag = [j for j in attempts.get(run_id, []) if j.cluster > cluster]
            else:  # the DAG's cluster is not known yet
                in_dag = [job] if job is not None else []
            waiting = dag_wait(outcome.ok, in_dag, (dag.retries if dag is not None else None) or 0)
            if waiting is None:
                waiting_but_ended = True
            else:
                live[run_id] = (RunState.IDLE, waiting, None, False)
            job = in_dag[-1] if in_dag else job
        if run_id in live and not waiting_but_ended:
            rs.state, rs.detail, job_id, rs.transient = live[run_id]
            rs.job_id = job_id or rs.job_id
        else:
            outcome = outcome or read_run(paths.results(sweep), run_id, required)
            if outcome.ok:
                rs.state = RunState.DONE
                value = (outcome.metrics.test or {}).get(metric) if outcome.metrics is not None and metric else None
                if isinstance(value, (int, float)) and (best is None or (value > best.value if direction == "max"
                                                                         else value < best.value)):
                    best = Best(run_id, entry.name, str(metric), float(value))
            elif not manifest.on_pool and running_here(outcome.local):
                rs.state, rs.detail = RunState.RUNNING, "running here"
                rs.live = _live_line(paths.results(sweep) / run_id)
            elif job is not None and (job.state in (RunState.REMOVED, RunState.FAILED)
                                      or (job.state is RunState.HELD and not offline)):
                # a hold that is no longer in the queue ended in a removal
                rs.state = RunState.REMOVED if job.state is RunState.HELD else job.state
                hold = job.last_hold
                if job.state is RunState.FAILED:
                    rs.detail = f"exit {job.exit_code}" if job.exit_code is not None else f"signal {job.signal}"
                    rs.detail += f"; {outcome.reason}" if outcome.reason else ""
                elif hold is not None:
                    rs.detail = f"held ({hold.code}/{hold.subcode}): {hold.reason}"
                else:
                    rs.detail = job.removed_reason or "removed"
            elif outcome.state in (RunState.FAILED, RunState.CORRUPT):
                rs.state, rs.detail = RunState.FAILED, outcome.reason
            elif offline and run_id in submitted:
                # without the schedd a run may be queued or running: never "not run"
                rs.state = RunState.UNKNOWN
                rs.detail = (f"event log: {job.state} (job {job.job_id})" if job is not None
                             else "submitted; no event yet")
            elif run_id in submitted:
                rs.detail = "submitted, no trace in the queue or the event log"
        if not entry.in_grid and rs.state is RunState.NOT_RUN:
            continue  # a run of an earlier grid that never ran: not part of the sweep any more
        if rs.state is RunState.RUNNING and rs.live is None:
            rs.live = lines.get(run_id)
        runs.append(rs)
    return SweepStatus(sweep, runs, note, dags, schedd, best)


def counts_text(status: SweepStatus) -> str:
    """"2 running, 3 done", in ORDER."""
    c = status.counts()
    return ", ".join(f"{c[s]} {s}" for s in ORDER if c[s])


def progress_lines(status: SweepStatus) -> list[str]:
    """A line per running run with its last epoch (epoch k of n, metric, losses, time, ETA), and
    the best finished run so far. Job text is escaped (printable): never markup."""
    lines = []
    for r in status.runs:
        if r.state is RunState.RUNNING:
            lines.append(f"  running {printable(r.name)}: " + (printable(r.live.text()) if r.live is not None
                                                                else "no epoch reported yet"))
    if status.best is not None:
        b = status.best
        lines.append(f"  best so far: {printable(b.name)} ({b.run_id}), {b.metric} {b.value:.4g}")
    return lines


def print_status_json(sweep: str | None, root: Path, write=print) -> None:
    """`sweep status --json`: one JSON object per sweep (SweepStatus.as_json), on one line."""
    import json

    for name in [sweep] if sweep else list_sweeps(root):
        write(json.dumps(sweep_status(name, root).as_json(), allow_nan=False, default=str))


def print_status(sweep: str | None, root: Path, console) -> None:
    """Counts per state, a line per running run with its last epoch and the best so far, then a
    table of the held, failed and removed runs with why."""
    from rich.table import Table
    from rich.text import Text

    for name in [sweep] if sweep else list_sweeps(root):
        status = sweep_status(name, root)
        console.print(f"[bold]{name}[/]: {counts_text(status)}"
                      + (f"; {status.active_dags} DAG(s) active" if status.active_dags else ""))
        for line in progress_lines(status):
            console.print(Text(line))
        if status.pool_note:
            console.print(Text(status.pool_note, style="yellow"))
        search = _search_line(root, name)
        if search:
            console.print(search, markup=False, highlight=False)
        trouble = [r for r in status.runs if r.state in TROUBLE]
        if trouble:
            table = Table(title_justify="left")
            for col in ("run id", "name", "state", "job", "starts", "why"):
                table.add_column(col, overflow="fold")
            for r in trouble:
                # the detail holds job text (a hold reason, run.json's error): text, never markup
                table.add_row(r.run_id, r.name, str(r.state), r.job_id or "-", str(r.starts), Text(printable(r.detail)))
            console.print(table)


def _search_line(root: Path, sweep: str) -> str | None:
    """For a search: its sampler and pruner, and the last line of its driver's log."""
    from ..core.names import DRIVER_DIR, DRIVER_LOG
    from ..records.runs import tail

    search = load_manifest(root, sweep).search
    if search is None:
        return None
    last = tail(SweepPaths(root.resolve()).results(sweep) / DRIVER_DIR / DRIVER_LOG, 1)
    return (f"search: sampler {search.sampler}, pruner {search.pruner}, {search.trials} trials "
            f"({search.backend}); driver: {printable(last[-1])[:200] if last else 'no log yet'}")


def watch(sweep: str | None, root: Path, console, interval: float = 5.0, as_json=None) -> None:
    """Refresh the counts, the running jobs' epochs and the best so far until every run has ended:
    at once when the sweep's logs move (see activity), otherwise every `interval` seconds while
    something changes, less often (up to once a minute) while nothing does. With `as_json` (a
    function taking one line of text) each refresh is one JSON object per sweep, given to it."""
    import contextlib
    import json

    from rich.live import Live
    from rich.text import Text

    names = [sweep] if sweep else list_sweeps(root)
    follower, backoff = Follower(), Backoff(interval)
    shown = contextlib.nullcontext() if as_json is not None else Live(console=console, refresh_per_second=1)
    with shown as live:
        while True:
            seen = tuple(activity(root, name) for name in names)
            lines, finished = [], True
            for name in names:
                status = sweep_status(name, root, follower=follower)
                finished &= status.finished
                if as_json is not None:
                    as_json(json.dumps(status.as_json(), allow_nan=False, default=str))
                lines.append(f"{name}: {counts_text(status)}"
                             + (f"; {status.active_dags} DAG(s) active" if status.active_dags else ""))
                lines += progress_lines(status)
                lines += [f"  {status.pool_note}"] if status.pool_note else []
                lines += [f"  held {r.run_id}: {printable(r.detail)}" for r in status.runs
                          if r.state is RunState.HELD]
            if live is not None:
                live.update(Text("\n".join(lines + [time.strftime("updated %H:%M:%S")])))
            if finished:
                return
            # a local run's epochs move its progress.json, not the logs: look again within `interval`
            pause_while_quiet(lambda: tuple(activity(root, name) for name in names), seen,
                              time.monotonic() + min(backoff.next((lines, seen)), _live_cap(lines, interval)))


def _live_cap(lines: list[str], interval: float) -> float:
    """While a job reports epochs, poll at least every `interval` seconds (the back-off would
    otherwise grow while the counts stay the same)."""
    return interval if any(line.startswith("  running ") for line in lines) else float("inf")


def activity(root: Path, sweep: str) -> tuple[tuple[str, int, int], ...]:
    """What moves when the sweep does, cheaply (a few stat calls): the size and modification
    time of its job event log and of its DAGs' own logs (DAGMan's job log, where its end is
    written, and its .dagman.out). A poll loop asks the schedd again when this changes."""
    paths = SweepPaths(root.resolve())
    files = [paths.event_log(sweep), *sorted((paths.jobs(sweep) / DAGS_DIR).glob("*/*.dagman.log")),
             *sorted((paths.jobs(sweep) / DAGS_DIR).glob("*/*.dagman.out"))]
    seen = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        seen.append((path.name, st.st_size, st.st_mtime_ns))
    return tuple(seen)


#: How often a poll loop looks at the sweep's logs (stat calls only) between queries of the schedd.
LOG_TICK_S = 0.5


def wait_for(sweep: str, root: Path, timeout: float | None = None, interval: float = 2.0,
             cap: float = 60.0) -> SweepStatus:
    """Block until the sweep is finished (see SweepStatus.finished).

    Driven by the sweep's own logs: they are looked at every LOG_TICK_S seconds (stat calls), and
    the schedd is asked again as soon as one of them grows (a job started, ended, was held; a DAG
    ended). While nothing is written the schedd is still asked, every `interval` seconds at first,
    backing off up to `cap` (a job can leave the queue without a line in the log, e.g. when its
    log is not writable).

    Raises:
        BackendError: when it is not finished after `timeout` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    follower, backoff = Follower(), Backoff(interval, cap)
    while True:
        seen = activity(root, sweep)
        status = sweep_status(sweep, root, follower=follower)
        if status.finished:
            return status
        now = time.monotonic()
        if deadline is not None and now > deadline:
            counts = {str(k): v for k, v in status.counts().items()}
            raise BackendError(f"sweep {sweep} not finished after {timeout:.0f}s: {counts}")
        ask_again = now + backoff.next((sorted((r.run_id, str(r.state), r.starts) for r in status.runs), seen))
        if deadline is not None:
            ask_again = min(ask_again, deadline + 0.1)
        pause_while_quiet(lambda: activity(root, sweep), seen, ask_again)


def pause_while_quiet(look, seen, until: float) -> None:
    """Sleep until the monotonic time `until`, or until `look()` no longer returns `seen` (the
    logs moved), looking every LOG_TICK_S seconds."""
    while time.monotonic() < until and look() == seen:
        time.sleep(max(0.0, min(LOG_TICK_S, until - time.monotonic())))
