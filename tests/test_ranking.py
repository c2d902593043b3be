"""Ranking: by the grid's list of keys in order, ties by the next key, missing values last."""

import math

from sweep.core.ranking import rank


def test_classifier_ranking_with_ties_and_missing():
    records = [
        {"run_id": "a", "f1": 0.90, "auc": 0.97, "eff_purity": 0.80},
        {"run_id": "b", "f1": 0.95, "auc": 0.96, "eff_purity": 0.90},
        {"run_id": "c", "f1": 0.95, "auc": 0.99, "eff_purity": 0.85},
        {"run_id": "d", "f1": math.nan, "auc": 0.99, "eff_purity": 0.99},
    ]
    table = rank(records, [("f1", "max"), ("auc", "max"), ("eff_purity", "max")])
    assert list(table["run_id"]) == ["c", "b", "a", "d"]
    assert list(table["rank"]) == [1, 2, 3, 4]


def test_regression_ranking_ascending():
    records = [{"run_id": "x", "mae": 1.2}, {"run_id": "y", "mae": 0.8}, {"run_id": "z", "mae": 0.8}]
    table = rank(records, [("mae", "min")])
    assert list(table["run_id"]) == ["y", "z", "x"]


def test_empty():
    assert rank([], [("f1", "max")]).empty
