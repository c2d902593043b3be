"""Which hyperparameters move the ranking metric: per value marginals and Optuna's parameter
importance. Pandas and Optuna on the collected table (one row per run); no I/O.

Marginal: for each swept hyperparameter, the metric's mean, std and count per value.
Importance: optuna.importance's fANOVA evaluator (a random forest and a functional ANOVA: the
share of the metric's variance each hyperparameter explains, summing to 1), fixed seed. A
search's study gives it its own trials and distributions (study=); a grid's runs are turned into
an in-memory study first, each hyperparameter as an int or float distribution over its values
when they are numbers, else a categorical one. Skipped, with a note, below MIN_RUNS runs or
with nothing varying.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

MIN_RUNS = 4
SEED = 0


@dataclass
class Sensitivity:
    """How `metric` (better when `direction`: "max" or "min") moves with each hyperparameter over
    `n_runs` runs: its marginals per value, the importance (share of its variance) with what
    computed it, and notes on what was skipped."""

    metric: str
    direction: str
    n_runs: int
    marginals: dict[str, pd.DataFrame] = field(default_factory=dict)  # param -> value, mean, std, count
    importance: pd.DataFrame | None = None  # param, importance, importance_std, share (sorted)
    fit_r2: float | None = None
    notes: list[str] = field(default_factory=list)
    evaluator: str = ""  # what computed the importance

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
    study = _as_study(frame, varying, metric, direction)
    imp = _importance(study, varying)
    result.fit_r2 = None
    result.evaluator = "fANOVA (optuna.importance)"
    result.importance = imp
    constant = [p for p in params if p in frame.columns and p not in varying]
    if constant:
        result.notes.append(f"not varied between the finished runs: {', '.join(constant)}")
    return result


def _as_study(frame: pd.DataFrame, params: list[str], metric: str, direction: str):
    """An in-memory Optuna study of the runs: one complete trial per row."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists, values = {}, {}
    for p in params:
        numeric = pd.to_numeric(frame[p], errors="coerce")
        if numeric.notna().all() and not frame[p].map(lambda v: isinstance(v, bool)).any():
            integer = bool((numeric == numeric.round()).all())
            low, high = float(numeric.min()), float(numeric.max())
            dists[p] = IntDistribution(int(low), int(high)) if integer else FloatDistribution(low, high)
            values[p] = numeric.astype(int) if integer else numeric.astype(float)
        else:
            text = frame[p].astype(str)
            dists[p] = CategoricalDistribution(sorted(text.unique()))
            values[p] = text
    study = optuna.create_study(direction="maximize" if direction == "max" else "minimize")
    trials = [optuna.trial.create_trial(params={p: (values[p].iloc[i].item() if hasattr(values[p].iloc[i], "item")
                                                    else values[p].iloc[i]) for p in params},
                                        distributions=dists, value=float(frame[metric].iloc[i]))
              for i in range(len(frame))]
    study.add_trials(trials)
    return study


def _importance(study, params: list[str], target=None) -> pd.DataFrame:
    """Optuna's fANOVA importance of `params` (param, importance, importance_std, share), sorted."""
    import optuna

    found = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=SEED), params=params, target=target,
        normalize=True)
    imp = pd.DataFrame({"param": list(found), "importance": [float(v) for v in found.values()]})
    imp["importance_std"] = float("nan")  # fANOVA gives one value per hyperparameter
    imp["share"] = imp["importance"]
    return imp.sort_values("importance", ascending=False, kind="mergesort").reset_index(drop=True)


def study_importance(study, params: list[str], objective: int = 0) -> pd.DataFrame | None:
    """A search's own importance: fANOVA over its complete trials (for several objectives, the
    `objective`-th); None below MIN_RUNS complete trials or with one trial's values only."""
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False) if t.state is TrialState.COMPLETE]
    varying = [p for p in params if len({repr(t.params.get(p)) for t in complete}) > 1]
    values = {t.values[objective] for t in complete}
    if len(complete) < MIN_RUNS or not varying or len(values) < 2:
        return None
    target = (lambda t: t.values[objective]) if len(study.directions) > 1 else None
    return _importance(study, varying, target)
