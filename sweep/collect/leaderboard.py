"""What `sweep collect` does with a collected Leaderboard: rank by any column, filter, aggregate
repeats per configuration, export (csv, json, markdown, LaTeX) and keep copies of the best models.

Pure pandas on the already-collected table: nothing here reads the run folders one by one except
`copy_best`, which touches only the N best runs.
"""

from __future__ import annotations

import ast
import io
import json
import math
import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core.errors import ResultsError, printable
from ..core import runconfig
from ..core.names import BEST_DIR, BEST_FILES, CONFIG_FILE, CONFIGS_DIR
from ..core.ranking import rank
from ..core.render import RESOLVED_HEADER, relative_to_root, to_yaml
from ..core.schema import CLASSIFIER_METRICS, REGRESSOR_METRICS, metrics_for
from ..fsutil import atomic_folder, atomic_write_text
from ..records.base import RecordError
from ..records.best import BestIndex, BestRun, write_best_index
from ..records.manifest import read_manifest
from ..records.runinfo import recorded_config_sha256
from ..records.untrusted import MODEL_LIMIT, copy_file
from .gather import Leaderboard
from .spreadsheet import csv_text

FORMATS = ("table", "csv", "json", "markdown", "latex")
SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".md": "markdown", ".markdown": "markdown", ".tex": "latex",
                  ".txt": "table"}
CLASSIFIER_COLUMNS = ["f1", "auc", "eff_purity", "precision", "recall", "accuracy", "natural_precision",
                      "natural_recall", "natural_eff_purity"]
REGRESSOR_COLUMNS = ["mae", "mse", "bias", "abs_bias", "rel_bias", "resolution", "rel_resolution"]


@dataclass
class Selection:
    """The rows `sweep collect` shows or exports, and how they were chosen."""

    frame: pd.DataFrame
    ranking: list[tuple[str, str]]
    aggregated: bool
    metrics: list[str]  # metric columns present (aggregated: the means; `<m>_std` beside them)
    total_rows: int  # before --filter / --top
    matched: int = 0  # after --filter, before --top
    where: str | None = None


def direction(metric: str, model: str) -> str:
    """'max' or 'min' for a metric: the model's table first, then the other model's, else max."""
    if metric.endswith("_std"):  # a spread over repeats: smaller is steadier
        return "min"
    base = metric[:-5] if metric.endswith("_mean") else metric
    for table in (metrics_for(model), CLASSIFIER_METRICS, REGRESSOR_METRICS):
        if base in table:
            return table[base]
    return "max"


def ranking_for(board: Leaderboard, by: str | None) -> list[tuple[str, str]]:
    """--by METRIC first, then the sweep's own ranking keys to break ties."""
    if not by:
        return list(board.ranking)
    return [(by, direction(by, board.model))] + [(m, d) for m, d in board.ranking if m != by]


def metric_columns(board: Leaderboard, frame: pd.DataFrame) -> list[str]:
    """The metric columns of `frame` to show, in order: the ranking's, then the model's usual
    metrics, then loss."""
    wanted = CLASSIFIER_COLUMNS if board.model == "lstm" else REGRESSOR_COLUMNS
    ranked = [m for m, _ in board.ranking]
    names = ranked + [m for m in wanted if m not in ranked] + ["loss"]
    return [m for m in dict.fromkeys(names) if m in frame.columns]


def aggregate(board: Leaderboard, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per configuration: mean and std (ddof=1; NaN with one finished repeat) of each
    metric over its finished repeats, and `repeats` as "finished/planned"."""
    table = board.table if table is None else table
    metrics = metric_columns(board, table)
    planned = board.runs_per_config or {}
    if table.empty:
        return pd.DataFrame(columns=["config_id", "name", *board.swept, "repeats", *metrics])
    grouped = table.groupby("config_id", sort=False)
    first = grouped.first()
    out = pd.DataFrame(index=first.index)
    out["name"] = first["name"].str.replace(r"-r\d+$", "", regex=True) if "name" in first else ""
    for col in board.swept:
        out[col] = first[col] if col in first else None
    finished = grouped.size()
    out["n_finished"] = finished
    out["n_planned"] = [planned.get(c, int(finished[c])) for c in out.index]
    out["repeats"] = [f"{f}/{p}" for f, p in zip(out["n_finished"], out["n_planned"], strict=True)]
    numeric = table[["config_id", *metrics]].copy()
    for m in metrics:
        numeric[m] = pd.to_numeric(numeric[m], errors="coerce")
    means = numeric.groupby("config_id", sort=False).mean()
    stds = numeric.groupby("config_id", sort=False).std(ddof=1)
    for m in metrics:
        out[m] = means[m]
        out[f"{m}_std"] = stds[m]
    for extra in ("best_epoch", "train_seconds", "wall_s", "memory_used_mb"):
        if extra in table.columns:
            out[extra] = pd.to_numeric(table[extra], errors="coerce").groupby(table["config_id"], sort=False).mean()
    # the best repeat of each configuration (by the sweep's ranking): its model is the one to keep
    best_run = rank(table, ranking_for(board, None), "run_id")
    best_run = best_run.drop_duplicates("config_id")
    out["best_run_id"] = best_run.set_index("config_id")["run_id"]
    return out.reset_index()


def select(board: Leaderboard, by: str | None = None, top: int | None = None, where: str | None = None,
           per_run: bool = False) -> Selection:
    """The ranked rows: per run, or per configuration when the sweep has repeats (unless per_run).

    `where` is a condition (apply_filter's grammar) evaluated on those rows before ranking; ranks
    are within the selection.

    Raises:
        ResultsError: a bad --filter expression, an unknown --by column or a negative --top.
    """
    aggregated = board.repeats > 1 and not per_run
    base = aggregate(board) if aggregated else board.table.drop(columns=["rank"], errors="ignore")
    total = len(base)
    if where:
        base = apply_filter(base, where)
    ranking = ranking_for(board, by)
    if by and by not in base.columns and not base.empty:
        raise ResultsError(f"--by {by}: no such column; choose one of: {', '.join(map(str, base.columns))}")
    if by and by in base.columns and not base.empty:
        if not pd.api.types.is_numeric_dtype(base[by]):
            converted = pd.to_numeric(base[by], errors="coerce")
            if converted.notna().any():
                base = base.assign(**{by: converted})
    ranked = rank(base, ranking, "config_id" if aggregated else "run_id")
    matched = len(ranked)
    if top is not None:
        if top < 0:
            raise ResultsError("--top must be ≥ 0")
        ranked = ranked.head(top)
    return Selection(frame=ranked, ranking=ranking, aggregated=aggregated,
                     metrics=metric_columns(board, ranked), total_rows=total, matched=matched, where=where)


def apply_filter(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Rows of `frame` where the condition `where` is true.

    The condition is sweep's own small grammar, read by FilterParser (no Python, no pandas
    engine: a filter cannot call, subscript or reach attributes): column names (`name` or
    `` `name` ``), numbers, quoted text, True/False, lists `[a, b]`/`(a,)`; + - * / and unary -;
    == != < <= > >= (chained as in Python), `in` / `not in` a list; `and`/`&`, `or`/`|`,
    `not`/`~`; parentheses. E.g. ``optimizer == "adam" and f1 > 0.9``.

    Raises:
        ResultsError: the condition does not parse (with the position), names a column that is
            not there (with the columns), or is not true/false for each row.
    """
    if frame.empty:
        return frame
    try:
        mask = FilterParser(where, frame).parse()
    except _FilterError as exc:
        raise ResultsError(f"--filter {where!r}: {exc}; columns: {', '.join(map(str, frame.columns))}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:  # e.g. text compared with a number
        msg = (str(exc).splitlines() or [""])[0][:200]
        raise ResultsError(f"--filter {where!r}: {type(exc).__name__}: {msg or 'cannot be evaluated'}; columns: "
                           f"{', '.join(map(str, frame.columns))}") from None
    if isinstance(mask, (bool, np.bool_)):
        return frame if mask else frame.iloc[0:0]
    if not isinstance(mask, pd.Series) or not pd.api.types.is_bool_dtype(mask.dtype):
        raise ResultsError(f"--filter {where!r}: not a condition (it must be true or false for each row, "
                           f"e.g. 'optimizer == \"adam\" and f1 > 0.9')")
    return frame[mask]


class _FilterError(ResultsError):
    """A --filter that sweep's grammar does not accept (the message says where and why)."""


_FILTER_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<quoted>`[^`]+`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|&|\||~|\(|\)|\[|\]|,|\+|-|\*|/)
""", re.VERBOSE)
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_KEYWORDS = {"and", "or", "not", "in", "True", "False", "true", "false"}


class FilterParser:
    """A recursive-descent reader of --filter conditions (see apply_filter) that evaluates them on
    a DataFrame's columns as it reads: a column becomes its Series, everything else a constant."""

    def __init__(self, text: str, frame: pd.DataFrame) -> None:
        self.text, self.frame = text, frame
        self.tokens: list[tuple[str, str, int]] = []  # (kind, text, position)
        pos = 0
        while pos < len(text):
            m = _FILTER_TOKEN.match(text, pos)
            if m is None:
                raise _FilterError(f"unexpected {text[pos]!r} at position {pos + 1} (a filter compares columns "
                                   "with numbers or quoted text: no calls, attributes, '@' or ';')")
            kind = m.lastgroup or ""
            if kind != "space":
                self.tokens.append((kind, m.group(), pos))
            pos = m.end()
        self.i = 0

    def parse(self) -> Any:
        """The condition's value: a boolean Series (or a constant)."""
        if not self.tokens:
            raise _FilterError("empty condition")
        value = self._or()
        if self.i < len(self.tokens):
            _, tok, pos = self.tokens[self.i]
            raise _FilterError(f"unexpected {tok!r} at position {pos + 1}" + self._why(tok))
        return value

    def _why(self, tok: str) -> str:
        if tok in ("(", "[") and self.i > 0 and self.tokens[self.i - 1][0] in ("name", "quoted", "string"):
            return " (calls and subscripts are not part of a filter)"
        return ""

    def _peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def _take(self, *choices: str) -> str | None:
        tok = self._peek()
        if tok is not None and tok in choices and self.tokens[self.i][0] in ("op", "name"):
            self.i += 1
            return tok
        return None

    def _expect(self, tok: str) -> None:
        if self._take(tok) is None:
            at = (f"{self.tokens[self.i][1]!r} at position {self.tokens[self.i][2] + 1}"
                  if self.i < len(self.tokens) else "the end")
            raise _FilterError(f"expected {tok!r}, found {at}")

    def _or(self) -> Any:
        value = self._and()
        while self._take("or", "|"):
            value = _logical(value, self._and(), operator.or_)
        return value

    def _and(self) -> Any:
        value = self._not()
        while self._take("and", "&"):
            value = _logical(value, self._not(), operator.and_)
        return value

    def _not(self) -> Any:
        if self._take("not", "~"):
            value = self._not()
            return ~value if isinstance(value, pd.Series) else not value
        return self._comparison()

    def _comparison(self) -> Any:
        left = self._sum()
        result: Any = None
        while True:
            tok = self._peek()
            if tok in _COMPARE and self.tokens[self.i][0] == "op":
                self.i += 1
                right = self._sum()
                part = _COMPARE[tok](left, right)
            elif tok == "in" or (tok == "not" and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][1] == "in"):
                negate = tok == "not"
                self.i += 2 if negate else 1
                right = self._sum()
                part = _member(left, right)
                if negate:
                    part = ~part if isinstance(part, pd.Series) else not part
            else:
                return left if result is None else result
            result = part if result is None else _logical(result, part, operator.and_)
            left = right

    def _sum(self) -> Any:
        value = self._product()
        while (tok := self._take("+", "-")) is not None:
            value = _ARITH[tok](value, self._product())
        return value

    def _product(self) -> Any:
        value = self._unary()
        while (tok := self._take("*", "/")) is not None:
            value = _ARITH[tok](value, self._unary())
        return value

    def _unary(self) -> Any:
        if self._take("-"):
            return -self._unary()
        if self._take("+"):
            return +self._unary()
        return self._atom()

    def _atom(self) -> Any:
        if self.i >= len(self.tokens):
            raise _FilterError("the condition ends too early")
        kind, tok, pos = self.tokens[self.i]
        self.i += 1
        if kind == "number":
            return float(tok) if any(c in tok for c in ".eE") else int(tok)
        if kind == "string":
            return ast.literal_eval(tok)  # a string literal only: the token matched nothing else
        if kind in ("name", "quoted"):
            if tok in ("True", "true"):
                return True
            if tok in ("False", "false"):
                return False
            if tok in _KEYWORDS:
                raise _FilterError(f"unexpected {tok!r} at position {pos + 1}")
            column = tok.strip("`") if kind == "quoted" else tok
            if column not in self.frame.columns:
                raise _FilterError(f"no column {column!r} (position {pos + 1})")
            return self.frame[column]
        if tok == "(":
            if self._peek() == ")":
                raise _FilterError(f"empty parentheses at position {pos + 1}")
            value = self._or()
            if self._take(","):  # a tuple: the right side of `in`
                items = [value] + ([] if self._peek() == ")" else self._items(")"))
                self._expect(")")
                return tuple(items)
            self._expect(")")
            return value
        if tok == "[":
            items = [] if self._peek() == "]" else self._items("]")
            self._expect("]")
            return items
        raise _FilterError(f"unexpected {tok!r} at position {pos + 1}")

    def _items(self, end: str) -> list[Any]:
        items = [self._or()]
        while self._take(","):
            if self._peek() == end:
                break
            items.append(self._or())
        for item in items:
            if isinstance(item, pd.Series):
                raise _FilterError("a list holds numbers or quoted text, not columns")
        return items


def _logical(left: Any, right: Any, op: Any) -> Any:
    """`and`/`or` of conditions (Series of booleans or constants)."""
    for side in (left, right):
        if isinstance(side, pd.Series) and not pd.api.types.is_bool_dtype(side.dtype):
            raise _FilterError(f"'{side.name}' is not a condition: compare it (e.g. {side.name} > 0.5)")
    return op(left, right)


def _member(left: Any, right: Any) -> Any:
    """`left in right`, right a list or tuple of constants."""
    if not isinstance(right, (list, tuple)):
        raise _FilterError("'in' takes a list, e.g. optimizer in [\"adam\", \"sgd\"]")
    if isinstance(left, pd.Series):
        return left.isin(list(right))
    return left in right


# ------------------------------------------------------------------ exports

def display_columns(board: Leaderboard, sel: Selection) -> list[str]:
    """The columns of the selection a table shows, in order: rank, run (or configuration and
    repeats), the swept parameters, the metrics (with their std when aggregated), then the rest."""
    frame = sel.frame
    cols = ["rank"] + (["config_id", "repeats"] if sel.aggregated else ["run_id"]) + list(board.swept)
    for m in sel.metrics:
        cols.append(m)
        if sel.aggregated:
            cols.append(f"{m}_std")
    extra = [m for m, _ in sel.ranking if m not in cols]
    cols += extra + (["best_run_id"] if sel.aggregated else ["best_epoch", "epochs_run", "seed", "name"])
    return [c for c in dict.fromkeys(cols) if c in frame.columns]


def export(board: Leaderboard, sel: Selection, fmt: str) -> str:
    """The selection as text in one of FORMATS ("table" is plain text, for a file)."""
    frame = sel.frame
    if fmt == "csv":
        return csv_text(frame)
    if fmt == "json":
        rows = json.loads(frame.to_json(orient="records", double_precision=10))
        return json.dumps({"sweep": board.sweep, "model": board.model,
                           "ranking": [list(r) for r in sel.ranking], "aggregated": sel.aggregated,
                           "rows": rows}, indent=2) + "\n"
    cols = display_columns(board, sel)
    if fmt == "markdown":
        return _markdown(frame, cols, sel)
    if fmt == "latex":
        return _latex(board, frame, cols, sel)
    if fmt == "table":
        from rich.console import Console

        buf = io.StringIO()
        print_selection(board, sel, Console(file=buf, width=200, color_system=None, highlight=False))
        return buf.getvalue()
    raise ResultsError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def fmt_value(value: Any, digits: int | None = 4) -> str:
    """Metrics with `digits` decimals; other numbers (digits None) in the shortest exact-enough form."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if digits is None:
            return f"{value:.6g}"
        return f"{value:.{digits}f}"
    return str(value)


def cells(frame: pd.DataFrame, cols: list[str], sel: Selection) -> tuple[list[str], list[list[str]]]:
    """Header and rows as text (what the terminal, markdown, LaTeX and HTML tables show);
    aggregated metrics as 'mean ± std'."""
    header, getters = [], []
    for c in cols:
        if sel.aggregated and c.endswith("_std") and c[:-4] in sel.metrics:
            continue
        if sel.aggregated and c in sel.metrics:
            header.append(c)
            getters.append(lambda r, c=c: f"{fmt_value(r.get(c))} ± {fmt_value(r.get(c + '_std'))}"
                           if r.get(c + "_std") == r.get(c + "_std") else fmt_value(r.get(c)))
        else:
            header.append(c)
            digits = 4 if c in sel.metrics or c.endswith("_std") else None
            getters.append(lambda r, c=c, d=digits: fmt_value(r.get(c), d))
    rows = [[g(r) for g in getters] for r in frame.to_dict("records")]
    return header, rows


def _markdown(frame: pd.DataFrame, cols: list[str], sel: Selection) -> str:
    header, rows = cells(frame, cols, sel)

    def esc(text: str) -> str:
        return text.replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join("---:" if h not in ("run_id", "config_id", "name", "repeats", "best_run_id") else "---"
                            for h in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """The text with LaTeX's special characters (\\ & % $ # _ { } ~ ^) escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex(board: Leaderboard, frame: pd.DataFrame, cols: list[str], sel: Selection) -> str:
    header, rows = cells(frame, cols, sel)
    rows = [[latex_escape(c).replace(" ± ", r" $\pm$ ") for c in row] for row in rows]
    spec = "".join("l" if h in ("run_id", "config_id", "name", "repeats", "best_run_id") or h in board.swept
                   else "r" for h in header)
    ranked = ", ".join(f"{m} ({'higher' if d == 'max' else 'lower'} is better)" for m, d in sel.ranking)
    lines = [r"\begin{table}", r"\centering",
             f"\\caption{{Sweep {latex_escape(board.sweep)} ({board.model}), ranked by {latex_escape(ranked)}}}",
             f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def infer_format(fmt: str | None, output: Path | None) -> str:
    """The export format: `fmt` when given, else from the output file's suffix (csv when unknown),
    else "table"."""
    if fmt:
        return fmt
    if output is not None:
        return SUFFIX_FORMATS.get(output.suffix.lower(), "csv")
    return "table"


# ------------------------------------------------------------------ terminal

def print_selection(board: Leaderboard, sel: Selection, console, root: Path | None = None,
                    details: bool = True) -> None:
    """The ranked rows as a rich table, then (details) where the CSV went, resources and failures."""
    from rich.table import Table
    from rich.text import Text

    from .report_text import print_phases, print_resources

    if sel.aggregated:
        planned = len(board.runs_per_config or {}) or sel.total_rows
        shown = f"{sel.matched} of {planned} configurations (mean ± std over {board.repeats} repeats)"
    else:
        shown = f"{sel.matched} of {board.total} runs"
    title = (f"sweep {board.sweep} ({board.model}): {shown} ranked by "
             + ", ".join(f"{m} {'↓' if d == 'max' else '↑'}" for m, d in sel.ranking))
    if sel.where:
        title += f" (filter: {sel.where})"
    if len(sel.frame) < sel.matched:
        title += f", top {len(sel.frame)} shown"
    table = Table(title=title, title_justify="left", min_width=min(len(title) + 2, console.width))
    cols = display_columns(board, sel)
    if sel.aggregated:  # mean ± std is wide: the ranking metrics and a few more (the exports have all)
        keep = ([m for m, _ in sel.ranking] + sel.metrics)[:4]
        cols = [c for c in cols if c not in sel.metrics or c in keep]
        cols = [c for c in cols if c != "best_run_id"]
    cols = [c for c in cols if c not in ("name", "seed", "epochs_run")]  # in the exports, not the terminal
    # of the natural-mix metrics the terminal keeps efficiency x purity (and what it is ranked by)
    ranked = {m for m, _ in sel.ranking}
    cols = [c for c in cols if not c.startswith("natural_") or c == "natural_eff_purity" or c in ranked]
    header, rows = cells(sel.frame, cols, sel)
    for h in header:
        table.add_column(h, justify="left" if h in ("run_id", "config_id", "name", "best_run_id")
                         or h in board.swept else "right", style="bold" if h in ranked else None)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if board.outside_grid:
        console.print(f"[yellow]{len(board.outside_grid)} ranked run(s) are not in the sweep's current grid (kept from "
                      f"earlier submissions): {', '.join(board.outside_grid[:8])}"
                      + (" …" if len(board.outside_grid) > 8 else "") + "[/]")
    if board.window_split:
        console.print(f"[yellow]{len(board.window_split)} ranked run(s) were tested on windows of waveforms they "
                      "also trained on (the per-window split of earlier versions: optimistic F1/AUC); "
                      "`sweep submit GRID --force` trains them again with the per-waveform split[/]")
    if not details:
        return
    if board.csv_path is not None:
        console.print(f"leaderboard written to {relative_to_root(board.csv_path, root) if root else board.csv_path}")
    if board.resources is not None and "memory_used_mb" in board.resources:  # measured by HTCondor
        print_resources(board, console, None)
    print_phases(board, console, None)
    if board.search:
        s = board.search
        front = int(board.table["pareto"].sum()) if "pareto" in board.table else None
        console.print(f"search: sampler {s.sampler}, pruner {s.pruner}, objectives "
                      f"{', '.join(m for m, _ in s.objectives)}"
                      + (f"; {front} trial(s) on the Pareto front (column pareto)" if front is not None else "")
                      + f"; study {relative_to_root(Path(s.journal), root) if root else s.journal}",
                      markup=False)
    if board.pruned:
        stopped = Table(title=f"{len(board.pruned)} trial(s) pruned while training (not ranked)", title_justify="left")
        for col in ("run id", "trial", "name", "epochs reached", "value when stopped"):
            stopped.add_column(col, overflow="fold")
        for p in board.pruned:
            value = p.get("value")
            stopped.add_row(p["run_id"], ",".join(map(str, p.get("trials") or [])), p["name"],
                            str(p.get("epochs_run")),
                            f"{p.get('column')} {value:.4f}" if isinstance(value, (int, float)) else "-")
        console.print(stopped)
    if board.problems:
        failures = Table(title=f"{len(board.problems)} run(s) without a valid result", title_justify="left")
        for col in ("run id", "state", "reason", "stderr (last lines)"):
            failures.add_column(col, overflow="fold")
        for p in board.problems:  # job text (a reason, stderr): text, never markup, escaped for a terminal
            failures.add_row(p.run_id, str(p.state), Text(printable(p.reason)),
                             Text("\n".join(printable(line) for line in p.stderr_tail[-3:])))
        console.print(failures)


# ------------------------------------------------------------------ best models

def best_runs(board: Leaderboard, n: int, by: str | None = None) -> list[tuple[int, str]]:
    """(rank, run_id) of the n best: best runs, or with repeats the best repeat of each of the
    n best configurations (ranked by their mean)."""
    if n <= 0 or board.table.empty:
        return []
    sel = select(board, by=by, top=n)
    col = "best_run_id" if sel.aggregated else "run_id"
    return [(int(r), str(run)) for r, run in zip(sel.frame["rank"], sel.frame[col], strict=True)]


def copy_best(board: Leaderboard, n: int = 3, by: str | None = None) -> Path | None:
    """Copy model.keras, config.yaml and metrics.json of the n best into results/<sweep>/best/
    <rank>-<run_id>/. The new best/ is built beside the old one and swapped in by renames, so a
    reader never sees a half-copied folder. Returns best/ (None when nothing is ranked)."""
    if board.results_dir is None:
        return None
    chosen = best_runs(board, n, by)
    target = board.results_dir / BEST_DIR
    if not chosen:
        return None
    manifest = None  # each run's own part of its configuration
    if board.jobs_dir is not None:
        configs = board.jobs_dir / CONFIGS_DIR
        try:
            manifest = read_manifest(board.jobs_dir)
        except RecordError:
            pass
    with atomic_folder(target) as tmp:
        index: list[BestRun] = []
        for rnk, run_id in chosen:
            dest = tmp / f"{rnk}-{run_id}"
            dest.mkdir()
            copied = []
            sources = [board.results_dir / run_id / f for f in BEST_FILES]
            entry = manifest.run(run_id) if manifest is not None else None
            found = (runconfig.whole(configs, recorded_config_sha256(board.results_dir / run_id), entry)
                     if entry is not None else None)
            if found is not None:  # the run's whole configuration, from the version of the shared part its job read
                atomic_write_text(dest / CONFIG_FILE, RESOLVED_HEADER + to_yaml(found[0]))
                copied.append(CONFIG_FILE)
            for src in sources:  # the run folder came from an execute node: never through a symlink
                try:
                    copy_file(src, dest / src.name, MODEL_LIMIT)
                except (FileNotFoundError, RecordError):
                    (dest / src.name).unlink(missing_ok=True)
                    continue
                copied.append(src.name)
            index.append(BestRun(rank=rnk, run_id=run_id, folder=dest.name, files=copied))
        write_best_index(tmp, BestIndex(sweep=board.sweep, ranking=[(m, d) for m, d in ranking_for(board, by)],
                                        best=index))
    return target
