"""Read what a run left in results/<sweep>/<run-id>/ and say whether it is a valid result.

Never raises on a bad run folder: every problem becomes a reason the collector can print. The
run's records are read through their models (records.runinfo, records.metrics,
records.localexit): a file that is unreadable, holds a value of the wrong type or was written by
a newer sweep is a reason that names the file, the key and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..core.names import LOCAL_RECORD, METRICS, RUN_INFO, STDERR
from ..core.states import RunState
from .base import RecordError
from .localexit import LocalExit, read_local_exit
from .metrics import Metrics, read_metrics
from .runinfo import RunInfo, read_run_info

T = TypeVar("T")


@dataclass
class RunOutcome:
    """What one run folder holds, and why it is not a valid result when it is not."""

    run_id: str
    state: RunState  # OK | FAILED | MISSING | CORRUPT (collect adds HELD / REMOVED from the event log)
    reason: str = ""
    metrics: Metrics | None = None
    run_info: RunInfo | None = None
    stderr_tail: list[str] = field(default_factory=list)
    exit_code: int | None = None

    @property
    def ok(self) -> bool:
        """A valid result."""
        return self.state is RunState.OK


def _read(read: Callable[[Path], T | None], folder: Path, name: str) -> tuple[T | None, str | None]:
    """(the record, None), (None, None) when absent, or (None, why it cannot be used)."""
    try:
        return read(folder), None
    except RecordError as exc:
        key = f"{exc.key}: " if exc.key else ""
        return None, f"unreadable {name}: {key}{exc.detail}"


def tail(path: Path, lines: int = 5) -> list[str]:
    """The last non-empty lines of a text file (from its last 8 KiB); [] when unreadable."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def read_run(results_dir: Path, run_id: str, required_metrics: list[str] | None = None) -> RunOutcome:
    """What results_dir/run_id holds.

    Args:
        results_dir: results/<sweep>/.
        run_id: the run's folder name.
        required_metrics: test metrics a valid result must have (the sweep's ranking).

    Returns:
        The outcome: OK with the metrics, or FAILED / MISSING / CORRUPT with the reason.
    """
    folder = results_dir / run_id
    outcome = RunOutcome(run_id=run_id, state=RunState.MISSING)
    if not folder.is_dir() or not any(folder.iterdir()):
        outcome.reason = "no result: not run yet, still queued/running, or outputs not transferred back"
        return outcome
    outcome.stderr_tail = tail(folder / STDERR)
    run_info, run_err = _read(read_run_info, folder, RUN_INFO)
    metrics, metrics_err = _read(read_metrics, folder, METRICS)
    local: LocalExit | None
    local, _ = _read(read_local_exit, folder, LOCAL_RECORD)
    outcome.run_info = run_info
    if run_info is not None:
        outcome.exit_code = run_info.exit_code
    elif local is not None:
        outcome.exit_code = local.returncode

    if run_info is not None and run_info.status is RunState.FAILED:
        outcome.state = RunState.FAILED
        outcome.reason = f"job failed (exit {run_info.exit_code}): {run_info.error or 'no message'}"
        return outcome
    if run_info is None and local is not None and local.returncode not in (0, None):
        outcome.state = RunState.FAILED
        why = local.reason or f"exit status {local.returncode}"
        outcome.reason = f"job failed: {why}"
        return outcome
    if run_info is not None and run_info.status is RunState.PRUNED and metrics is not None:
        outcome.state, outcome.metrics = RunState.PRUNED, metrics
        outcome.reason = f"pruned by the search after epoch {run_info.pruned_at_epoch}"
        return outcome
    if metrics_err:
        outcome.state = RunState.CORRUPT
        outcome.reason = metrics_err
        return outcome
    if metrics is None:
        if run_info is not None and run_info.status is RunState.RUNNING:
            outcome.reason = "started but did not finish (no metrics.json; killed or still running)"
        else:
            outcome.reason = "no metrics.json" + (f"; run.json problem: {run_err}" if run_err else "")
        outcome.state = RunState.FAILED if outcome.stderr_tail or run_info else RunState.MISSING
        return outcome
    test = metrics.test
    if test is None:
        outcome.state = RunState.CORRUPT
        outcome.reason = "metrics.json has no 'test' metrics"
        return outcome
    absent = [m for m in (required_metrics or []) if not isinstance(test.get(m), (int, float))]
    if absent:
        outcome.state = RunState.CORRUPT
        outcome.reason = f"metrics.json lacks {', '.join(absent)}"
        return outcome
    outcome.state, outcome.metrics = RunState.OK, metrics
    return outcome


def trained_on(outcome: RunOutcome) -> str | None:
    """The sha256 of the dataset a valid result was trained on (None for results written before
    runs recorded it)."""
    dataset = outcome.metrics.dataset if outcome.metrics is not None else None
    return dataset.sha256 if dataset is not None else None


def mark_stale(outcome: RunOutcome, current_sha256: str | None) -> RunOutcome:
    """A valid result trained on another version of the dataset becomes STALE (with why)."""
    used = trained_on(outcome)
    if outcome.ok and current_sha256 and used and used != current_sha256:
        outcome.state = RunState.STALE
        outcome.reason = (f"trained on another version of the dataset (sha256 {used[:12]}…, now "
                          f"{current_sha256[:12]}…): `sweep submit` reruns it")
    return outcome


def has_valid_result(results_dir: Path, run_id: str, required_metrics: list[str] | None = None) -> bool:
    """Whether read_run says OK."""
    return read_run(results_dir, run_id, required_metrics).ok
