"""Model metrics, computed with NumPy alone (no TensorFlow, no scikit-learn: the job does not import
it, see sweep/physics/tfimport.py).

Classifier (peak finding): precision, recall, F1, accuracy, ROC AUC, efficiency×purity
(= recall × precision, the seed study's figure of merit). Regressor (clusterization):
MSE, MAE, bias and resolution of the predicted against the true number of clusters.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def classification_metrics(y_true: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    """Peak-finder metrics of scores against 0/1 labels.

    Args:
        y_true: labels (1 signal, 0 noise).
        scores: the model's scores, same length.
        threshold: a score at or above it counts as signal.

    Returns:
        precision, recall, f1, accuracy, auc (NaN when only one class is present), eff_purity
        (= recall × precision), and the counts tp, fp, fn, tn.
    """
    labels = np.asarray(y_true).astype(np.int64).ravel()
    score = np.asarray(scores, dtype=np.float64).ravel()
    y_pred = (score >= threshold).astype(np.int64)
    tp = int(np.sum((y_pred == 1) & (labels == 1)))
    fp = int(np.sum((y_pred == 1) & (labels == 0)))
    fn = int(np.sum((y_pred == 0) & (labels == 1)))
    tn = int(np.sum((y_pred == 0) & (labels == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = (tp + tn) / len(labels) if len(labels) else 0.0
    if 0 < labels.sum() < len(labels):
        fpr, tpr, _ = roc_curve(labels, score)
        auc = float(np.trapezoid(tpr, fpr))
    else:
        auc = math.nan
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": accuracy, "auc": auc,
            "eff_purity": precision * recall, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def roc_curve(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve of scores against 0/1 labels, as scikit-learn's `roc_curve` draws it: one point
    per distinct score (ties move together), points on a straight line between their neighbours
    dropped, and a first point (0, 0) at threshold +inf.

    Returns:
        fpr, tpr and threshold (decreasing), of equal length.

    Raises:
        ValueError: the labels hold only one class (no curve to draw), or a score is NaN or infinite
            (a model that diverged).
    """
    labels = np.asarray(y_true).astype(np.int64).ravel()
    score = np.asarray(scores, dtype=np.float64).ravel()
    if not np.all(np.isfinite(score)):
        raise ValueError("a score is NaN or infinite: no ROC curve")
    order = np.argsort(score, kind="mergesort")[::-1]
    score, labels = score[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]  # the last index of each distinct score
    tps = np.cumsum(labels)[last_of_tie]
    fps = 1 + last_of_tie - tps
    if not tps.size or tps[-1] == 0 or fps[-1] == 0:
        raise ValueError("the ROC curve needs labels of both classes")
    # one distinct score (a model that outputs a constant) is one point: nothing between ends to drop
    keep = (np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]) if tps.size > 1
            else np.arange(tps.size))
    tps, fps, thresholds = np.r_[0, tps[keep]], np.r_[0, fps[keep]], np.r_[np.inf, score[last_of_tie][keep]]
    return fps / fps[-1], tps / tps[-1], thresholds


def roc_points(y_true: ArrayLike, scores: ArrayLike, max_points: int = 200) -> dict[str, list[float]]:
    """The ROC curve as lists fpr, tpr, threshold, thinned to at most max_points (both ends kept;
    the infinite first threshold becomes 1.0); empty lists when the labels hold one class only."""
    labels = np.asarray(y_true).astype(np.int64).ravel()
    if not 0 < labels.sum() < labels.size:
        return {"fpr": [], "tpr": [], "threshold": []}
    fpr, tpr, thr = roc_curve(labels, np.asarray(scores).ravel())
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
    thr = np.where(np.isfinite(thr), thr, 1.0)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "threshold": thr.tolist()}


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Clusterizer metrics of predicted against true cluster counts.

    Returns:
        mse, mae, bias (mean of predicted minus true), abs_bias, rel_bias, resolution (std of
        predicted minus true), rel_resolution (std of (predicted − true)/true over true > 0),
        mean_true, mean_pred.
    """
    true = np.asarray(y_true, dtype=np.float64).ravel()
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    diff = pred - true
    mean_true = float(np.mean(true)) if len(true) else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(true > 0, diff / true, np.nan)
    return {
        "mse": float(np.mean(diff**2)),
        "mae": float(np.mean(np.abs(diff))),
        "bias": float(np.mean(diff)),  # predicted minus true, in clusters
        "abs_bias": float(abs(np.mean(diff))),
        "rel_bias": float(np.mean(diff) / mean_true) if mean_true else math.nan,
        "resolution": float(np.std(diff)),  # spread of predicted minus true, in clusters
        "rel_resolution": float(np.nanstd(rel)),  # spread of (predicted - true) / true
        "mean_true": mean_true,
        "mean_pred": float(np.mean(pred)),
    }
