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
    if board.resources is not None and "memory_used_mb" in board.resources:
        _print_resources(board, console, top)
    if board.problems:
        failures = Table(title=f"{len(board.problems)} run(s) without a valid result", title_justify="left")
        for col in ("run id", "state", "reason", "stderr (last lines)"):
            failures.add_column(col, overflow="fold")
        for p in board.problems:
            failures.add_row(p.run_id, p.state, p.reason, "\n".join(p.stderr_tail[-3:]))
        console.print(failures)


def _print_resources(board: Leaderboard, console, top: int | None) -> None:
    from rich.table import Table

    from .core.units import format_duration

    frame = board.resources
    table = Table(title="resources: used / requested (allocated), from the job event log", title_justify="left")
    for col in ("run id", "name", "CPUs", "memory MB", "CPU eff.", "mem eff.", "run time", "CPU time", "starts"):
        table.add_column(col, justify="left" if col in ("run id", "name") else "right")
    rows = frame if top is None else frame.head(top)
    for _, u in rows.iterrows():
        def num(key, fmt="{:.0f}"):
            value = u.get(key)
            return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)
        table.add_row(str(u["run_id"]), str(u["name"]),
                      f"{num('cpus_used', '{:.2f}')} / {num('cpus_requested')}",
                      f"{num('memory_used_mb')} / {num('memory_requested_mb')} ({num('memory_allocated_mb')})",
                      num("cpu_efficiency", "{:.0%}"), num("memory_efficiency", "{:.0%}"),
                      format_duration(u.get("wall_s")) if u.get("wall_s") == u.get("wall_s") else "-",
                      format_duration(u.get("cpu_s")) if u.get("cpu_s") == u.get("cpu_s") else "-",
                      num("starts"))
    console.print(table)
    a = board.advice
    if a is not None:
        from .core.units import format_duration as fd

        console.print(f"right-sizing for the next sweep ({a.runs_measured} finished runs): "
                      f"request_memory: {a.suggested_memory_mb}MB (largest use {a.max_memory_mb:.0f} of "
                      f"{a.requested_memory_mb:.0f} MB requested), request_cpus: {a.suggested_cpus} (busiest job kept "
                      f"{a.max_cpus_used:.2f} of {a.requested_cpus:.0f} busy), runtime: {fd(a.suggested_runtime_s)} "
                      f"(longest run {fd(a.max_wall_s)})")
