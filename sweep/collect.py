"""`sweep collect`: read every run of a sweep, rank the valid ones, list the others with why."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .core.errors import SweepError
from .core.ranking import rank
from .core.schema import metrics_for
from .fsutil import atomic_write_text
from .project import read_manifest, sweep_paths
from .results import RunOutcome, read_run


@dataclass
class Leaderboard:
    sweep: str
    model: str
    ranking: list[tuple[str, str]]
    swept: list[str]
    table: pd.DataFrame
    problems: list[RunOutcome]
    total: int
    csv_path: Path | None = None


def _flatten(value: Any) -> Any:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return value


def collect(sweep: str, root: Path, write_csv: bool = True) -> Leaderboard:
    paths = sweep_paths(root)
    manifest = read_manifest(paths.jobs(sweep))
    if manifest is None:
        raise SweepError(f"no sweep '{sweep}' under {paths.root / 'jobs'} (run `sweep submit GRID` first)")
    model = manifest["model"]
    ranking = [tuple(r) for r in manifest.get("ranking", [])]
    swept = manifest.get("swept", [])
    results_dir = paths.results(sweep)
    required = [m for m, _ in ranking]
    records, problems = [], []
    for entry in manifest["runs"]:
        outcome = read_run(results_dir, entry["run_id"], required)
        if not outcome.ok:
            problems.append(outcome)
            continue
        m = outcome.metrics
        record = {"run_id": entry["run_id"], "config_id": entry["config_id"], "name": entry["name"]}
        record.update({k: _flatten(entry["swept"].get(k)) for k in swept})
        record.update({k: v for k, v in m["test"].items() if k in metrics_for(model)
                       or k in ("mae", "mse", "bias", "rel_bias", "resolution", "rel_resolution")})
        record.update(best_epoch=m.get("best_epoch"), epochs_run=m.get("epochs_run"),
                      train_seconds=m.get("train_seconds"), seed=entry["seed"])
        records.append(record)
    table = rank(records, ranking)
    board = Leaderboard(sweep=sweep, model=model, ranking=ranking, swept=swept, table=table,
                        problems=problems, total=len(manifest["runs"]))
    if write_csv:
        board.csv_path = results_dir / "leaderboard.csv"
        atomic_write_text(board.csv_path, table.to_csv(index=False))
    return board


def list_sweeps(root: Path) -> list[str]:
    jobs = sweep_paths(root).root / "jobs"
    return sorted(p.name for p in jobs.iterdir() if (p / "sweep.json").is_file()) if jobs.is_dir() else []
