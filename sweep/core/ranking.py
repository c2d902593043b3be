"""Rank finished runs (or configurations) by a list of (metric, direction) keys. No I/O.

pandas is imported when ranking, not with this module, so that the core stays light to import.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def rank(table: pd.DataFrame | Iterable[dict[str, Any]], ranking: list[tuple[str, str]],
         key: str = "run_id") -> pd.DataFrame:
    """Sort rows by the ranking keys in order, each "max" (higher first) or "min".

    Args:
        table: the rows, as a DataFrame or as records (one mapping per row).
        ranking: (column, "max" | "min") pairs; ties go to the next pair. Columns the table
            lacks are ignored.
        key: the column that breaks the last tie (ascending), so the order is stable.

    Returns:
        A new frame with a 1-based ``rank`` column first (an existing one is replaced). Missing
        or NaN metrics sort last. An empty table gives the ranking columns and no rows.
    """
    import pandas as pd

    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame.from_records(list(table))
    if len(frame.columns) == 0:
        frame = pd.DataFrame(columns=[m for m, _ in ranking])
    frame = frame.drop(columns=["rank"], errors="ignore")
    keys = [m for m, _ in ranking if m in frame.columns]
    ascending = [d == "min" for m, d in ranking if m in frame.columns]
    if key in frame.columns:
        keys, ascending = keys + [key], ascending + [True]
    if keys and not frame.empty:
        frame = frame.sort_values(by=keys, ascending=ascending, na_position="last", kind="mergesort")
    frame = frame.reset_index(drop=True)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame


def pareto_front(rows: Iterable[dict[str, Any]], objectives: list[tuple[str, str]]) -> list[bool]:
    """Which rows no other row dominates: at least as good in every objective and better in one
    ("max": higher is better, "min": lower). A row missing an objective is never on the front.

    Args:
        rows: the rows (mappings holding the objectives' columns).
        objectives: (column, "max" | "min") pairs.

    Returns:
        One flag per row, in order.
    """
    import math

    points: list[list[float] | None] = []
    for row in rows:
        values = [row.get(m) for m, _ in objectives]
        numbers = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
        ok = len(numbers) == len(values)
        # as "higher is better" in every coordinate
        points.append([v if d == "max" else -v for v, (_, d) in zip(numbers, objectives, strict=True)] if ok else None)

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))

    return [p is not None and not any(q is not None and dominates(q, p) for q in points) for p in points]
