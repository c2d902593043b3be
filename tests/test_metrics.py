"""Metrics against scikit-learn on known arrays."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from sweep.core.metrics import classification_metrics, regression_metrics, roc_points


def test_classification_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    scores = np.clip(y * 0.3 + rng.random(1000) * 0.7, 0, 1)
    m = classification_metrics(y, scores, threshold=0.5)
    pred = (scores >= 0.5).astype(int)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, scores))
    assert m["eff_purity"] == pytest.approx(m["precision"] * m["recall"])
    assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == 1000


def test_known_confusion_matrix():
    y = [1, 1, 1, 0, 0, 0, 0, 1]
    s = [0.9, 0.8, 0.2, 0.7, 0.1, 0.3, 0.4, 0.6]
    m = classification_metrics(y, s)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 1, 1, 3)
    assert m["precision"] == pytest.approx(0.75) and m["recall"] == pytest.approx(0.75)
    assert m["eff_purity"] == pytest.approx(0.5625)


def test_degenerate_cases():
    m = classification_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    assert m["precision"] == 0 and m["recall"] == 0 and m["f1"] == 0 and math.isnan(m["auc"])


def test_roc_points_thinned_and_consistent():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5000)
    s = rng.random(5000) * 0.5 + y * 0.5
    roc = roc_points(y, s, max_points=100)
    assert len(roc["fpr"]) <= 100
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(skm.roc_auc_score(y, s), abs=0.01)


def test_regression_metrics():
    true = np.array([20.0, 25.0, 30.0, 25.0])
    pred = np.array([21.0, 24.0, 33.0, 25.0])
    m = regression_metrics(true, pred)
    assert m["mse"] == pytest.approx(skm.mean_squared_error(true, pred))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(true, pred))
    assert m["bias"] == pytest.approx(0.75)
    assert m["rel_bias"] == pytest.approx(0.75 / 25.0)
    assert m["resolution"] == pytest.approx(np.std(pred - true))
    assert m["rel_resolution"] == pytest.approx(np.std((pred - true) / true))
