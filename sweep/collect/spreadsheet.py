"""CSV for spreadsheets: cells a spreadsheet would run as formulas are neutralized.

Grids and job outputs reach a leaderboard's text cells (an optimizer's name, a reason), and a
physicist opens leaderboard.csv in a spreadsheet; a cell such as ``=HYPERLINK(...)`` must be
shown, not run. Both CSVs sweep writes (collect's leaderboard.csv and ``--format csv``) go
through :func:`csv_text`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize_cell(value: Any) -> Any:
    """`value` as a CSV cell no spreadsheet runs: text that begins with one of FORMULA_STARTS
    gets a leading apostrophe (shown by spreadsheets, not evaluated). Numbers stay as they are,
    and so does text that is a plain number ("-0.5", "+1e-3": a number, not a formula), so that
    a negative value reads back as one.

    Returns:
        The value, or the text with "'" in front.
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value if value.strip() == value else "'" + value


def csv_text(frame: pd.DataFrame) -> str:
    """The frame as CSV (no index) with every text cell and column name passed through
    neutralize_cell: job outputs and grids reach these cells, and a spreadsheet opening the
    file must not run what they hold."""
    safe = frame.rename(columns=lambda c: neutralize_cell(str(c)))
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column].dtype):
            safe[column] = safe[column].map(neutralize_cell)
    return safe.to_csv(index=False)
