"""Read what a run left in results/<sweep>/<run-id>/ and say whether it is a valid result.

Never raises on a bad run folder: every problem becomes a reason the collector can print. The
run's records are read through their models (records.runinfo, records.metrics,
records.localexit), bounded and never through a symlink (records.untrusted): a file that is
unreadable, a symlink, not a regular file, larger than its limit, holds a value of the wrong
type or was written by a newer sweep is a reason that names the file, the key and what was
expected. Reasons and stderr lines are escaped for a terminal (job text is not markup).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..core.errors import printable
from ..core.names import (HISTORY, LOCAL_RECORD, METRICS, MODEL, MODEL_INFO, PROGRESS_FILE, PROGRESS_SEEN,
                          PRUNE_REQUEST, ROC, RUN_INFO, STDERR, STDOUT)
from ..core.states import RunState
from .base import RecordError
from .localexit import LocalExit, read_local_exit
from .metrics import Metrics, read_metrics
from .runinfo import RunInfo, read_run_info
from .untrusted import (HISTORY_LIMIT, MODEL_LIMIT, RECORD_LIMIT, ROC_LIMIT, TAIL_BYTES, open_untrusted, read_tail,
                        read_text, stat_problem)

T = TypeVar("T")


@dataclass
class RunOutcome:
    """What one run folder holds, and why it is not a valid result when it is not."""

    run_id: str
    state: RunState  # OK | FAILED | MISSING | CORRUPT (collect adds HELD / REMOVED from the event log)
    reason: str = ""
    metrics: Metrics | None = None
    run_info: RunInfo | None = None
    local: LocalExit | None = None  # the local backend's record of the job's process (.local-exit.json)
    stderr_tail: list[str] = field(default_factory=list)
    exit_code: int | None = None
    #: its outputs checked against the sha256 run.json records (verify_outputs): True all match,
    #: False one differs or is gone (`modified` names them), None not checked or nothing to check
    verified: bool | None = None
    modified: list[str] = field(default_factory=list)  # "model.keras", or "history.csv (gone)"

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


#: What a run folder's files may be, each at most so many bytes (None: any size, only its tail
#: is read): every one a regular file, never a symlink (the limits and why: records.untrusted).
OUTPUT_LIMITS: dict[str, int | None] = {
    METRICS: RECORD_LIMIT, RUN_INFO: RECORD_LIMIT, MODEL_INFO: RECORD_LIMIT, LOCAL_RECORD: RECORD_LIMIT,
    PROGRESS_FILE: RECORD_LIMIT, PRUNE_REQUEST: RECORD_LIMIT, PROGRESS_SEEN: RECORD_LIMIT,
    HISTORY: HISTORY_LIMIT, ROC: ROC_LIMIT, MODEL: MODEL_LIMIT, STDOUT: None, STDERR: None}


def scan_folder(folder: Path) -> tuple[set[str] | None, str | None]:
    """What a run folder holds, looked at without following a link: (its file names, None when
    there is no folder; the first output that cannot be trusted, or None).

    A folder that is a symlink, an output (OUTPUT_LIMITS) that is a symlink or not a regular
    file, or one larger than its limit, is a problem naming it. Nothing is opened but the folder.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        if folder.is_symlink():
            return set(), f"{folder.name}: expected a folder, got a symlink: not followed"
        if exc.errno == errno.ENOTDIR:
            return set(), f"{folder.name}: expected a folder, got a file"
        return set(), f"{folder.name}: unreadable: {exc.strerror}"
    names: set[str] = set()
    problem = None
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                names.add(entry.name)
                if problem is not None or entry.name not in OUTPUT_LIMITS:
                    continue
                why = stat_problem(entry.stat(follow_symlinks=False), OUTPUT_LIMITS[entry.name])
                if why is not None:
                    problem = f"{entry.name}: {why}"
    except OSError as exc:
        problem = f"{folder.name}: unreadable: {exc.strerror}"
    finally:
        os.close(fd)
    return names, problem


def tail(path: Path, lines: int = 5) -> list[str]:
    """The last non-empty lines of a job's text file (from its last TAIL_BYTES), each escaped for
    a terminal (records.untrusted: never through a symlink); [] when absent or not readable."""
    try:
        data = read_tail(path, TAIL_BYTES)
    except RecordError:
        return []
    if data is None:
        return []
    text = data.decode("utf-8", errors="replace")
    return [printable(line)[:MAX_LINE] for line in text.splitlines() if line.strip()][-lines:]


#: The longest job text (a line of stderr, run.json's error) kept in a reason.
MAX_LINE = 500


def read_run(results_dir: Path, run_id: str, required_metrics: list[str] | None = None) -> RunOutcome:
    """What results_dir/run_id holds.

    Every file in it came from an execute node: read bounded and never through a symlink
    (records.untrusted); a record that is invalid, an output that is a symlink, not a regular
    file or larger than its limit (OUTPUT_LIMITS) makes the run CORRUPT with the reason naming
    the file (and the key). The reason and the stderr lines are escaped for a terminal.

    Args:
        results_dir: results/<sweep>/.
        run_id: the run's folder name.
        required_metrics: test metrics a valid result must have (the sweep's ranking): each a
            finite number.

    Returns:
        The outcome: OK with the metrics, or FAILED / MISSING / CORRUPT with the reason.
    """
    folder = results_dir / run_id
    names, problem = scan_folder(folder)
    if problem is not None and not names:
        return RunOutcome(run_id=run_id, state=RunState.CORRUPT, reason=printable(problem))
    outcome = _read_run(folder, run_id, names, required_metrics)
    if problem is not None:
        if outcome.state not in (RunState.FAILED, RunState.MISSING):
            outcome.state, outcome.metrics = RunState.CORRUPT, None
        elif outcome.state is RunState.MISSING:
            outcome.state = RunState.CORRUPT
        outcome.reason = problem + (f"; {outcome.reason}" if outcome.reason else "")
    outcome.reason = printable(outcome.reason)
    return outcome


def _read_run(folder: Path, run_id: str, names: set[str] | None, required_metrics: list[str] | None) -> RunOutcome:
    outcome = RunOutcome(run_id=run_id, state=RunState.MISSING)
    if not names:
        outcome.reason = "no result: not run yet, still queued/running, or outputs not transferred back"
        return outcome
    # only what the folder holds is opened (a 10,000-run sweep: a third fewer system calls)
    outcome.stderr_tail = tail(folder / STDERR) if STDERR in names else []
    run_info, run_err = _read(read_run_info, folder, RUN_INFO) if RUN_INFO in names else (None, None)
    metrics, metrics_err = _read(read_metrics, folder, METRICS) if METRICS in names else (None, None)
    local: LocalExit | None
    local, local_err = _read(read_local_exit, folder, LOCAL_RECORD) if LOCAL_RECORD in names else (None, None)
    outcome.run_info, outcome.local = run_info, local
    if run_info is not None:
        outcome.exit_code = run_info.exit_code
    elif local is not None:
        outcome.exit_code = local.returncode

    if run_info is not None and run_info.status is RunState.FAILED:
        outcome.state = RunState.FAILED
        outcome.reason = f"job failed (exit {run_info.exit_code}): {(run_info.error or 'no message')[:MAX_LINE]}"
        return outcome
    if run_info is None and local is not None and local.returncode not in (0, None):
        outcome.state = RunState.FAILED
        why = local.reason or f"exit status {local.returncode}"
        outcome.reason = f"job failed: {why[:MAX_LINE]}"
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
    if run_err or local_err:  # a result beside a record that is not one: nothing says how it was made
        outcome.state = RunState.CORRUPT
        outcome.reason = str(run_err or local_err)
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
    not_computed = [m for m in (required_metrics or []) if math.isnan(test[m] or 0.0)]
    if not_computed:
        outcome.state = RunState.CORRUPT
        outcome.reason = (f"metrics.json: {', '.join(f'test.{m}' for m in not_computed)} is NaN (not computed): "
                          "the run cannot be ranked by it")
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


def output_sha256(path: Path, limit: int | None) -> str | None:
    """The sha256 of a job's output (never through a symlink, at most `limit` bytes: records.untrusted),
    or None when it does not exist.

    Raises:
        RecordError: a symlink, not a regular file, larger than `limit`, or unreadable.
    """
    digest = hashlib.sha256()
    try:
        with open_untrusted(path, limit) as (fd, _):
            while chunk := os.read(fd, 1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordError(path, f"unreadable: {exc.strerror}") from None
    return digest.hexdigest()


def verify_outputs(results_dir: Path, outcome: RunOutcome) -> RunOutcome:
    """A valid result (OK or STALE) checked against the sha256 of each output its job recorded
    in run.json (`outputs`, written once they were final): every one is read again. One that
    differs, is gone, or can no longer be read makes the run CORRUPT, not ranked, with
    `modified` and the reason naming it: a result whose files changed since its job wrote them
    is not the job's result. A run.json without `outputs` (an older sweep) leaves the run as it
    is, unverified (`verified` None).
    """
    info = outcome.run_info
    if outcome.state not in (RunState.OK, RunState.STALE) or info is None or not info.outputs:
        return outcome
    folder = results_dir / outcome.run_id
    changed = []
    for name, expected in info.outputs.items():
        try:
            actual = output_sha256(folder / name, OUTPUT_LIMITS.get(name))
        except RecordError as exc:
            changed.append(f"{name} ({exc.detail})")
            continue
        if actual is None:
            changed.append(f"{name} (gone)")
        elif actual != expected:
            changed.append(name)
    if not changed:
        outcome.verified = True
        return outcome
    outcome.verified, outcome.modified = False, changed
    outcome.state, outcome.metrics = RunState.CORRUPT, None
    outcome.reason = printable(f"modified since its job wrote it: {', '.join(changed)} no longer "
                               f"match{'es' if len(changed) == 1 else ''} the sha256 in {RUN_INFO}; not ranked "
                               "(restore the file, or remove the run's folder and `sweep submit` trains it again)")
    return outcome


def has_valid_result(results_dir: Path, run_id: str, required_metrics: list[str] | None = None) -> bool:
    """Whether read_run says OK."""
    return read_run(results_dir, run_id, required_metrics).ok


def read_table(path: Path, limit: int) -> dict[str, list[float]] | None:
    """A job's CSV (history.csv with HISTORY_LIMIT, roc.csv with ROC_LIMIT) as columns of numbers,
    in the file's column order (NaN where a cell is not a number; a repeated column: its first).

    Returns:
        column -> values, or None when the file is absent or cannot be used: larger than `limit`
        bytes, a symlink, not a regular file (records.untrusted), or not CSV.
    """
    try:
        text = read_text(path, limit)
        if text is None:
            return None
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader)
        rows = [r for r in reader if r]
    except (RecordError, StopIteration, csv.Error):
        return None
    out: dict[str, list[float]] = {}
    for i, name in enumerate(header):
        if name in out:
            continue
        values = []
        for r in rows:
            try:
                values.append(float(r[i]))
            except (IndexError, ValueError):
                values.append(math.nan)
        out[name] = values
    return out


def epoch_seconds(results_dir: Path, run_ids: Iterable[str]) -> dict[str, float]:
    """Run id -> the median wall seconds of one epoch, from the history.csv an earlier attempt of
    the run left in results_dir/<run id>/ (its `seconds` column), for the runs that left one
    (core.cost.start_order puts the costliest runs first with them). Untrusted input: read
    bounded (HISTORY_LIMIT), never through a link; a value that is not a positive finite number
    is ignored."""
    out: dict[str, float] = {}
    for run_id in run_ids:
        table = read_table(results_dir / run_id / HISTORY, HISTORY_LIMIT)
        seconds = sorted(v for v in (table or {}).get("seconds", []) if math.isfinite(v) and v > 0)
        if seconds:
            out[run_id] = seconds[len(seconds) // 2]
    return out
