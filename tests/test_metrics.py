"""Metrics against scikit-learn on known arrays."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from sweep.core.metrics import classification_metrics, regression_metrics, roc_curve, roc_points


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


@pytest.mark.parametrize("levels", [None, 7, 2, 1])  # continuous scores; few distinct (ties); two values; one
def test_the_roc_curve_and_its_auc_are_scikit_learn_s(levels):
    # sweep draws the curve with NumPy (the job does not import scikit-learn): the same points,
    # ties moving together and collinear points dropped, and the same area
    rng = np.random.default_rng(levels or 3)
    y = rng.integers(0, 2, 2000)
    s = rng.random(2000) * 0.6 + y * 0.4
    if levels == 1:  # a model that outputs a constant (a dead relu before its output): AUC 0.5, no crash
        s = np.full(y.size, 0.7)
    elif levels:
        s = np.round(s * (levels - 1)) / (levels - 1)
    fpr, tpr, thr = roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_array_equal(thr, sk_thr)
    assert classification_metrics(y, s)["auc"] == pytest.approx(skm.roc_auc_score(y, s), rel=1e-12)


def test_no_roc_curve_from_one_class_or_a_diverged_model():
    with pytest.raises(ValueError, match="both classes"):
        roc_curve([1, 1, 1], [0.2, 0.5, 0.9])
    assert roc_points([0, 0], [0.1, 0.2]) == {"fpr": [], "tpr": [], "threshold": []}
    with pytest.raises(ValueError, match="NaN or infinite"):
        classification_metrics([0, 1, 1], [0.1, float("nan"), 0.8])


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
