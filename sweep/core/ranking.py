"""Rank finished runs by a list of (metric, direction) keys. Pure pandas, no I/O."""

from __future__ import annotations

from typing import Any

import pandas as pd


def rank(records: list[dict[str, Any]], ranking: list[tuple[str, str]]) -> pd.DataFrame:
    """Sort records by the ranking keys in order (ties broken by the next key, then run_id).

    Missing or NaN metrics sort last. Returns a frame with a 1-based `rank` column first.
    """
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=["rank", *(m for m, _ in ranking)])
    keys = [m for m, _ in ranking if m in frame.columns]
    ascending = [d == "min" for m, d in ranking if m in frame.columns]
    if "run_id" in frame.columns:
        keys, ascending = keys + ["run_id"], ascending + [True]
    if keys:
        frame = frame.sort_values(by=keys, ascending=ascending, na_position="last", kind="mergesort")
    frame = frame.reset_index(drop=True)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame
