"""Backtests: temporal splits only; no training label window reaches the evaluation cutoff."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from training.core import backtest, dataset, metrics
from training.core.labels import as_cutoff, observed_until
from training.core.tasks import TASKS
from training.models.boosting import BoostParams, prior_only
from training.models.classifier import CalibratedClassifier

H = 90
FAST = BoostParams(seed=1, num_boost_round=40, min_data_in_leaf=20)


def cutoffs_every(days: int, count: int) -> list[pd.Timestamp]:
    """`count` cutoffs `days` apart from 2023-03-01."""
    return [as_cutoff("2023-03-01") + pd.Timedelta(days=days * i) for i in range(count)]


def monthly(
    task: str, programme, rfm, folds: int, min_spend: float = 0.0
) -> tuple[dataset.TrainingData, list[backtest.Fold]]:
    """Training data of `task` over ten cutoffs 28 days apart of the synthetic programme, and
    `folds` backtest folds over them (labels and predictions over H days)."""
    members, orders = programme
    cutoffs = cutoffs_every(28, 10)
    end = observed_until(orders)
    frame = dataset.join_features(
        dataset.entity_frame(TASKS[task], members, orders, cutoffs, H, end, min_spend),
        rfm(members, orders, cutoffs),
    )
    data = dataset.training_data(TASKS[task], members, orders, frame, min_spend)
    plan = backtest.plan_folds(
        cutoffs, end, label_days=H, predict_days=H, folds=folds, train_cutoffs=12
    )
    return data, plan


END = as_cutoff("2024-03-01")


def test_fold_plan_never_uses_a_window_that_reaches_the_evaluation_cutoff() -> None:
    """For every fold: t + label_days <= evaluate for each training and calibration cutoff,
    the calibration cutoff is later than every training cutoff and the evaluation window is
    observed."""
    cutoffs = cutoffs_every(28, 12)
    end = cutoffs[-1] + pd.Timedelta(days=H)
    folds = backtest.plan_folds(
        cutoffs, end, label_days=H, predict_days=H, folds=3, train_cutoffs=12
    )
    assert len(folds) == 3
    for fold in folds:
        assert fold.evaluate is not None
        for t in (*fold.train, fold.calibrate):
            assert t + pd.Timedelta(days=H) <= fold.evaluate, f"{t} leaks into {fold.evaluate}"
        assert max(fold.train) < fold.calibrate
    assert folds[-1].evaluate == cutoffs[-1]
    assert (
        backtest.plan_folds(
            cutoffs_every(28, 3), end, label_days=H, predict_days=H, folds=3, train_cutoffs=12
        )
        == []
    ), "no room for a fold"


def test_folds_train_on_at_most_train_cutoffs_and_at_least_min_train() -> None:
    """Weekly cutoffs: each fold trains on the `train_cutoffs` latest usable ones, and a fold
    with fewer than `min_train` is left out."""
    cutoffs = cutoffs_every(7, 40)
    end = cutoffs[-1] + pd.Timedelta(days=30)
    folds = backtest.plan_folds(
        cutoffs, end, label_days=30, predict_days=30, folds=3, train_cutoffs=5, min_train=3
    )
    assert [len(f.train) for f in folds] == [5, 5, 5]
    assert backtest.plan_folds(
        cutoffs[:8], cutoffs[7] + pd.Timedelta(days=30), label_days=30, predict_days=30,
        folds=3, train_cutoffs=5, min_train=4,
    ) == [], "4 usable training cutoffs need 5 + 30 days before the evaluation cutoff"  # fmt: skip


class Spy(CalibratedClassifier):
    """A classifier remembering the rows it trained and calibrated on (their cutoffs)."""

    seen: ClassVar[list[tuple[set, set]]] = []

    def fit(self, X, y, *, offset=None, X_calib=None, y_calib=None, offset_calib=None):  # type: ignore[no-untyped-def]
        Spy.seen.append((len(X), len(X_calib)))
        return super().fit(
            X, y, offset=offset, X_calib=X_calib, y_calib=y_calib, offset_calib=offset_calib
        )


def test_backtest_trains_only_on_rows_whose_labels_end_before_evaluation(
    programme, rfm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given monthly cutoffs, every fold fits on the rows of its training cutoffs and
    calibrates on its calibration cutoff, all with label windows ending by the evaluation
    cutoff; the model beats the naive baseline and the metrics come out per fold."""
    data, folds = monthly("churn", programme, rfm, folds=2)
    monkeypatch.setattr(backtest, "new_model", lambda kind, params, calibration: Spy(params))
    Spy.seen.clear()
    result = backtest.run(TASKS["churn"], data, folds, FAST)
    assert len(Spy.seen) == 4, "per fold: the model, then the calibrated BTYD forecast"
    assert Spy.seen[0::2] == Spy.seen[1::2], "both fit on the same rows"
    for fold, (train_rows, calib_rows) in zip(folds, Spy.seen[0::2], strict=True):
        assert train_rows == len(data.rows(fold.train, H)), "the training cutoffs' rows"
        assert calib_rows == len(data.rows([fold.calibrate], H))
        for t in (*fold.train, fold.calibrate):
            assert t + pd.Timedelta(days=H) <= fold.evaluate, "label window leak"
    assert result.folds["evaluate"].tolist() == [f.evaluate for f in folds]
    assert result.mean["roc_auc"] > 0.7, "recency predicts churn in the synthetic programme"
    assert set(result.predictions["cutoff"]) == {f.evaluate for f in folds}
    assert list(result.families.columns) == ["evaluate", "lightgbm", "btyd", "baseline"]


def test_final_split_calibrates_on_the_latest_labelable_cutoff() -> None:
    """Production: the latest cutoff whose window fits calibrates, the ones before train."""
    cutoffs = cutoffs_every(28, 6)
    end = cutoffs[3] + pd.Timedelta(days=H)
    split = backtest.final_split(cutoffs[::-1], end, H, train_cutoffs=2)
    assert split.calibrate == cutoffs[3] and split.train == tuple(cutoffs[1:3])


def test_clv_backtest_totals_are_the_sums_of_spend_mean(programme, rfm) -> None:
    """Given a clv backtest, each fold's forecast total is the sum of the members' spend_mean
    (the column batch scoring writes) and its bias is that total against the actual one; the
    expected orders are scored too."""
    data, folds = monthly("clv", programme, rfm, folds=2, min_spend=0.01)
    result = backtest.run(TASKS["clv"], data, folds, FAST)
    model = backtest.fit(TASKS["clv"], data, folds[-1], FAST)
    rows = data.rows([folds[-1].evaluate], H)
    spend_mean = model.predict_frame(rows[data.feature_names], data.offsets(rows, H))["spend_mean"]
    latest = result.predictions.loc[result.predictions["cutoff"] == folds[-1].evaluate]
    assert latest["prediction"].sum() == pytest.approx(spend_mean.sum(), rel=1e-9)
    fold = result.folds.iloc[-1]
    actual = latest["actual"].sum()
    assert fold["bias_pct"] == pytest.approx((spend_mean.sum() - actual) / actual * 100)
    assert {"orders_mae", "orders_pearson", "coverage_p10_p90"} <= set(result.folds.columns)


def test_the_btyd_family_of_churn_is_the_calibrated_forecast_train_would_register(
    programme, rfm
) -> None:
    """Given a churn backtest, the `btyd` column of its predictions is the BTYD forecast
    through the calibrator fitted on the fold's calibration cutoff (the model `train`
    registers for family btyd), not the raw P(no purchase), and its family metric is the ROC
    AUC of that column."""
    data, folds = monthly("churn", programme, rfm, folds=1)
    result = backtest.run(TASKS["churn"], data, folds, FAST)
    registered = backtest.fit(TASKS["churn"], data, folds[0], prior_only(FAST))
    rows = data.rows([folds[0].evaluate], H)
    expected = registered.predict_proba(rows[data.feature_names], data.offsets(rows, H))[:, 1]
    got = result.predictions["btyd"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    raw = data.forecasts(rows, H)["btyd"]["p_no_purchase"].to_numpy()
    assert not np.allclose(got, raw), "the column is calibrated, not the raw forecast"
    assert result.families["btyd"].iloc[0] == pytest.approx(
        metrics.roc_auc(result.predictions["actual"].to_numpy(), got)
    )
