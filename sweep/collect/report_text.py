"""Terminal output of a sweep's resource use (rich tables), the right-sizing advice and where the
jobs' time went (their phases and the sweep's training efficiency)."""

from __future__ import annotations

import math

from ..core.units import format_duration
from .gather import Leaderboard, timed_runs


def print_resources(board: Leaderboard, console, top: int | None) -> None:
    """The resources table (used / requested per run, `top` rows), then the right-sizing advice."""
    from rich.table import Table

    frame = board.resources
    table = Table(title="resources: used / requested (allocated), from the job event log", title_justify="left")
    for col in ("run id", "name", "CPUs", "memory MB", "CPU eff.", "mem eff.", "run time", "CPU time", "starts",
                "in / out MB"):
        table.add_column(col, justify="left" if col in ("run id", "name") else "right")
    rows = frame if top is None else frame.head(top)
    for _, u in rows.iterrows():
        def num(key, fmt="{:.0f}", u=u):  # this row's, bound here (it is called in this iteration only)
            value = u.get(key)
            return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)
        table.add_row(str(u["run_id"]), str(u["name"]),
                      f"{num('cpus_used', '{:.2f}')} / {num('cpus_requested')}",
                      f"{num('memory_used_mb')} / {num('memory_requested_mb')} ({num('memory_allocated_mb')})",
                      num("cpu_efficiency", "{:.0%}"), num("memory_efficiency", "{:.0%}"),
                      format_duration(u.get("wall_s")) if u.get("wall_s") == u.get("wall_s") else "-",
                      format_duration(u.get("cpu_s")) if u.get("cpu_s") == u.get("cpu_s") else "-",
                      num("starts"), f"{num('input_mb', '{:.2f}')} / {num('output_mb', '{:.2f}')}"
                      + ("" if num("fetched_mb") == "-" else f" (+{num('fetched_mb', '{:.2f}')} by URL)"))
    console.print(table)
    if board.advice is not None:
        console.print(board.advice.sentence())


def print_phases(board: Leaderboard, console, top: int | None) -> None:
    """Where each job's last start spent its time (wall seconds per phase, `top` rows), then the
    sweep's training efficiency; nothing when no run recorded its phases."""
    from rich.table import Table

    shown = timed_runs(board)
    if shown is None or board.time_use is None:
        return
    names, timed = shown
    table = Table(title="where each job's time went (wall seconds of its last start)", title_justify="left")
    for col in ("run id", *names, "job", "queue"):
        table.add_column(col, justify="left" if col == "run id" else "right")
    for _, u in (timed if top is None else timed.head(top)).iterrows():
        def seconds(key, u=u):  # this row's, bound here (it is called in this iteration only)
            value = u.get(key)
            return "-" if value is None or value != value else f"{value:.1f}"
        table.add_row(str(u["run_id"]), *(seconds(f"{name}_s") for name in names), seconds("wall_s"),
                      seconds("queue_s"))
    console.print(table)
    console.print(board.time_use.sentence())
