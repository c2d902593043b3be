"""Read every run of a sweep into a Leaderboard: the valid ones ranked, the others with why,
and what each job used against what it asked for (from the job event log, or run.json)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.names import LEADERBOARD, RESOURCES, SweepPaths
from ..core.ranking import pareto_front, rank
from ..core.schema import metrics_for
from ..core.states import RunState
from ..core.units import format_duration
from ..fsutil import atomic_write_text, file_digest
from ..records.events import attempts_by_run, is_memory_hold, read_event_log
from ..records.manifest import Manifest, ResourceRequest, SearchInfo, load_manifest, remember_memory
from ..records.runinfo import PHASES, RunInfo
from ..records.runs import RunOutcome, mark_stale, read_run, verify_outputs
from .spreadsheet import csv_text


@dataclass
class Advice:
    """Right-sizing for the next sweep, from the finished runs' measured use."""

    runs_measured: int
    max_memory_mb: float
    requested_memory_mb: float
    suggested_memory_mb: int
    max_cpus_used: float
    requested_cpus: float
    suggested_cpus: int
    max_wall_s: float
    suggested_runtime_s: int

    def sentence(self) -> str:
        """The advice in words (the terminal and the HTML report print the same sentence)."""
        fd = format_duration
        return (f"right-sizing for the next sweep ({self.runs_measured} finished runs): request_memory: "
                f"{self.suggested_memory_mb}MB (largest use {self.max_memory_mb:.0f} of "
                f"{self.requested_memory_mb:.0f} MB requested), request_cpus: {self.suggested_cpus} (busiest job "
                f"kept {self.max_cpus_used:.2f} of {self.requested_cpus:.0f} busy), runtime: "
                f"{fd(self.suggested_runtime_s)} (longest run {fd(self.max_wall_s)})")


@dataclass
class TimeUse:
    """Where the core-seconds allocated to a sweep's jobs went, from the phases their run.json
    records (sweep/job/phases.py): allocated = each job's wall time × the CPUs it was given."""

    runs: int  # runs whose last start recorded its phases
    allocated_core_s: float
    training_core_s: float  # CPU seconds of training (every thread)
    phase_core_s: dict[str, float]  # phase -> its wall seconds × the job's CPUs, summed
    queue_s: list[float]  # each run's wait from submission to its first start (not allocated)

    @property
    def training_efficiency(self) -> float:
        """Training core-seconds ÷ allocated core-seconds (0 when nothing was allocated)."""
        return self.training_core_s / self.allocated_core_s if self.allocated_core_s else 0.0

    def sentence(self) -> str:
        """The sweep's time use in words (the terminal and the HTML report print the same sentence)."""
        total = self.allocated_core_s
        shares = ", ".join(f"{name} {core_s / total:.0%}" for name, core_s in self.phase_core_s.items()
                           if name != "training") if total else ""
        rest = total - sum(self.phase_core_s.values())
        outside = ""
        if total and rest > 0:
            outside = f", outside sweep's Python (wrapper, exit, transfers) {rest / total:.0%}"
        wait = ""
        if self.queue_s:
            ordered = sorted(self.queue_s)
            wait = f"; queue wait (not allocated): median {format_duration(ordered[len(ordered) // 2])}"
        return (f"training efficiency {self.training_efficiency:.0%}: of the {format_duration(total)} of "
                f"core time allocated to {self.runs} job(s), training kept {format_duration(self.training_core_s)} "
                f"busy; the rest went to {shares}{outside}{wait}")


@dataclass
class Leaderboard:
    """A sweep's runs as collect read them: the valid ones ranked (`table`, one row per run), the
    others with their reason (`problems`), what each used against what it asked for (`resources`,
    with right-sizing `advice`), and what the manifest says of the sweep."""

    sweep: str
    model: str
    ranking: list[tuple[str, str]]
    swept: list[str]
    table: pd.DataFrame
    problems: list[RunOutcome]
    total: int
    csv_path: Path | None = None
    resources: pd.DataFrame | None = None
    advice: Advice | None = None
    runs_per_config: dict[str, int] | None = None  # manifest runs of each configuration (repeats)
    results_dir: Path | None = None
    jobs_dir: Path | None = None
    outside_grid: list[str] = field(default_factory=list)  # ranked runs the current grid no longer has
    #: a search's trials its pruner stopped: run id, name, epochs reached, the value it was stopped at
    pruned: list[dict] = field(default_factory=list)
    search: SearchInfo | None = None  # the manifest's search block (sampler, pruner, objectives, journal)
    time_use: TimeUse | None = None  # where the jobs' allocated core-seconds went (runs with phases)
    window_split: list[str] = field(default_factory=list)  # ranked peak finders tested on a per-window split
    #: ranked run -> where its result comes from and whether its files are the job's (run_provenance)
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def repeats(self) -> int:
        """Runs per configuration (the most any configuration has; 1 without repeats)."""
        return max(self.runs_per_config.values(), default=1) if self.runs_per_config else 1


def _flatten(value: Any) -> Any:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return value


def _as_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_as_tuple(v) for v in value)
    return value


def collect(sweep: str, root: Path, write_csv: bool = True, *, read_only: bool = False) -> Leaderboard:
    """Read every run of the sweep and rank the valid ones by the sweep's ranking.

    Args:
        sweep: the sweep's name.
        root: the project folder.
        write_csv: also write results/<sweep>/leaderboard.csv and resources.csv.
        read_only: write nothing and take no lock (the Python API): no CSV, no memory kept,
            and list hyperparameters stay tuples (the CSV's table has them as "[a,b]" text).

    Returns:
        The Leaderboard. Unless read_only, as a side effect the memory runs needed after memory
        holds is kept in the manifest, for their next submission.

    Raises:
        ResultsError: no such sweep, or an unreadable manifest.
    """
    paths = SweepPaths(root.resolve())
    manifest = load_manifest(root, sweep)
    model = manifest.model
    ranking = list(manifest.ranking)
    swept = list(manifest.swept)
    results_dir = paths.results(sweep)
    required = [m for m, _ in ranking]
    attempts = _event_log_attempts(paths.event_log(sweep))
    dataset = _current_dataset(manifest)
    records, problems, usage, outside, window_split, total = [], [], [], [], [], 0
    pruned: list[dict] = []
    provenance: dict[str, dict[str, Any]] = {}
    search = manifest.search
    for entry in manifest.runs:
        # a result whose files changed since its job wrote them is not ranked (records.runs.verify_outputs)
        outcome = verify_outputs(results_dir, mark_stale(read_run(results_dir, entry.run_id, required), dataset))
        if not entry.in_grid:
            if not outcome.ok:
                continue  # a run of an earlier grid without a result: nobody wants it now
            outside.append(entry.run_id)
        total += 1
        jobs = attempts.get(entry.run_id, [])
        resources = _resources(jobs, outcome)
        if resources:
            usage.append({"run_id": entry.run_id, "name": entry.name, "state": str(outcome.state), **resources})
        if outcome.state is RunState.PRUNED:  # a search trial stopped by its pruner: not ranked
            stop = outcome.metrics.pruned if outcome.metrics is not None else None
            pruned.append({"run_id": entry.run_id, "name": entry.name, "trials": entry.trials or [],
                           "epochs_run": outcome.metrics.epochs_run if outcome.metrics is not None else None,
                           "column": stop.column if stop else None, "value": stop.value if stop else None})
            continue
        if not outcome.ok:
            _explain_from_event_log(outcome, jobs)
            problems.append(outcome)
            continue
        provenance[entry.run_id] = run_provenance(outcome)
        m = outcome.metrics
        if model == "lstm" and (m.split.by if m.split else None) != "waveform":
            window_split.append(entry.run_id)
        record = {"run_id": entry.run_id, "config_id": entry.config_id, "name": entry.name, "repeat": entry.repeat}
        shown = _as_tuple if read_only else _flatten
        record.update({k: shown(entry.swept.get(k)) for k in swept})
        record.update({k: v for k, v in (m.test or {}).items() if k in metrics_for(model)
                       or k in ("mae", "mse", "bias", "rel_bias", "resolution", "rel_resolution")})
        record.update(best_epoch=m.best_epoch, epochs_run=m.epochs_run, train_seconds=m.train_seconds, seed=entry.seed)
        record.update({k: resources.get(k) for k in ("cpus_used", "memory_used_mb", "wall_s")})
        if search is not None:
            record["trial"] = min(entry.trials or [-1])
        records.append(record)
    objectives = list(search.objectives) if search is not None else []
    if len(objectives) > 1:  # a multi-objective search: which trials no other beats in every objective
        for record, on_front in zip(records, pareto_front(records, objectives), strict=True):
            record["pareto"] = on_front
    table = rank(records, ranking)
    board = Leaderboard(sweep=sweep, model=model, ranking=ranking, swept=swept, table=table,
                        problems=problems, total=total, results_dir=results_dir,
                        jobs_dir=paths.jobs(sweep), outside_grid=outside, window_split=window_split,
                        pruned=pruned, search=search, provenance=provenance)
    per_config: dict[str, int] = {}
    for entry in manifest.runs:
        per_config[entry.config_id] = per_config.get(entry.config_id, 0) + 1
    board.runs_per_config = per_config
    board.resources = pd.DataFrame.from_records(usage) if usage else None
    board.advice = _advice(usage, manifest.resources)
    board.time_use = _time_use(usage)
    learned = _learned_memory(attempts)
    if learned and not read_only:
        remember_memory(paths.jobs(sweep), learned)
    if write_csv and not read_only:
        board.csv_path = results_dir / LEADERBOARD
        atomic_write_text(board.csv_path, csv_text(table))
        if board.resources is not None:
            atomic_write_text(results_dir / RESOURCES, csv_text(board.resources))
    return board


def run_provenance(outcome: RunOutcome) -> dict[str, Any]:
    """Where a run's result comes from, as its run.json says (the project's commit and whether it
    was dirty, the submit host, the HTCondor that queued it and the execute node's, the node it
    ran on), and `files`: "verified" (each output matches the sha256 its job recorded),
    "modified" (one does not: collect does not rank it) or "unverified" (no sha256 recorded: a
    run of an older sweep)."""
    info = outcome.run_info
    p = info.provenance if info is not None else None
    files = {True: "verified", False: "modified", None: "unverified"}[outcome.verified]
    return {"commit": p.commit if p else None, "dirty": p.dirty if p else None,
            "submit_host": p.submit_host if p else None, "submit_condor": p.submit_condor if p else None,
            "execute_condor": p.execute_condor if p else None, "host": info.host if info else None,
            "files": files}


def _current_dataset(manifest: Manifest) -> str | None:
    """The sha256 of the sweep's dataset as it is now (re-read when its size or modification time
    changed since the manifest recorded it; the recorded one when the file is gone)."""
    recorded = manifest.dataset
    if recorded is None:
        return None
    if Path(recorded.path).is_file():
        try:
            return file_digest(recorded.path, recorded.digest())["sha256"]
        except OSError:
            pass
    return recorded.sha256


def _event_log_attempts(path: Path) -> dict:
    if not path.is_file():
        return {}
    return attempts_by_run(read_event_log(path))


def _fetched_mb(run_info: RunInfo | None) -> float | None:
    dataset = run_info.dataset if run_info is not None else None
    return dataset.transferred_bytes / 1e6 if dataset and dataset.fetched_from and dataset.transferred_bytes else None


def _megabytes(values) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / 1e6 if known else None


def _resources(jobs: list, outcome: RunOutcome) -> dict[str, Any]:
    """What the run used against what it asked for: from the last HTCondor attempt's terminate
    event, or (local backend) from the local exit record and run.json."""
    last = next((j for j in reversed(jobs) if j.resources), None)
    if last is not None:
        r = last.resources
        # the CPUs the job kept busy on average: its CPU time over its run time where both are known
        # (HTCondor's CpusUsage is a sample that a short job can end before: "0.00 of 1" beside 80 %)
        busy = last.cpu_s / last.wall_s if last.cpu_s is not None and last.wall_s else r.get("CpusUsage")
        out = {"cpus_used": busy, "cpus_requested": r.get("RequestCpus"),
               "memory_used_mb": last.peak_memory_mb if last.peak_memory_mb is not None else r.get("MemoryUsage"),
               "memory_requested_mb": r.get("RequestMemory"), "memory_allocated_mb": r.get("Memory"),
               "disk_used_mb": r["DiskUsage"] / 1024 if r.get("DiskUsage") is not None else None,
               "wall_s": last.wall_s, "cpu_s": last.cpu_s, "starts": sum(j.starts for j in jobs),
               "holds": sum(len(j.holds) for j in jobs),
               # every attempt's transfers, in MB (10^6 bytes): what the run cost the schedd
               "input_mb": _megabytes(j.input_bytes for j in jobs),
               "output_mb": _megabytes(j.output_bytes for j in jobs),
               # fetched by a transfer plugin from data.url: the event log's bytes are only what the
               # submit node sent (measured on the tests' pool: a 3.7 MB URL input is not in them)
               "fetched_mb": _fetched_mb(outcome.run_info)}
    elif outcome.run_info and outcome.run_info.duration_s is not None:
        threads = outcome.run_info.threads
        # the local backend timed the job's whole process (interpreter start and exit included, as
        # HTCondor does); run.json's duration starts once the job's main has begun
        local = outcome.local.wall_s if outcome.local is not None else None
        wall = local or outcome.run_info.duration_s
        out = {"cpus_requested": threads.cpus if threads else None, "wall_s": wall, "starts": 1}
    else:
        return {}
    first = jobs[0] if jobs else None
    if first is not None and first.submitted is not None and first.started is not None and first.starts == 1:
        out["queue_s"] = max(0, first.started - first.submitted)
    phases = outcome.run_info.phases if outcome.run_info is not None else None
    for name, phase in (phases or {}).items():  # this run's last start: where its time went
        out[f"{name}_s"] = phase.wall_s
    if phases and "training" in phases:
        out["training_cpu_s"] = phases["training"].cpu_s
    if out.get("cpu_s") and out.get("wall_s") and out.get("cpus_requested"):
        out["cpu_efficiency"] = out["cpu_s"] / (out["wall_s"] * out["cpus_requested"])
    elif out.get("cpus_used") is not None and out.get("cpus_requested"):
        out["cpu_efficiency"] = out["cpus_used"] / out["cpus_requested"]
    if out.get("memory_used_mb") is not None and out.get("memory_requested_mb"):
        out["memory_efficiency"] = out["memory_used_mb"] / out["memory_requested_mb"]
    return out


def timed_runs(board: Leaderboard) -> tuple[list[str], pd.DataFrame] | None:
    """The phases shown (those some run recorded, in PHASES order) and the resources rows of the
    runs that recorded theirs; None when no run did (the terminal's and the report's phases tables)."""
    frame = board.resources
    if board.time_use is None or frame is None or "training_cpu_s" not in frame.columns:
        return None
    return [name for name in PHASES if f"{name}_s" in frame.columns], frame[frame["training_cpu_s"].notna()]


def _time_use(usage: list[dict]) -> TimeUse | None:
    """The sweep's TimeUse from the runs whose usage has phases, a wall time and requested CPUs."""
    timed = [u for u in usage if u.get("training_cpu_s") is not None and u.get("wall_s") and u.get("cpus_requested")]
    if not timed:
        return None
    phase_core_s = {name: sum((u.get(f"{name}_s") or 0.0) * u["cpus_requested"] for u in timed)
                    for name in PHASES if any(u.get(f"{name}_s") is not None for u in timed)}
    return TimeUse(runs=len(timed), allocated_core_s=sum(u["wall_s"] * u["cpus_requested"] for u in timed),
                   training_core_s=sum(u["training_cpu_s"] for u in timed), phase_core_s=phase_core_s,
                   queue_s=[u["queue_s"] for u in usage if u.get("queue_s") is not None])


def _explain_from_event_log(outcome: RunOutcome, jobs: list) -> None:
    if not jobs:
        return
    last = jobs[-1]
    retried = f" after {sum(j.starts for j in jobs)} start(s)" if sum(j.starts for j in jobs) > 1 else ""
    if last.state is RunState.HELD and last.last_hold:
        h = last.last_hold
        outcome.state, outcome.reason = RunState.HELD, f"held (code {h.code}/{h.subcode}): {h.reason}"
    elif last.state is RunState.REMOVED:
        hold = f"; last hold: {last.last_hold.reason}" if last.last_hold else ""
        outcome.state = RunState.REMOVED
        outcome.reason = f"removed{retried}: {last.removed_reason or 'condor_rm'}{hold}"
    elif last.state is RunState.FAILED and outcome.state in (RunState.MISSING, RunState.FAILED):
        code = f"exit status {last.exit_code}" if last.exit_code is not None else f"signal {last.signal}"
        outcome.state = RunState.FAILED
        outcome.exit_code = last.exit_code
        outcome.reason = f"job failed with {code}{retried}" + (f"; {outcome.reason}" if outcome.reason else "")
    elif last.state in (RunState.IDLE, RunState.RUNNING) and outcome.state is RunState.MISSING:
        outcome.reason = f"{last.state} (job {last.job_id})"


def _advice(usage: list[dict], requested: ResourceRequest | None) -> Advice | None:
    measured = [u for u in usage if u.get("memory_used_mb") is not None and u.get("state") == RunState.OK]
    if not measured:
        return None
    max_mem = max(u["memory_used_mb"] for u in measured)
    cpus = [u["cpus_used"] for u in measured if u.get("cpus_used") is not None]
    walls = [u["wall_s"] for u in measured if u.get("wall_s") is not None]
    max_cpu = max(cpus) if cpus else 0.0
    max_wall = max(walls) if walls else 0.0
    return Advice(runs_measured=len(measured), max_memory_mb=max_mem,
                  requested_memory_mb=requested.request_memory_mb if requested else 0,
                  suggested_memory_mb=int(max(128, math.ceil(1.25 * max_mem / 64) * 64)),
                  max_cpus_used=max_cpu, requested_cpus=requested.request_cpus if requested else 0,
                  suggested_cpus=max(1, math.ceil(max_cpu - 0.1)), max_wall_s=max_wall,
                  suggested_runtime_s=int(max(600, math.ceil(2 * max_wall / 600) * 600)))


def _learned_memory(attempts: dict) -> dict[str, int]:
    """Per run, the memory its job needed after memory holds (for the next resubmission)."""
    learned = {}
    for run_id, jobs in attempts.items():
        if not any(is_memory_hold(h.code, h.subcode) for j in jobs for h in j.holds):
            continue
        peak = max((j.peak_memory_mb or 0) for j in jobs)
        granted = max((j.resources.get("RequestMemory", 0) for j in jobs), default=0)
        learned[run_id] = int(max(granted, math.ceil(1.5 * peak)))
    return learned
