"""Metrics against hand-computed values and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from training.core import metrics

Y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 1])
P = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.5, 0.3, 0.2, 0.1, 0.05])


def test_roc_auc_hand_value_and_sklearn() -> None:
    """4 positives × 6 negatives; pairs won: 6 + 4 + 4.5 (tie at 0.5 counts half) + 0 = 14.5."""
    assert metrics.roc_auc(Y, P) == pytest.approx(14.5 / 24)
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 500), rng.random(500).round(2)
    assert metrics.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p))


def test_pr_auc_matches_average_precision_with_ties() -> None:
    """Average precision equals scikit-learn's, including tied scores."""
    assert metrics.pr_auc(Y, P) == pytest.approx(average_precision_score(Y, P))
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 2, 300), rng.random(300).round(1)
    assert metrics.pr_auc(y, p) == pytest.approx(average_precision_score(y, p))


def test_brier_and_ece() -> None:
    """Brier equals scikit-learn's; ECE by hand on two equal-mass bins."""
    assert metrics.brier(Y, P) == pytest.approx(brier_score_loss(Y, P))
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.6, 0.8])
    # bins {0.1, 0.3} → |0.2 − 0| and {0.6, 0.8} → |0.7 − 1|; each half the rows
    assert metrics.expected_calibration_error(y, p, bins=2) == pytest.approx(0.25)
    assert metrics.expected_calibration_error(np.r_[0, 1], np.r_[0.0, 1.0]) == 0.0


def test_lift_and_capture_at_top_ten_percent() -> None:
    """Top 1 of 10 rows is a positive: lift = 1 / 0.4 = 2.5, capture = 1 / 4."""
    lift, capture = metrics.lift_and_capture(Y, P)
    assert (lift, capture) == (pytest.approx(2.5), pytest.approx(0.25))


def test_normalized_gini_perfect_reverse_and_hand_value() -> None:
    """1 for a perfect ordering, −1 reversed; a hand-computed middle case."""
    actual = np.array([0.0, 10.0, 30.0, 60.0])
    assert metrics.normalized_gini(actual, actual) == pytest.approx(1.0)
    assert metrics.normalized_gini(actual, -actual) == pytest.approx(-1.0)
    # order by prediction [30, 60, 0, 10]: cumulative shares .3, .9, .9, 1 → 3.1/4 − 5/8
    # perfect [60, 30, 10, 0]: .6, .9, 1, 1 → 3.5/4 − 5/8
    predicted = np.array([1.0, 0.0, 3.0, 2.0])
    expected = (3.1 / 4 - 5 / 8) / (3.5 / 4 - 5 / 8)
    assert metrics.normalized_gini(actual, predicted) == pytest.approx(expected)


def test_spend_report_and_decile_table() -> None:
    """MAE, RMSE, bias % by hand; deciles put the highest predictions first."""
    actual, predicted = np.array([0.0, 10.0, 20.0, 30.0]), np.array([5.0, 5.0, 25.0, 35.0])
    report = metrics.spend_report(actual, predicted)
    assert report["mae"] == pytest.approx(5.0)
    assert report["rmse"] == pytest.approx(5.0)
    assert report["bias_pct"] == pytest.approx((70 - 60) / 60 * 100)
    assert report["spearman"] == pytest.approx(0.9486832980505138)
    table = metrics.decile_table(np.arange(20.0), np.arange(20.0))
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["mean_actual"].iloc[0] == pytest.approx(18.5), "decile 1 = top 2 rows"
    assert table["share_actual"].sum() == pytest.approx(1.0)


def test_one_class_gives_nan_not_a_number_that_looks_fine() -> None:
    """AUC of a single class is undefined."""
    assert np.isnan(metrics.roc_auc(np.zeros(5), np.arange(5.0)))
