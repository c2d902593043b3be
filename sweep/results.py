"""Read what a run left in results/<sweep>/<run-id>/ and say whether it is a valid result.

Never raises on a bad run folder: every problem becomes a reason the collector can print.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL_RECORD = ".local-exit.json"  # written by the local backend (HTCondor's is the event log)


@dataclass
class RunOutcome:
    run_id: str
    state: str  # "ok" | "failed" | "missing" | "corrupt"
    reason: str = ""
    metrics: dict[str, Any] | None = None
    run_info: dict[str, Any] | None = None
    stderr_tail: list[str] = field(default_factory=list)
    exit_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def _read_json(path: Path) -> tuple[dict | None, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"unreadable {path.name}: {exc}"
    if not isinstance(data, dict):
        return None, f"unreadable {path.name}: expected a JSON object"
    return data, None


def tail(path: Path, lines: int = 5) -> list[str]:
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
    folder = results_dir / run_id
    outcome = RunOutcome(run_id=run_id, state="missing")
    if not folder.is_dir() or not any(folder.iterdir()):
        outcome.reason = "no result: not run yet, still queued/running, or outputs not transferred back"
        return outcome
    outcome.stderr_tail = tail(folder / "stderr.txt")
    run_info, run_err = _read_json(folder / "run.json")
    metrics, metrics_err = _read_json(folder / "metrics.json")
    local, _ = _read_json(folder / LOCAL_RECORD)
    outcome.run_info = run_info
    if run_info is not None:
        outcome.exit_code = run_info.get("exit_code")
    elif local is not None:
        outcome.exit_code = local.get("returncode")

    if run_info is not None and run_info.get("status") == "failed":
        outcome.state = "failed"
        outcome.reason = f"job failed (exit {run_info.get('exit_code')}): {run_info.get('error', 'no message')}"
        return outcome
    if run_info is None and local is not None and local.get("returncode") not in (0, None):
        outcome.state = "failed"
        why = local.get("reason") or f"exit status {local.get('returncode')}"
        outcome.reason = f"job failed: {why}"
        return outcome
    if metrics_err:
        outcome.state = "corrupt"
        outcome.reason = metrics_err
        return outcome
    if metrics is None:
        if run_info is not None and run_info.get("status") == "running":
            outcome.reason = "started but did not finish (no metrics.json; killed or still running)"
        else:
            outcome.reason = "no metrics.json" + (f"; run.json problem: {run_err}" if run_err else "")
        outcome.state = "failed" if outcome.stderr_tail or run_info else "missing"
        return outcome
    test = metrics.get("test")
    if not isinstance(test, dict):
        outcome.state = "corrupt"
        outcome.reason = "metrics.json has no 'test' metrics"
        return outcome
    absent = [m for m in (required_metrics or []) if not isinstance(test.get(m), (int, float))]
    if absent:
        outcome.state = "corrupt"
        outcome.reason = f"metrics.json lacks {', '.join(absent)}"
        return outcome
    outcome.state, outcome.metrics = "ok", metrics
    return outcome


def has_valid_result(results_dir: Path, run_id: str, required_metrics: list[str] | None = None) -> bool:
    return read_run(results_dir, run_id, required_metrics).ok
