"""Read a sweep's HTCondor job event log (the `log =` file) into one record per job.

Uses htcondor2.JobEventLog (imported when a log is read), without blocking (stop_after=0). Each
job is tied to its run by the submit event's notes: "DAG Node: n<run-id>" (DAGMan; HTCondor 25.x
writes DAGNodeName = "n<run-id>") or "sweep-run <run-id>" (direct, before 25.x), and by the
SweepRunId of its job ad information events (job_ad_information_attrs), see sweep.core.names.
The terminate event's "Partitionable Resources" table gives what the job used against what it
requested and was allocated; held events give hold reasons; the execute events count starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.names import ATTR_RUN, DAG_NODE_PREFIX, RUN_NOTE_PREFIX
from ..core.states import RunState

RUN_NOTE = re.compile(rf"(?:DAG Node: {re.escape(DAG_NODE_PREFIX)}|DAGNodeName = \"{re.escape(DAG_NODE_PREFIX)}"
                      rf"|{re.escape(RUN_NOTE_PREFIX)} )([0-9a-f]{{12}}(?:-r\d+)?)")
RUN_ID = re.compile(r"[0-9a-f]{12}(?:-r\d+)?")
USAGE = re.compile(r"Usr (\d+) (\d+):(\d+):(\d+), Sys (\d+) (\d+):(\d+):(\d+)")
RESOURCE_KEYS = ("CpusUsage", "RequestCpus", "Cpus", "MemoryUsage", "RequestMemory", "Memory", "DiskUsage",
                 "RequestDisk", "Disk")
# (code, subcode; None: any): 34 memory exceeded (subcode 102 recent, 0 older), 21/102 under
# POLICY: HOLD_IF_MEMORY_EXCEEDED. Not 26: SystemPolicy is any administrator's SYSTEM_PERIODIC_HOLD.
MEMORY_HOLD_CODES = {(34, None), (21, 102)}
RUNTIME_HOLD_CODES = {46, 47}


def is_memory_hold(code: int | None, subcode: int | None) -> bool:
    """Whether a hold (HoldReasonCode, HoldReasonSubCode) means the job exceeded its memory."""
    return (code, None) in MEMORY_HOLD_CODES or (code, subcode) in MEMORY_HOLD_CODES


@dataclass
class Hold:
    """One hold of a job: when, HTCondor's code and subcode, and the reason."""

    at: int
    code: int | None
    subcode: int | None
    reason: str


@dataclass
class JobRecord:
    """One job (cluster.proc) as its events tell it: state, starts, holds, exit, resources used."""

    cluster: int
    proc: int
    run_id: str | None = None
    state: RunState = RunState.IDLE  # IDLE | RUNNING | HELD | DONE | FAILED | REMOVED
    submitted: int | None = None
    started: int | None = None  # last execute event
    ended: int | None = None
    starts: int = 0
    exit_code: int | None = None
    signal: int | None = None
    holds: list[Hold] = field(default_factory=list)
    released: int = 0
    removed_reason: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    peak_memory_mb: float | None = None  # largest MemoryUsage seen (image-size and terminate events)
    input_bytes: float | None = None  # transferred to the job, all starts (terminate event)
    output_bytes: float | None = None  # transferred back from it
    cpu_s: float | None = None
    wall_s: float | None = None

    @property
    def job_id(self) -> str:
        """"cluster.proc"."""
        return f"{self.cluster}.{self.proc}"

    @property
    def last_hold(self) -> Hold | None:
        """The latest hold, or None."""
        return self.holds[-1] if self.holds else None


def _seconds(match: re.Match[str], offset: int) -> int:
    d, h, m, s = (int(match.group(offset + i)) for i in range(4))
    return ((d * 24 + h) * 60 + m) * 60 + s


def parse_remote_usage(text: Any) -> float | None:
    """'Usr 0 00:01:02, Sys 0 00:00:03' -> 65.0 seconds of CPU."""
    m = USAGE.search(str(text or ""))
    return float(_seconds(m, 1) + _seconds(m, 5)) if m else None


def read_event_log(path: str | Path) -> dict[tuple[int, int], JobRecord]:
    """Every job in the log.

    Args:
        path: a job event log (HTCondor's user log format).

    Returns:
        One record per job, keyed by (cluster, proc); {} for an absent or empty log.
    """
    return EventLogReader(path).update()


class EventLogReader:
    """Follows a job event log: each update() reads only the events written since the last one
    (htcondor2.JobEventLog keeps its place), so a `--wait` or `status --watch` that polls for
    hours does not re-read the whole log at every tick."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.jobs: dict[tuple[int, int], JobRecord] = {}
        self._log: Any = None  # htcondor2.JobEventLog, once the log exists

    def update(self) -> dict[tuple[int, int], JobRecord]:
        """Read what is new; returns every job seen so far (the log may not exist yet)."""
        import htcondor2

        if self._log is None:
            if not self.path.is_file() or self.path.stat().st_size == 0:
                return self.jobs
            self._log = htcondor2.JobEventLog(str(self.path))
        for ev in self._log.events(stop_after=0):
            self._apply(ev, htcondor2.JobEventType)
        return self.jobs

    def close(self) -> None:
        """Close the log (a later update() opens it again from its start)."""
        if self._log is not None:
            self._log.close()
            self._log = None

    def _apply(self, ev: Any, T: Any) -> None:
        key = (ev.cluster, ev.proc)
        job = self.jobs.get(key)
        if job is None:
            job = self.jobs[key] = JobRecord(cluster=ev.cluster, proc=ev.proc)
        t = ev.type
        if t == T.SUBMIT:
            job.submitted = ev.timestamp
            m = RUN_NOTE.search(str(ev.get("LogNotes", "")))
            if m:
                job.run_id = m.group(1)
        elif t == T.JOB_AD_INFORMATION:  # job_ad_information_attrs: the job's SweepRunId
            run = ev.get(ATTR_RUN)
            if job.run_id is None and isinstance(run, str) and RUN_ID.fullmatch(run):
                job.run_id = run
        elif t == T.EXECUTE:
            job.state, job.started = RunState.RUNNING, ev.timestamp
            job.starts += 1
        elif t == T.IMAGE_SIZE:
            usage = ev.get("MemoryUsage")
            if usage is not None:
                job.peak_memory_mb = max(job.peak_memory_mb or 0, float(usage))
        elif t == T.JOB_HELD:
            job.state = RunState.HELD
            job.holds.append(Hold(ev.timestamp, ev.get("HoldReasonCode"), ev.get("HoldReasonSubCode"),
                                  str(ev.get("HoldReason", ""))))
        elif t == T.JOB_RELEASED:
            job.state = RunState.IDLE
            job.released += 1
        elif t in (T.JOB_EVICTED, T.SHADOW_EXCEPTION):
            if job.state is RunState.RUNNING:
                job.state = RunState.IDLE
        elif t == T.JOB_ABORTED:
            job.state, job.ended = RunState.REMOVED, ev.timestamp
            job.removed_reason = str(ev.get("Reason", "")) or None
        elif t == T.JOB_TERMINATED:
            job.ended = ev.timestamp
            normal = bool(ev.get("TerminatedNormally", True))
            job.exit_code = ev.get("ReturnValue") if normal else None
            job.signal = None if normal else ev.get("TerminatedBySignal")
            job.state = RunState.DONE if normal and job.exit_code == 0 else RunState.FAILED
            job.resources = {k: float(ev[k]) for k in RESOURCE_KEYS if ev.get(k) is not None}
            if "MemoryUsage" in job.resources:
                job.peak_memory_mb = max(job.peak_memory_mb or 0, job.resources["MemoryUsage"])
            job.cpu_s = parse_remote_usage(ev.get("RunRemoteUsage"))
            # what HTCondor moved for the job over all its starts: input (received by the job:
            # its data, code, config, spooled checkpoints) and output (sent back, checkpoints too)
            for attr, name in (("TotalReceivedBytes", "input_bytes"), ("TotalSentBytes", "output_bytes")):
                if ev.get(attr) is not None:
                    setattr(job, name, float(ev[attr]))
            if job.started is not None:
                job.wall_s = float(ev.timestamp - job.started)


def latest_by_run(jobs: dict[tuple[int, int], JobRecord]) -> dict[str, JobRecord]:
    """The most recent job of each run (a resubmission supersedes the earlier attempt)."""
    out: dict[str, JobRecord] = {}
    for job in sorted(jobs.values(), key=lambda j: (j.submitted or 0, j.cluster, j.proc)):
        if job.run_id:
            out[job.run_id] = job
    return out


def attempts_by_run(jobs: dict[tuple[int, int], JobRecord]) -> dict[str, list[JobRecord]]:
    """Every job of each run, oldest first."""
    out: dict[str, list[JobRecord]] = {}
    for job in sorted(jobs.values(), key=lambda j: (j.submitted or 0, j.cluster, j.proc)):
        if job.run_id:
            out.setdefault(job.run_id, []).append(job)
    return out
