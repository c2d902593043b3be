"""Which hyperparameters move the ranking metric: per value marginals and a permutation
importance. Pure pandas / scikit-learn on the collected table (one row per run); no I/O.

Marginal: for each swept hyperparameter, the metric's mean, std and count per value.
Importance: a RandomForestRegressor (fixed seed) fitted on the swept hyperparameters, each
encoded as one column (numbers as they are, anything else as ordinal codes in sorted order,
which trees split as well as one-hot and which keeps one column per hyperparameter), then
scikit-learn's permutation importance of each column: how much R² drops when that
hyperparameter is shuffled. Skipped, with a note, below MIN_RUNS runs or with nothing varying.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

MIN_RUNS = 4
SEED = 0


@dataclass
class Sensitivity:
    metric: str
    direction: str
    n_runs: int
    marginals: dict[str, pd.DataFrame] = field(default_factory=dict)  # param -> value, mean, std, count
    importance: pd.DataFrame | None = None  # param, importance, importance_std, share (sorted)
    fit_r2: float | None = None
    notes: list[str] = field(default_factory=list)

    def top(self) -> str | None:
        """The hyperparameter that matters most (by importance, else by marginal spread)."""
        if self.importance is not None and not self.importance.empty:
            return str(self.importance.iloc[0]["param"])
        spreads = {p: m["mean"].max() - m["mean"].min() for p, m in self.marginals.items() if len(m) > 1}
        return max(spreads, key=spreads.get) if spreads else None


def _encode(column: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all():
        return numeric.astype(float)
    values = sorted(column.astype(str).unique())
    codes = {v: i for i, v in enumerate(values)}
    return column.astype(str).map(codes).astype(float)


def _sort_key(values: pd.Series):
    numeric = pd.to_numeric(values, errors="coerce")
    return numeric if numeric.notna().all() else values.astype(str)


def analyse(table: pd.DataFrame, params: list[str], metric: str, direction: str = "max",
            n_estimators: int = 200, n_repeats: int = 10) -> Sensitivity:
    """Sensitivity of `metric` to each of `params` over the rows of `table` (one per run)."""
    result = Sensitivity(metric=metric, direction=direction, n_runs=0)
    if metric not in table.columns:
        result.notes.append(f"no column {metric!r}: nothing to analyse")
        return result
    frame = table[[p for p in params if p in table.columns] + [metric]].copy()
    frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    frame = frame[frame[metric].notna()]
    result.n_runs = len(frame)
    for p in params:
        if p not in frame.columns:
            continue
        key = frame[p].astype(str)
        stats = frame.groupby(key, sort=False)[metric].agg(["mean", "std", "count"])
        first = frame.groupby(key, sort=False)[p].first()
        stats.insert(0, "value", first)
        stats = stats.sort_values("value", key=_sort_key).reset_index(drop=True)
        result.marginals[p] = stats
    varying = [p for p in params if p in frame.columns and frame[p].astype(str).nunique() > 1]
    if len(frame) < MIN_RUNS:
        result.notes.append(f"importance skipped: {len(frame)} run(s) with a {metric}, at least {MIN_RUNS} needed")
        return result
    if not varying:
        result.notes.append("importance skipped: no hyperparameter varies between the runs")
        return result
    if frame[metric].nunique() < 2:
        result.notes.append(f"importance skipped: {metric} is the same for every run")
        return result
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    x = pd.DataFrame({p: _encode(frame[p]) for p in varying})
    y = frame[metric].to_numpy(dtype=float)
    forest = RandomForestRegressor(n_estimators=n_estimators, random_state=SEED, n_jobs=1,
                                   min_samples_leaf=1 if len(frame) < 50 else 2)
    forest.fit(x.to_numpy(), y)
    result.fit_r2 = float(forest.score(x.to_numpy(), y))
    perm = permutation_importance(forest, x.to_numpy(), y, n_repeats=n_repeats, random_state=SEED, n_jobs=1)
    imp = pd.DataFrame({"param": varying, "importance": perm.importances_mean, "importance_std": perm.importances_std})
    total = imp["importance"].clip(lower=0).sum()
    imp["share"] = imp["importance"].clip(lower=0) / total if total > 0 else 0.0
    result.importance = imp.sort_values("importance", ascending=False, kind="mergesort").reset_index(drop=True)
    constant = [p for p in params if p in frame.columns and p not in varying]
    if constant:
        result.notes.append(f"not varied between the finished runs: {', '.join(constant)}")
    return result
