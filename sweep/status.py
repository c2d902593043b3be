"""`sweep status`: where every run of a sweep stands, from the schedd (live), the sweep's job
event log (history) and the results folder (what came back)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .core.errors import SweepError
from .project import read_manifest, sweep_paths
from .results import read_run

ORDER = ("idle", "running", "held", "done", "failed", "removed", "not run")


@dataclass
class RunState:
    run_id: str
    name: str
    state: str
    detail: str = ""
    job_id: str | None = None
    starts: int = 0
    transient: bool = False  # held, but the job's own policy will release or remove it


@dataclass
class SweepStatus:
    sweep: str
    runs: list[RunState]
    pool_note: str = ""
    active_dags: int = 0
    schedd: object = field(default=None, repr=False)

    def counts(self) -> Counter:
        return Counter(r.state for r in self.runs)

    @property
    def finished(self) -> bool:
        c = self.counts()
        return (not (c["idle"] or c["running"]) and not self.active_dags
                and not any(r.transient for r in self.runs))

    def remove_held(self, run_ids: list[str]) -> None:
        """Remove held jobs of these runs from the queue before they are rerun."""
        held = [r for r in self.runs if r.run_id in run_ids and r.state == "held" and r.job_id]
        if not held or self.schedd is None:
            return
        from .backends.htcondor import bindings

        htcondor2 = bindings()
        self.schedd.act(htcondor2.JobAction.Remove, [r.job_id for r in held], reason="sweep resubmit")


def _live(sweep: str, manifest: dict) -> tuple[dict, int, object, str]:
    """(run id -> (state, detail, job id)), active DAGs, schedd, note) from the schedd, if reachable."""
    if not any(s.get("backend") == "htcondor" for s in manifest.get("submissions", [])):
        return {}, 0, None, ""
    from .backends.htcondor import JOB_STATUS, connect, sweep_queue

    try:
        schedd = connect(timeout=5)
    except SweepError as exc:
        return {}, 0, None, f"live state unavailable: {exc}"
    queue = sweep_queue(schedd, sweep, manifest)
    live = {}
    for run_id, ad in queue.jobs.items():
        status = JOB_STATUS.get(int(ad.get("JobStatus", 0)), "unknown")
        detail = str(ad.get("HoldReason", "")) if status == "held" else ""
        state = "running" if status in ("transferring", "suspended") else status
        live[run_id] = (state, detail, f"{ad['ClusterId']}.{ad['ProcId']}", _transient(ad, status))
    for run_id in queue.pending:
        live[run_id] = ("idle", "waiting in its DAG", None, False)
    return live, queue.active_dags, schedd, ""


def _transient(ad, status: str) -> bool:
    """A hold the job's own policy ends: a memory hold with a release expression (escalation),
    or a runtime-limit hold with a remove expression. A user's hold is not transient."""
    if status != "held":
        return False
    from .backends.condor_events import RUNTIME_HOLD_CODES, is_memory_hold

    code, sub = ad.get("HoldReasonCode"), ad.get("HoldReasonSubCode")
    has = lambda key: key in ad and str(ad.get(key)).strip().lower() not in ("false", "")  # noqa: E731
    return (is_memory_hold(code, sub) and has("PeriodicRelease")) or (code in RUNTIME_HOLD_CODES
                                                                       and has("PeriodicRemove"))


def sweep_status(sweep: str, root: Path, query_schedd: bool = True) -> SweepStatus:
    paths = sweep_paths(root)
    manifest = read_manifest(paths.jobs(sweep))
    if manifest is None:
        raise SweepError(f"no sweep '{sweep}' under {paths.root / 'jobs'} (run `sweep submit GRID` first)")
    live, dags, schedd, note = _live(sweep, manifest) if query_schedd else ({}, 0, None, "")
    from .backends.condor_events import latest_by_run, read_event_log

    events = latest_by_run(read_event_log(paths.event_log(sweep))) if paths.event_log(sweep).exists() else {}
    required = [m for m, _ in manifest.get("ranking", [])]
    submitted = {r for s in manifest.get("submissions", []) for r in s.get("runs", [])}
    runs = []
    for entry in manifest["runs"]:
        run_id = entry["run_id"]
        job = events.get(run_id)
        rs = RunState(run_id, entry["name"], "not run", job_id=job.job_id if job else None,
                      starts=job.starts if job else 0)
        outcome = read_run(paths.results(sweep), run_id, required) if run_id not in live or live[run_id][2] is None \
            else None
        # a run of an active DAG with no job in the queue is waiting for DAGMan, unless it has already
        # ended (a result came back or the event log says it terminated)
        waiting_but_ended = (run_id in live and live[run_id][2] is None
                             and (outcome.ok or (job is not None and job.state in ("done", "failed", "removed"))))
        if run_id in live and not waiting_but_ended:
            rs.state, rs.detail, job_id, rs.transient = live[run_id]
            rs.job_id = job_id or rs.job_id
        else:
            outcome = outcome or read_run(paths.results(sweep), run_id, required)
            if outcome.ok:
                rs.state = "done"
            elif job is not None and job.state in ("removed", "failed", "held"):
                rs.state = "removed" if job.state == "held" else job.state
                hold = job.last_hold
                if job.state == "failed":
                    rs.detail = f"exit {job.exit_code}" if job.exit_code is not None else f"signal {job.signal}"
                    rs.detail += f"; {outcome.reason}" if outcome.reason else ""
                elif hold is not None:
                    rs.detail = f"held ({hold.code}/{hold.subcode}): {hold.reason}"
                else:
                    rs.detail = job.removed_reason or "removed"
            elif outcome.state in ("failed", "corrupt"):
                rs.state, rs.detail = "failed", outcome.reason
            elif run_id in submitted:
                rs.detail = "submitted, no trace in the queue or the event log"
        runs.append(rs)
    return SweepStatus(sweep, runs, note, dags, schedd)


def print_status(sweep: str | None, root: Path, console) -> None:
    from rich.table import Table

    from .collect import list_sweeps

    for name in [sweep] if sweep else list_sweeps(root):
        status = sweep_status(name, root)
        c = status.counts()
        console.print(f"[bold]{name}[/]: " + ", ".join(f"{c[s]} {s}" for s in ORDER if c[s])
                      + (f"; {status.active_dags} DAG(s) active" if status.active_dags else ""))
        if status.pool_note:
            console.print(f"[yellow]{status.pool_note}[/]")
        trouble = [r for r in status.runs if r.state in ("held", "failed", "removed")]
        if trouble:
            table = Table(title_justify="left")
            for col in ("run id", "name", "state", "job", "starts", "why"):
                table.add_column(col, overflow="fold")
            for r in trouble:
                table.add_row(r.run_id, r.name, r.state, r.job_id or "-", str(r.starts), r.detail)
            console.print(table)


def watch(sweep: str | None, root: Path, console, interval: float = 5.0) -> int:
    from rich.live import Live
    from rich.text import Text

    from .collect import list_sweeps

    names = [sweep] if sweep else list_sweeps(root)
    with Live(console=console, refresh_per_second=1) as live:
        while True:
            lines, finished = [], True
            for name in names:
                status = sweep_status(name, root)
                c = status.counts()
                finished &= status.finished
                lines.append(f"{name}: " + ", ".join(f"{c[s]} {s}" for s in ORDER if c[s]))
                lines += [f"  held {r.run_id}: {r.detail}" for r in status.runs if r.state == "held"]
            live.update(Text("\n".join(lines + [time.strftime("updated %H:%M:%S")])))
            if finished:
                return 0
            time.sleep(interval)


def wait_for(sweep: str, root: Path, console, timeout: float | None = None, interval: float = 3.0) -> SweepStatus:
    """Block until no run is idle or running and no DAG of the sweep is active (held runs end
    the wait: they need a person, or the memory policy releases them before)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = sweep_status(sweep, root)
        if status.finished:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise SweepError(f"sweep {sweep} not finished after {timeout:.0f}s: {dict(status.counts())}")
        time.sleep(interval)
