"""The benchmarks' own arithmetic: seed ensembles, cross-validation folds, skewed test sets."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tests.helpers import REPO


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module


def test_a_seed_ensemble_scores_the_mean_probabilities(bench):
    accuracy = bench("accuracy")
    target = np.array([0, 1, 1, 0])
    first = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.2, 0.8]])  # wrong on 1 and 3
    second = np.array([[0.6, 0.4], [0.1, 0.9], [0.1, 0.9], [0.9, 0.1]])  # right everywhere
    third = np.array([[0.6, 0.4], [0.1, 0.9], [0.6, 0.4], [0.6, 0.4]])  # wrong on 2
    result = accuracy.seed_ensemble([first, second, third], [target] * 3, ["a", "b"])
    assert result["oa"] == 1.0 and result["f1_macro"] == 1.0
    with pytest.raises(ValueError, match="test splits differ"):
        accuracy.seed_ensemble([first, second], [target, 1 - target], ["a", "b"])


def test_cross_validation_folds_deal_every_class_out_evenly(bench):
    selection = bench("selection")
    classes = np.array(["a"] * 10 + ["b"] * 7 + ["c"] * 3)
    fold = selection.stratified_folds(classes, 4, np.random.default_rng(0))
    for c in "abc":
        counts = np.bincount(fold[classes == c], minlength=4)
        assert counts.max() - counts.min() <= 1 and counts.sum() == (classes == c).sum()
    again = selection.stratified_folds(classes, 4, np.random.default_rng(0))
    assert np.array_equal(fold, again)


def test_the_skewed_test_set_keeps_two_main_classes_at_the_share(bench):
    prior_shift = bench("prior_shift")
    target = np.repeat(np.arange(5), [50, 40, 30, 20, 10])
    rows = prior_shift.skewed(target, 0.9, seed=0)
    kept = target[rows]
    assert (kept < 2).sum() == 90 and len(rows) == 100  # classes 0 and 1 whole, 10 others
    assert len(set(rows)) == len(rows) and np.all(np.diff(rows) > 0)
