"""Matured performance: only horizons that have ended, metrics equal to direct computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from memberscore.settings import MonitorSettings
from training.monitoring.performance import matured, matured_metrics, promoted_figures
from training.monitoring.verdict import decay_findings, retrain_command


def test_a_prediction_matures_when_its_horizon_has_ended() -> None:
    cutoffs = [pd.Timestamp(d, tz="UTC") for d in ("2025-01-01", "2025-03-01", "2025-04-01")]
    end = pd.Timestamp("2025-06-01", tz="UTC")  # data observed until, exclusive
    assert matured(cutoffs, 90, end) == cutoffs[:2], "2025-03-01 + 90 d = 2025-05-30 <= end"
    assert matured(cutoffs, 92, end) == cutoffs[:2], "2025-03-01 + 92 d = 2025-06-01 == end"
    assert matured(cutoffs, 93, end) == cutoffs[:1]


def test_matured_auc_equals_sklearn_on_the_same_rows() -> None:
    rng = np.random.default_rng(7)
    p = rng.random(3_000)
    y = (rng.random(3_000) < p).astype(float)
    figures = matured_metrics("binary", y, p)
    assert figures["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert figures["gini"] == pytest.approx(2 * roc_auc_score(y, p) - 1, abs=1e-12)
    assert figures["bias_pct"] == pytest.approx((p.sum() - y.sum()) / y.sum() * 100)
    assert figures["ece"] < 0.05, "outcomes drawn from the probabilities are calibrated"
    assert figures["rows"] == 3_000


def test_spend_figures() -> None:
    actual = np.array([0.0, 10.0, 20.0, 70.0])
    figures = matured_metrics("spend", actual, actual * 1.1)
    assert figures["normalized_gini"] == pytest.approx(1.0)
    assert figures["bias_pct"] == pytest.approx(10.0)


def test_decay_is_measured_against_the_promoted_backtest() -> None:
    promoted = promoted_figures("binary", {"backtest_roc_auc": 0.80, "backtest_ece": 0.02})
    assert promoted == pytest.approx({"roc_auc": 0.80, "ece": 0.02, "gini": 0.60})
    limits = MonitorSettings()
    fine = {"roc_auc": 0.78, "ece": 0.03, "bias_pct": 5.0}
    worse = {"roc_auc": 0.70, "ece": 0.10, "bias_pct": -40.0}
    assert decay_findings("churn", fine, promoted, limits) == []
    found = decay_findings("churn", worse, promoted, limits)
    assert [f.subject for f in found] == ["roc_auc", "ece", "bias_pct"]


def test_the_retrain_command_names_the_task_and_a_non_default_horizon() -> None:
    command = retrain_command("churn", 90, 90)
    assert command == "memberscore train churn && memberscore promote churn"
    assert "--horizon 30" in retrain_command("churn", 30, 90)
