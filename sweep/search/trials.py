"""Where a search's trials run: one small interface, two executors (in the spirit of submitit).

An executor starts a trial's job from its rendered files, tells the driver what its jobs are
doing (live or ended, the pruner's values so far, a hold the driver must act on), passes the
pruner's stop to a job, and removes a job. HTCondorTrials acts only on this sweep's jobs of the
submitting owner (and the clusters it submitted); LocalTrials runs the jobs on this machine with
the local backend.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..core import names
from ..core.errors import BackendError
from ..core.render import RenderedRun, RenderedSweep, submit_string
from ..fsutil import atomic_write_text
from ..records.base import RecordError
from ..records.events import is_memory_hold
from ..records.progress import read_progress


@dataclass
class TrialJob:
    """A trial's job: which run it trains and where it runs."""

    run_id: str
    job: str  # "cluster.proc" on a pool, "pid:<pid>" here
    results_dir: Path
    started: float = field(default_factory=time.monotonic)


@dataclass
class Observation:
    """What a trial's job is doing now."""

    live: bool  # queued, running, or held (and not yet acted on)
    values: list[float] = field(default_factory=list)  # the pruner's column, one per finished epoch
    hold: str | None = None  # held for a reason sweep does not release: the driver fails the trial
    state: str = ""  # for the progress line: idle, running, held (memory), ...


class TrialExecutor(Protocol):
    """Where a search's trials run, as its driver uses them: each trial one job, started, watched,
    judged epoch by epoch, asked to stop or removed. `name` is the backend the manifest records
    (sweep.core.names.BACKEND_*)."""

    name: str

    def native_memory_retry(self) -> bool:
        """Whether the jobs' memory escalation is left to the schedd (HTCondor 25.2.1 on and a grid
        with condor.memory_escalation): the trials are then rendered for it."""
        ...

    def start(self, sweep: RenderedSweep, run: RenderedRun) -> TrialJob:
        """Queue (or start) the run's job. Raises BackendError when it cannot."""
        ...

    def observe(self, jobs: list[TrialJob]) -> dict[str, Observation]:
        """run id -> what its job is doing. Raises BackendError when nothing can be known now."""
        ...

    def request_prune(self, job: TrialJob) -> None:
        """Ask the job to stop at the end of its epoch."""
        ...

    def judged(self, job: TrialJob, epochs: int) -> None:
        """Tell the job that its first `epochs` epochs are judged: it waits for that after each
        report, then goes on (or stops, when asked to). Raises BackendError when it cannot."""
        ...

    def activity(self, jobs: list[TrialJob]) -> object:
        """Something cheap to compute that changes when a job reports or ends (the driver then
        looks at once instead of at its next poll); a constant where nothing is cheap."""
        ...

    def remove(self, job: TrialJob, reason: str) -> None:
        """Remove the job (the search no longer wants it), giving `reason` (the schedd's removal
        reason; the local run's recorded failure). Raises BackendError when it cannot."""
        ...

    def find(self, run_id: str) -> TrialJob | None:
        """A live job of this run left by an earlier driver (resume), or None."""
        ...

    def close(self) -> None:
        """The driver ends (done or interrupted): processes started here are killed and recorded as
        interrupted; jobs on a pool stay queued, for a restarted driver to find."""
        ...


def _values(text) -> list[float]:
    out = []
    for part in str(text or "").split(","):
        try:
            out.append(float(part))
        except ValueError:
            continue
    return out


# ----------------------------------------------------------------- HTCondor
PROJECTION = ["ClusterId", "ProcId", "JobStatus", names.ATTR_RUN, names.ATTR_TRIAL, names.ATTR_PROGRESS,
              "HoldReason", "HoldReasonCode", "HoldReasonSubCode", "NumJobStarts"]


class HTCondorTrials(TrialExecutor):
    """Trials as jobs on the pool: one cluster each (the backend's direct mode: its memory
    escalation, retries and runtime limit), followed by the schedd's queue and the job ClassAds
    their jobs update through chirp."""

    name = names.BACKEND_HTCONDOR

    def __init__(self, spec, schedd=None):
        from ..submit.backends import htcondor

        self.spec = spec
        self._htcondor = htcondor
        self.backend = htcondor.HTCondorBackend(use_dag=False, schedd=schedd)
        self.owner = htcondor.submitting_owner()
        escalation = spec.condor.get("memory_escalation") or {}
        self.releases = escalation.get("releases") if escalation else None

    def native_memory_retry(self) -> bool:
        return bool(self.spec.condor.get("memory_escalation")) and self.backend.native_memory_retry()

    def _mine(self) -> str:
        return (f"Owner =?= {submit_string(self.owner)} && {names.ATTR_SWEEP} =?= {submit_string(self.spec.name)} "
                f"&& {names.ATTR_RUN} =!= undefined")

    def start(self, sweep: RenderedSweep, run: RenderedRun) -> TrialJob:
        report = self.backend.submit(sweep, [run])
        return TrialJob(run.run.run_id, f"{report.details['cluster']}.0", run.results_dir)

    def _query(self, constraint: str) -> list:
        try:
            return list(self.backend.schedd.query(constraint=constraint, projection=PROJECTION))
        except Exception as exc:  # noqa: BLE001 - the bindings raise several kinds; all mean "no answer now"
            raise BackendError(f"the schedd does not answer: {exc}") from None

    def observe(self, jobs: list[TrialJob]) -> dict[str, Observation]:
        if not jobs:
            return {}
        clusters = sorted({int(j.job.split(".")[0]) for j in jobs})
        ads = self._query(f"{self._mine()} && member(ClusterId, {{{', '.join(map(str, clusters))}}}) =?= true")
        by_job = {f"{ad['ClusterId']}.{ad['ProcId']}": ad for ad in ads}
        out = {}
        for j in jobs:
            ad = by_job.get(j.job)
            status = int(ad.get("JobStatus", 0)) if ad is not None else 0
            if ad is None or status in (3, 4):  # left the queue, or leaving it: its outputs are back
                out[j.run_id] = Observation(live=False)
                continue
            obs = Observation(live=True, values=_values(ad.get(names.ATTR_PROGRESS)),
                              state={1: "idle", 2: "running", 5: "held"}.get(status, "running"))
            if status == 5:
                code, sub = ad.get("HoldReasonCode"), ad.get("HoldReasonSubCode")
                starts = int(ad.get("NumJobStarts") or 0)
                if is_memory_hold(code, sub) and self.releases is not None and starts <= int(self.releases):
                    obs.state = "held (memory: released with more)"
                else:
                    obs.hold = f"held (code {code}): {ad.get('HoldReason', 'no reason given')}"
            out[j.run_id] = obs
        return out

    def request_prune(self, job: TrialJob) -> None:
        # the job reads prune.request in its submit-side folder through chirp within a second; the
        # attribute is what it read before (condor_qedit -forward: the schedd forwards only a job's
        # first such edit at once, later ones half a minute later, measured on 23.9)
        ask_to_stop(job)
        htcondor2 = self._htcondor.bindings()
        try:
            self.backend.schedd.edit([job.job], names.ATTR_PRUNE, "true", flags=htcondor2.TransactionFlag.SetDirty)
        except Exception as exc:  # noqa: BLE001 - the bindings raise several kinds; all mean "not set"
            raise BackendError(f"cannot set {names.ATTR_PRUNE} on job {job.job}: {exc}") from None

    def judged(self, job: TrialJob, epochs: int) -> None:
        tell_judged(job, epochs)  # read by the job through chirp from its submit-side folder (its Iwd)

    def activity(self, jobs: list[TrialJob]) -> object:
        return None  # nothing cheaper than asking the schedd: the driver polls

    def remove(self, job: TrialJob, reason: str) -> None:
        htcondor2 = self._htcondor.bindings()
        try:
            self.backend.schedd.act(htcondor2.JobAction.Remove, [job.job], reason=f"sweep search: {reason}"[:200])
        except Exception as exc:  # noqa: BLE001 - the bindings raise several kinds; all mean "not removed"
            raise BackendError(f"cannot remove job {job.job}: {exc}") from None

    def find(self, run_id: str) -> TrialJob | None:
        ads = self._query(f"{self._mine()} && {names.ATTR_RUN} =?= {submit_string(run_id)} && "
                          "JobStatus =!= 3 && JobStatus =!= 4")
        if not ads:
            return None
        ad = max(ads, key=lambda a: int(a["ClusterId"]))
        return TrialJob(run_id, f"{ad['ClusterId']}.{ad['ProcId']}",
                        names.SweepPaths(self.spec.root).results(self.spec.name) / run_id)

    def close(self) -> None:
        pass


def tell_judged(job: TrialJob, epochs: int) -> None:
    """progress.seen in the run's folder: the job, waiting for the verdict on its last epoch, reads
    it there (here directly; on a pool through chirp, the folder being its submit-side Iwd).

    Raises:
        BackendError: the folder cannot be written.
    """
    try:
        atomic_write_text(job.results_dir / names.PROGRESS_SEEN, f"{int(epochs)}\n", mode=0o644)
    except OSError as exc:
        raise BackendError(f"cannot tell job {job.job} its epochs are judged: {exc}") from None


def ask_to_stop(job: TrialJob) -> None:
    """prune.request in the run's folder: the job stops at the end of its epoch.

    Raises:
        BackendError: the folder cannot be written.
    """
    try:
        atomic_write_text(job.results_dir / names.PRUNE_REQUEST, "pruned by the search's driver\n", mode=0o644)
    except OSError as exc:
        raise BackendError(f"cannot ask job {job.job} to stop: {exc}") from None


# ----------------------------------------------------------------- this machine
class LocalTrials(TrialExecutor):
    """Trials as processes on this machine (the local backend's jobs); their channel is files."""

    name = names.BACKEND_LOCAL

    def __init__(self, spec, cpus: int | None = None):
        from ..submit.backends.local import LocalBackend

        self.spec = spec
        self.backend = LocalBackend(cpus=cpus, progress=False)
        self.running: dict[str, object] = {}

    def native_memory_retry(self) -> bool:
        return False

    def start(self, sweep: RenderedSweep, run: RenderedRun) -> TrialJob:
        job = self.backend._start(sweep, run)
        self.running[run.run.run_id] = job
        return TrialJob(run.run.run_id, f"pid:{job.proc.pid}", run.results_dir)

    def observe(self, jobs: list[TrialJob]) -> dict[str, Observation]:
        out = {}
        for j in jobs:
            running = self.running.get(j.run_id)
            values: list[float] = []
            try:  # none yet, or unreadable (a job's file: untrusted): nothing reported this time
                progress = read_progress(j.results_dir)
                values = progress.values if progress is not None else []
            except RecordError:
                pass
            if running is None:
                out[j.run_id] = Observation(live=False, values=values)
                continue
            code, reason = running.proc.poll(), None
            if code is None and time.monotonic() > running.deadline:
                self.backend._kill(running)
                code = running.proc.returncode
                reason = f"runtime limit exceeded: ran longer than {self.spec.resources.runtime_s}s and was killed"
            if code is None:
                out[j.run_id] = Observation(live=True, values=values, state="running")
                continue
            self.backend._record(running, code, reason)
            del self.running[j.run_id]
            out[j.run_id] = Observation(live=False, values=values)
        return out

    def request_prune(self, job: TrialJob) -> None:
        ask_to_stop(job)

    def judged(self, job: TrialJob, epochs: int) -> None:
        tell_judged(job, epochs)

    def activity(self, jobs: list[TrialJob]) -> object:
        seen = []
        for j in jobs:
            try:
                st = (j.results_dir / names.PROGRESS_FILE).stat()
                seen.append((j.run_id, st.st_size, st.st_mtime_ns))
            except OSError:
                seen.append((j.run_id, -1, -1))
            running = self.running.get(j.run_id)
            seen.append((j.run_id, running is None or running.proc.poll() is not None, 0))
        return tuple(seen)

    def remove(self, job: TrialJob, reason: str) -> None:
        running = self.running.pop(job.run_id, None)
        if running is not None:
            self.backend._kill(running)
            self.backend._record(running, running.proc.returncode or -15, reason)
        elif job.job.startswith("pid:"):
            kill_orphan(int(job.job[4:]))

    def find(self, run_id: str) -> TrialJob | None:
        return None  # an earlier driver's processes are not ours to follow (see kill_orphan)

    def close(self) -> None:
        for run_id in list(self.running):
            running = self.running.pop(run_id)
            self.backend._kill(running)
            self.backend._record(running, -15, "interrupted: the search was stopped")


def kill_orphan(pid: int) -> None:
    """Stop the job process group an earlier local driver started and left behind (the driver was
    killed): the trial is run again from its start, so it must not also go on."""
    try:  # only a job of ours: the pid may have been reused since
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return
    if b"sweep.job" not in cmdline and names.WRAPPER.encode() not in cmdline:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    for _ in range(50):
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
