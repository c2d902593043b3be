"""`sweep report SWEEP`: one self-contained static HTML page (results/<sweep>/report.html, every
figure embedded as a base64 PNG) and the same PNGs in results/<sweep>/report/.

Figures (matplotlib, Agg): per-epoch training/validation curves and ROC curves of the best runs,
a parallel-coordinates plot of the hyperparameters coloured by the ranking metric, the metric
against each hyperparameter with Optuna's fANOVA importance, resources used against requested,
and for a search its optimization history and Pareto front. Tables: the leaderboard, the parameter
sensitivity, the runs without a valid result.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..core.names import HISTORY, REPORT, REPORT_DIR, ROC, SweepPaths
from ..core.render import BUILTIN_TEMPLATES
from ..fsutil import atomic_folder, atomic_write_text
from ..records.base import RecordError
from ..records.manifest import ResourceRequest, read_manifest
from ..records.runs import read_table
from ..records.untrusted import HISTORY_LIMIT, PNG_LIMIT, ROC_LIMIT, read_bytes
from .gather import Leaderboard, collect, timed_runs
from .leaderboard import best_runs, cells, display_columns, fmt_value, select
from .sensitivity import Sensitivity, analyse

TEMPLATE = "report.html.j2"
LABELS = {"eff_purity": "efficiency × purity", "f1": "F1", "auc": "ROC AUC", "mae": "MAE", "mse": "MSE",
          "rel_resolution": "relative resolution", "rel_bias": "relative bias"}
CLASSIFIER_PANELS = ["loss", "accuracy", "precision", "recall", "f1", "eff_purity"]
REGRESSOR_PANELS = ["loss", "mae", "mse", "bias", "resolution", "rel_resolution"]
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


@dataclass
class Image:
    """One figure of the page: its file name (without .png), title, caption and PNG (base64)."""

    name: str
    title: str
    caption: str
    data: str  # base64 PNG


def label(name: str) -> str:
    """How a metric or parameter is named on the page: "eff_purity" -> "efficiency × purity",
    else underscores as spaces."""
    return LABELS.get(name, name.replace("_", " "))


def write_report(sweep: str, root: Path, top: int = 3, by: str | None = None, output: Path | None = None) -> Path:
    """Collect the sweep, draw the figures, render the page.

    Args:
        sweep: the sweep's name.
        root: the project folder.
        top: runs whose curves and ROC are drawn.
        by: rank by this column first (as `sweep collect --by`).
        output: the HTML file (default results/<sweep>/report.html).

    Returns:
        The HTML file's path (the PNGs are also in results/<sweep>/report/).

    Raises:
        ResultsError: no such sweep, or an invalid --by.
    """
    board = collect(sweep, root, write_csv=False)
    sel = select(board, by=by)
    metric, direction = sel.ranking[0] if sel.ranking else ("f1", "max")
    chosen = best_runs(board, top, by)
    runs = board.table.set_index("run_id", drop=False) if not board.table.empty else None
    sens = analyse(board.table, board.swept, metric, direction)
    study = _study(board)
    search = _search_context(board, study, root)
    if study is not None:  # a search: the importance from its own trials and distributions
        from .sensitivity import study_importance

        objectives = [m for m, _ in board.search.objectives] if board.search else []
        imp = study_importance(study, [p for p in board.swept if p in study.get_trials(deepcopy=False)[0].params],
                               objectives.index(metric) if metric in objectives else 0)
        if imp is not None:
            sens.importance, sens.evaluator = imp, "fANOVA (optuna.importance) over the study's complete trials"
    images: list[Image] = []

    def add(name: str, title: str, caption: str, fig: Figure | None) -> None:
        if fig is None:
            return
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        images.append(Image(name, title, caption, base64.b64encode(buf.getvalue()).decode("ascii")))

    results_dir = board.results_dir or SweepPaths(root.resolve()).results(sweep)
    add("curves", "Training and validation per epoch",
        f"the {len(chosen)} best run(s); solid: training, dashed: validation; dotted line: the best epoch "
        "(the weights kept)", curves_figure(board, chosen, results_dir))
    if board.model == "lstm":
        add("roc", "ROC curves (test split)", f"the {len(chosen)} best run(s), AUC in the legend",
            roc_figure(chosen, results_dir, runs))
    add("parallel", "Hyperparameters coloured by " + label(metric),
        "one line per finished run; the best are drawn on top", parallel_figure(board.table, board.swept, metric,
                                                                               direction))
    add("metric_vs_params", f"{label(metric)} against each hyperparameter",
        f"dots: runs; red: mean ± std per value; in the titles: share of the importance ({sens.evaluator or 'fANOVA'})",
        metric_vs_params_figure(board.table, board.swept, metric, sens))
    add("importance", "Parameter importance", f"share of the variance of {label(metric)} each hyperparameter "
        f"explains: {sens.evaluator}", importance_figure(sens))
    if study is not None:
        objectives = list(board.search.objectives) if board.search else []
        add("history", "Optimization history", "each complete trial's objective value by trial number, and the best "
            "so far (pruned and failed trials have none)", history_figure(study, objectives))
        if len(objectives) > 1:
            add("pareto", "Pareto front", f"{label(objectives[0][0])} against {label(objectives[1][0])}; red: the "
                "trials no other beats in every objective (the study's best_trials)", pareto_figure(board.table,
                                                                                                  objectives))
    manifest_resources = _manifest_resources(board)
    add("resources", "Resources used against requested", "per job, from the job event log (or run.json)",
        resources_figure(board, manifest_resources))

    top_ids = {run for _, run in chosen}
    header, rows = cells(sel.frame, display_columns(board, sel), sel)
    key = "best_run_id" if sel.aggregated else "run_id"
    highlight = [str(r.get(key)) in top_ids for r in sel.frame.to_dict("records")]
    context = {
        "sweep": board.sweep, "model": board.model, "generated": dt.datetime.now(dt.UTC)
        .isoformat(timespec="seconds"), "ranking": sel.ranking, "metric": metric, "metric_label": label(metric),
        "total": board.total, "n_ok": len(board.table), "n_problems": len(board.problems),
        "aggregated": sel.aggregated, "repeats": board.repeats,
        "leaderboard": {"header": header, "rows": list(zip(rows, highlight, strict=True))},
        "best": [{"rank": r, "run_id": run} for r, run in chosen],
        "images": images, "figures": {img.name: img for img in images}, "sensitivity": _sensitivity_context(sens),
        "problems": [{"run_id": p.run_id, "state": p.state, "reason": p.reason,
                      "stderr": "\n".join(p.stderr_tail[-3:])} for p in board.problems],
        "advice": advice_text(board), "resources_table": _resources_table(board), "search": search,
        "time_use": _capitalised(board.time_use.sentence()) if board.time_use else None,
        "phases_table": _phases_table(board), "provenance": provenance_rows(board, chosen),
        "n_modified": sum(1 for p in board.problems if p.modified),
    }
    html = render_html(context)
    path = output or results_dir / REPORT
    _write_pngs(results_dir / REPORT_DIR, images)
    atomic_write_text(path, html)
    return path


def render_html(context: dict[str, Any]) -> str:
    """The report page from templates/report.html.j2 (autoescaped)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE).render(**context)


def embedded_pngs(paths: list[Path]) -> tuple[list[dict[str, str]], list[str]]:
    """PNG files made by a job or a step, to embed in a page: ([{"name", "data" (base64)}], a line
    per file not shown and why). Each is read as untrusted output is (never through a symlink, at
    most PNG_LIMIT bytes); a missing one is left out."""
    images, skipped = [], []
    for path in paths:
        try:
            data = read_bytes(path, PNG_LIMIT)
        except RecordError as exc:
            skipped.append(f"{path.name} not shown: {exc.detail}")
            continue
        if data is not None:
            images.append({"name": path.name, "data": base64.b64encode(data).decode()})
    return images, skipped


def _write_pngs(folder: Path, images: list[Image]) -> None:
    """Build the PNG folder beside the old one, then swap it in."""
    with atomic_folder(folder) as tmp:
        for img in images:
            (tmp / f"{img.name}.png").write_bytes(base64.b64decode(img.data))


# ------------------------------------------------------------------ figures

def _read_csv(path: Path, limit: int) -> dict[str, np.ndarray] | None:
    """records.runs.read_table's columns as arrays (None as it gives)."""
    table = read_table(path, limit)
    return None if table is None else {k: np.asarray(v, dtype=float) for k, v in table.items()}


def curves_figure(board: Leaderboard, chosen: list[tuple[int, str]], results_dir: Path) -> Figure | None:
    """Training (solid) and validation (dashed) curves per epoch of the chosen (rank, run id) runs,
    one panel per metric, the best epoch dotted; None when none has a readable history.csv."""
    histories = [(rnk, run, _read_csv(results_dir / run / HISTORY, HISTORY_LIMIT)) for rnk, run in chosen]
    histories = [h for h in histories if h[2] and "epoch" in h[2]]
    if not histories:
        return None
    panels = CLASSIFIER_PANELS if board.model == "lstm" else REGRESSOR_PANELS
    fig = Figure(figsize=(13, 7.5))
    axes = fig.subplots(2, 3).ravel()
    best = board.table.set_index("run_id")["best_epoch"] if "best_epoch" in board.table else pd.Series(dtype=float)
    for ax, name in zip(axes, panels, strict=True):
        for i, (rnk, run, h) in enumerate(histories):
            color = COLORS[i % len(COLORS)]
            if name in h and np.isfinite(h[name]).any():
                ax.plot(h["epoch"], h[name], color=color, lw=1.6, label=f"#{rnk} {run}")
            if f"val_{name}" in h and np.isfinite(h[f"val_{name}"]).any():
                ax.plot(h["epoch"], h[f"val_{name}"], color=color, lw=1.6, ls="--",
                        label=None if name in h else f"#{rnk} {run}")
            b = best.get(run)
            if b is not None and b == b:
                ax.axvline(b, color=color, ls=":", lw=1)
        ax.set_title(label(name))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(4, len(handles)), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def roc_figure(chosen: list[tuple[int, str]], results_dir: Path, runs: pd.DataFrame | None) -> Figure | None:
    """The ROC curves (roc.csv) of the chosen (rank, run id) runs, their AUC (from `runs`, the table
    indexed by run id, else integrated) in the legend; None when none has a readable roc.csv."""
    fig = Figure(figsize=(6.5, 6))
    ax = fig.subplots()
    drawn = 0
    for i, (rnk, run) in enumerate(chosen):
        roc = _read_csv(results_dir / run / ROC, ROC_LIMIT)
        if not roc or "fpr" not in roc or "tpr" not in roc or not roc["fpr"].size:  # no curve: one class tested
            continue
        auc = runs.loc[run, "auc"] if runs is not None and "auc" in runs.columns and run in runs.index else None
        if auc is None or auc != auc:
            order = np.argsort(roc["fpr"])
            auc = float(np.trapezoid(roc["tpr"][order], roc["fpr"][order]))
        ax.plot(roc["fpr"], roc["tpr"], color=COLORS[i % len(COLORS)], lw=1.8,
                label=f"#{rnk} {run} (AUC {float(auc):.4f})")
        drawn += 1
    if not drawn:
        return None
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="chance")
    ax.set_xlabel("false positive rate (noise kept as peak)")
    ax.set_ylabel("true positive rate (peak efficiency)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _axis_values(column: pd.Series) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Positions in [0, 1] and tick labels for one parallel axis."""
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all() and len(numeric):
        v = numeric.to_numpy(dtype=float)
        uniq = np.unique(v)
        log = uniq.min() > 0 and uniq.max() / uniq.min() >= 100
        t = np.log10(v) if log else v
        lo, hi = float(np.min(t)), float(np.max(t))
        pos = (t - lo) / (hi - lo) if hi > lo else np.full(len(t), 0.5)
        shown = uniq if len(uniq) <= 8 else np.array([uniq.min(), uniq.max()])
        ticks = [(((np.log10(u) if log else u) - lo) / (hi - lo) if hi > lo else 0.5, f"{u:.4g}") for u in shown]
        return pos, ticks
    text = column.astype(str)
    values = sorted(text.unique())
    codes = {v: i for i, v in enumerate(values)}
    n = len(values)
    pos = text.map(lambda s: codes[s] / (n - 1) if n > 1 else 0.5).to_numpy(dtype=float)
    return pos, [((i / (n - 1) if n > 1 else 0.5), v) for i, v in enumerate(values)]


def parallel_figure(table: pd.DataFrame, swept: list[str], metric: str, direction: str) -> Figure | None:
    """Parallel coordinates: one line per run through its swept parameters and `metric`, coloured
    by it (`direction` "max" or "min": the best drawn on top); None without a run that has it."""
    from matplotlib.collections import LineCollection

    if table.empty or metric not in table.columns:
        return None
    frame = table[[c for c in swept if c in table.columns] + [metric]].copy()
    frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    frame = frame[frame[metric].notna()]
    if frame.empty:
        return None
    frame = frame.sort_values(metric, ascending=(direction == "max"))  # the best drawn last, on top
    columns = list(frame.columns)
    positions, ticks = [], []
    for c in columns:
        pos, tk = _axis_values(frame[c])
        positions.append(pos)
        ticks.append(tk)
    ys = np.vstack(positions).T
    xs = np.arange(len(columns))
    segments = [np.column_stack([xs, y]) for y in ys]
    values = frame[metric].to_numpy(dtype=float)
    cmap = "viridis" if direction == "max" else "viridis_r"
    fig = Figure(figsize=(max(7, 1.9 * len(columns)), 5))
    ax = fig.subplots()
    lines = LineCollection(segments, array=values, cmap=cmap, linewidths=1.2 if len(values) < 200 else 0.5,
                           alpha=0.8 if len(values) < 200 else 0.4)
    ax.add_collection(lines)
    for x, tk in zip(xs, ticks, strict=True):
        ax.axvline(x, color="black", lw=0.8)
        for y, text in tk:
            ax.text(x + 0.03, y, text, fontsize=7, va="center", ha="left",
                    bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 0.5})
    ax.set_xlim(-0.1, len(columns) - 1 + 0.5)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks(xs, [label(c) for c in columns], rotation=15)
    ax.set_yticks([])
    fig.colorbar(lines, ax=ax, label=label(metric))
    return fig


def metric_vs_params_figure(table: pd.DataFrame, swept: list[str], metric: str, sens: Sensitivity) -> Figure | None:
    """One panel per swept parameter: each run's `metric` against its value, the mean ± std per
    value (`sens`' marginals) and its share of the importance; None without a parameter to show."""
    params = [p for p in swept if p in sens.marginals]
    if not params or table.empty:
        return None
    ncols = min(3, len(params))
    nrows = math.ceil(len(params) / ncols)
    fig = Figure(figsize=(4.5 * ncols, 3.6 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    y_all = pd.to_numeric(table[metric], errors="coerce")
    rng = np.random.default_rng(0)
    share = {}
    if sens.importance is not None:
        share = dict(zip(sens.importance["param"], sens.importance["share"], strict=True))
    for ax, p in zip(axes, params, strict=False):  # the grid's last row may have more axes (hidden below)
        marg = sens.marginals[p]
        order = {str(v): i for i, v in enumerate(marg["value"])}
        x = table[p].astype(str).map(order)
        ok = x.notna() & y_all.notna()
        jitter = rng.uniform(-0.12, 0.12, int(ok.sum()))
        ax.scatter(x[ok].to_numpy(dtype=float) + jitter, y_all[ok], s=8, alpha=0.35, color="#1f77b4", lw=0)
        ax.errorbar(range(len(marg)), marg["mean"], yerr=marg["std"].fillna(0), color="#d62728", fmt="o-",
                    capsize=3, lw=1.2, ms=4)
        ax.set_xticks(range(len(marg)), [fmt_value(v, None) for v in marg["value"]], rotation=20, fontsize=8)
        ax.set_title(label(p) + (f" (importance {share[p]:.0%})" if p in share else ""), fontsize=10)
        ax.set_ylabel(label(metric))
        ax.grid(alpha=0.3)
    for ax in axes[len(params):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def importance_figure(sens: Sensitivity) -> Figure | None:
    """The parameters' importance as bars; None when `sens` has none."""
    if sens.importance is None or sens.importance.empty:
        return None
    imp = sens.importance.iloc[::-1]
    fig = Figure(figsize=(6.5, 0.5 * len(imp) + 1.2))
    ax = fig.subplots()
    ax.barh([label(p) for p in imp["param"]], imp["importance"], color="#2ca02c")
    ax.set_xlabel(f"importance (share of the variance of {label(sens.metric)})")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def _study(board: Leaderboard):
    """A search's Optuna study (its journal), or None for a grid sweep or an unreadable journal."""
    journal = board.search.journal if board.search else None
    if not journal or not Path(journal).is_file():
        return None
    from ..records.study import load_study

    try:
        study = load_study(Path(journal), board.sweep)
    except Exception:  # noqa: BLE001 - the report goes on without the study's figures
        return None
    return study if study.get_trials(deepcopy=False) else None


def _search_context(board: Leaderboard, study, root: Path) -> dict[str, Any] | None:
    if not board.search:
        return None
    from collections import Counter

    from ..core.render import relative_to_root

    s = board.search
    counts = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False)) if study is not None else {}
    journal = Path(s.journal)
    return {"sampler": s.sampler, "pruner": s.pruner, "trials": s.trials,
            "parallel": s.parallel, "objectives": ", ".join(label(m) for m, _ in s.objectives),
            "counts": ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no trials yet",
            "journal": relative_to_root(journal, root), "dashboard": f"sweep dashboard {board.sweep}",
            "pruned": len(board.pruned)}


def history_figure(study, objectives: list[tuple[str, str]]) -> Figure | None:
    """A search's optimization history: each complete trial's value and the best so far, one panel
    per (metric, direction) objective (the first three); None without a complete trial."""
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False) if t.state is TrialState.COMPLETE]
    if not complete or not objectives:
        return None
    fig = Figure(figsize=(7.5, 3.2 * len(objectives[:3])))
    axes = np.atleast_1d(fig.subplots(len(objectives[:3]), 1))
    for k, (ax, (metric, direction)) in enumerate(zip(axes, objectives, strict=False)):  # the first three
        xs = [t.number for t in complete]
        ys = [t.values[k] for t in complete]
        pick = np.maximum.accumulate if direction == "max" else np.minimum.accumulate
        ax.scatter(xs, ys, s=18, color="#1f77b4", label="trial")
        ax.step(xs, pick(np.array(ys)), where="post", color="#d62728", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(label(metric))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def pareto_figure(table: pd.DataFrame, objectives: list[tuple[str, str]]) -> Figure | None:
    """The first two objectives against each other, the Pareto front (the table's `pareto` column)
    in red; `objectives` has at least two. None when the table lacks the columns."""
    (a, _), (b, _) = objectives[:2]
    if table.empty or "pareto" not in table or a not in table or b not in table:
        return None
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    front = table["pareto"].astype(bool)
    ax.scatter(table.loc[~front, a], table.loc[~front, b], s=18, color="#999999", label="dominated")
    ordered = table[front].sort_values(a)
    ax.plot(ordered[a], ordered[b], "o-", color="#d62728", ms=5, label="Pareto front")
    ax.set_xlabel(label(a))
    ax.set_ylabel(label(b))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _manifest_resources(board: Leaderboard) -> ResourceRequest | None:
    manifest = read_manifest(board.jobs_dir) if board.jobs_dir is not None else None
    return manifest.resources if manifest is not None else None


def resources_figure(board: Leaderboard, requested: ResourceRequest | None) -> Figure | None:
    """CPUs, memory and run time used per job against what was requested (the runs' own requests,
    else `requested`, the manifest's) and what the advice suggests: bars per job up to 40 jobs,
    histograms beyond; None when nothing was measured."""
    frame = board.resources
    if frame is None or frame.empty:
        return None
    a = board.advice
    panels = [
        ("CPUs", "cpus_used", "cpus_requested", requested.request_cpus if requested else None,
         a.suggested_cpus if a else None),
        ("memory (MB)", "memory_used_mb", "memory_requested_mb", requested.request_memory_mb if requested else None,
         a.suggested_memory_mb if a else None),
        ("run time (min)", "wall_s", None, (requested.runtime_s if requested else 0) / 60 or None,
         a.suggested_runtime_s / 60 if a else None),
    ]
    fig = Figure(figsize=(14, 4))
    axes = fig.subplots(1, 3)
    n = len(frame)
    for ax, (title, used_col, req_col, req_default, suggested) in zip(axes, panels, strict=True):
        ax.set_title(title)
        used = pd.to_numeric(frame[used_col], errors="coerce") if used_col in frame else pd.Series([np.nan] * n)
        if used_col == "wall_s":
            used = used / 60
        req = (pd.to_numeric(frame[req_col], errors="coerce") if req_col and req_col in frame
               else pd.Series([np.nan] * n))
        req = req.fillna(req_default if req_default is not None else np.nan)
        if used.notna().sum() == 0:
            ax.text(0.5, 0.5, "not measured\n(no job event log)", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        if n <= 40:
            x = np.arange(n)
            ax.bar(x, used, color="#1f77b4", label="used")
            if req.notna().any():
                ax.scatter(x, req, marker="_", s=200, color="black", label="requested", zorder=3)
            ax.set_xlabel("job")
            ax.set_xticks([])
        else:
            top = max(float(used.max()), float(req.max()) if req.notna().any() else 0.0, float(suggested or 0))
            ax.hist(used.dropna(), bins=np.linspace(0, top * 1.05 or 1.0, 41), color="#1f77b4", label="used")
            if req.notna().any():
                ax.axvline(float(req.median()), color="black", lw=1.5, label="requested")
            ax.set_ylabel("jobs")
        if suggested is not None:
            line = ax.axhline if n <= 40 else ax.axvline
            line(float(suggested), color="#d62728", ls="--", lw=1.2, label="suggested")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ tables and text

def provenance_rows(board: Leaderboard, chosen: list[tuple[int, str]]) -> list[dict[str, str]]:
    """Where each leader's result comes from (gather.run_provenance), as the page shows it: the
    commit (12 digits, "+ dirty" when tracked files had changed), the submit host, the HTCondor
    that queued it, the execute node and its HTCondor, and whether its files are the job's."""
    rows = []
    for rank, run_id in chosen:
        p = board.provenance.get(run_id, {})
        commit = p.get("commit")
        shown = "-" if not commit else commit[:12] + (" + dirty" if p.get("dirty") else "")
        rows.append({"rank": str(rank), "run_id": run_id, "commit": shown,
                     "submit_host": p.get("submit_host") or "-", "submit_condor": p.get("submit_condor") or "-",
                     "host": p.get("host") or "-", "execute_condor": p.get("execute_condor") or "-",
                     "files": p.get("files") or "unverified"})
    return rows


def advice_text(board: Leaderboard) -> str | None:
    """The right-sizing sentence as a sentence (capitalised), or None without measurements."""
    if board.advice is None:
        return None
    return _capitalised(board.advice.sentence())


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _phases_table(board: Leaderboard) -> dict[str, Any] | None:
    """Each job's phases (wall seconds of its last start), its wall time and queue wait; None
    when no run recorded its phases."""
    shown = timed_runs(board)
    if shown is None:
        return None
    names, timed = shown
    cols = ["run_id", *(f"{name}_s" for name in names), "wall_s"] + (["queue_s"] if "queue_s" in timed.columns else [])
    rows = [[fmt_value(r.get(c), None) for c in cols] for r in timed[cols].head(200).to_dict("records")]
    return {"header": cols, "rows": rows, "more": max(0, len(timed) - 200)}


def _resources_table(board: Leaderboard) -> dict[str, Any] | None:
    frame = board.resources
    if frame is None or frame.empty:
        return None
    cols = [c for c in ("run_id", "state", "cpus_used", "cpus_requested", "memory_used_mb", "memory_requested_mb",
                        "wall_s", "cpu_efficiency", "memory_efficiency", "starts", "holds", "input_mb", "output_mb",
                        "fetched_mb") if c in frame.columns]
    rows = [[fmt_value(r.get(c), None) for c in cols] for r in frame[cols].head(200).to_dict("records")]
    return {"header": cols, "rows": rows, "more": max(0, len(frame) - 200)}


def _sensitivity_context(sens: Sensitivity) -> dict[str, Any]:
    imp = None
    if sens.importance is not None:
        imp = [{"param": r["param"], "importance": f"{r['importance']:.4f}", "share": f"{r['share']:.0%}"}
               for r in sens.importance.to_dict("records")]
    marginals = {p: [{"value": fmt_value(r["value"], None), "mean": fmt_value(r["mean"]), "std": fmt_value(r["std"]),
                      "count": int(r["count"])} for r in m.to_dict("records")] for p, m in sens.marginals.items()}
    return {"metric": label(sens.metric), "n_runs": sens.n_runs, "importance": imp,
            "r2": None if sens.fit_r2 is None else f"{sens.fit_r2:.3f}", "marginals": marginals,
            "notes": sens.notes, "top": sens.top(), "evaluator": sens.evaluator}
