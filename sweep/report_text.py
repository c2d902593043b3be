"""Terminal output of a leaderboard (rich tables)."""

from __future__ import annotations

import math
from pathlib import Path

from .collect import Leaderboard
from .core.render import relative_to_root

CLASSIFIER_COLUMNS = ["f1", "auc", "eff_purity", "precision", "recall", "accuracy"]
REGRESSOR_COLUMNS = ["mae", "mse", "bias", "rel_bias", "rel_resolution"]


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def print_leaderboard(board: Leaderboard, console, top: int | None = None, root: Path | None = None) -> None:
    from rich.table import Table

    metrics = CLASSIFIER_COLUMNS if board.model == "lstm" else REGRESSOR_COLUMNS
    ranked = [m for m, _ in board.ranking]
    metrics = ranked + [m for m in metrics if m not in ranked]
    table = Table(title=f"sweep {board.sweep} ({board.model}): {len(board.table)} of {board.total} runs ranked by "
                  + ", ".join(f"{m} {'↓' if d == 'max' else '↑'}" for m, d in board.ranking),
                  title_justify="left")
    table.add_column("#", justify="right")
    for col in board.swept:
        table.add_column(col)
    for col in metrics:
        table.add_column(col, justify="right", style="bold" if col in ranked else None)
    table.add_column("best ep", justify="right")
    table.add_column("run id")
    rows = board.table if top is None else board.table.head(top)
    for _, row in rows.iterrows():
        table.add_row(str(row["rank"]), *(_fmt(row.get(c)) for c in board.swept),
                      *(_fmt(row.get(c)) for c in metrics), _fmt(row.get("best_epoch")), str(row["run_id"]))
    console.print(table)
    if board.csv_path is not None:
        shown = relative_to_root(board.csv_path, root) if root else str(board.csv_path)
        console.print(f"leaderboard written to {shown}")
    if board.problems:
        failures = Table(title=f"{len(board.problems)} run(s) without a valid result", title_justify="left")
        for col in ("run id", "state", "reason", "stderr (last lines)"):
            failures.add_column(col, overflow="fold")
        for p in board.problems:
            failures.add_row(p.run_id, p.state, p.reason, "\n".join(p.stderr_tail[-3:]))
        console.print(failures)
