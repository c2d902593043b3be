"""What `sweep collect` does: for each sweep asked for, gather and rank it, keep the best models,
and show or export the selected rows."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ResultsError
from ..core.names import JOBS_DIR
from ..core.render import relative_to_root
from ..fsutil import atomic_write_text
from ..records.manifest import list_sweeps
from .gather import collect
from .leaderboard import copy_best, export, infer_format, print_selection, select


@dataclass
class CollectOptions:
    """What `sweep collect` was asked to do (see its --help)."""

    root: Path
    sweep: str | None = None  # None: every sweep under jobs/
    top: int | None = None
    by: str | None = None
    where: str | None = None  # --filter
    fmt: str | None = None  # --format (default: table, or from the --output suffix)
    output: Path | None = None
    per_run: bool = False
    best: int = 3  # models copied to best/


def collect_sweeps(options: CollectOptions, console, warnings=None) -> None:
    """Collect one sweep or every sweep of the project, print or export each.

    Args:
        options: which sweeps and how to show them.
        console: where tables and messages go; warnings: where warnings go (default: console).

    Raises:
        ResultsError: no sweeps, --output with several sweeps, or an invalid --by/--filter/--top.
    """
    warnings = warnings or console
    root = options.root
    sweeps = [options.sweep] if options.sweep else list_sweeps(root)
    if not sweeps:
        raise ResultsError(f"no sweeps under {root / JOBS_DIR} (run `sweep submit GRID` first)")
    if options.output is not None and len(sweeps) > 1:
        raise ResultsError("--output needs one sweep: name it (sweep collect SWEEP --output FILE)")
    fmt = infer_format(options.fmt, options.output)
    for name in sweeps:
        board = collect(name, root)
        sel = select(board, by=options.by, top=options.top, where=options.where, per_run=options.per_run)
        try:
            best_dir = copy_best(board, options.best, by=options.by) if options.best else None
        except OSError as exc:  # a read-only results folder must not stop the leaderboard
            best_dir = None
            warnings.print(f"[yellow]could not copy the best models: {exc}[/]")
        if options.output is not None:
            atomic_write_text(options.output, export(board, sel, fmt))
            console.print(f"{len(sel.frame)} row(s) of sweep {name} written to {options.output} ({fmt})")
        elif fmt == "table":
            print_selection(board, sel, console, root=root)
        else:
            sys.stdout.write(export(board, sel, fmt))
        if best_dir is not None and (options.output is not None or fmt == "table"):
            copied = sum(1 for d in best_dir.iterdir() if d.is_dir())
            console.print(f"best {copied} model(s) copied to {relative_to_root(best_dir, root)}/")
