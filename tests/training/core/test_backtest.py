"""Backtests: temporal splits only; no training label window reaches the evaluation cutoff."""

from __future__ import annotations

from typing import ClassVar

import pandas as pd
import pytest

from training.core import backtest, dataset
from training.core.labels import as_cutoff, observed_until
from training.core.tasks import TASKS
from training.models.boosting import BoostParams
from training.models.classifier import CalibratedClassifier

H = 90
FAST = BoostParams(seed=1, num_boost_round=40, min_data_in_leaf=20)


def cutoffs_every(days: int, count: int) -> list[pd.Timestamp]:
    """`count` cutoffs `days` apart from 2023-03-01."""
    return [as_cutoff("2023-03-01") + pd.Timedelta(days=days * i) for i in range(count)]


def test_fold_plan_never_uses_a_window_that_reaches_the_evaluation_cutoff() -> None:
    """For every fold: t + H <= evaluate for each training and calibration cutoff, and the
    calibration cutoff is later than every training cutoff."""
    cutoffs = cutoffs_every(28, 12)
    folds = backtest.plan_folds(cutoffs, H, folds=3)
    assert len(folds) == 3
    for fold in folds:
        assert fold.evaluate is not None
        for t in (*fold.train, fold.calibrate):
            assert t + pd.Timedelta(days=H) <= fold.evaluate, f"{t} leaks into {fold.evaluate}"
        assert max(fold.train) < fold.calibrate
    assert folds[-1].evaluate == cutoffs[-1]
    with pytest.raises(backtest.NotEnoughHistory, match="no evaluation cutoff"):
        backtest.plan_folds(cutoffs_every(28, 3), H)


class Spy(CalibratedClassifier):
    """A classifier remembering the rows it trained and calibrated on (by frame index)."""

    seen: ClassVar[list[tuple[pd.Index, pd.Index]]] = []

    def fit(self, X, y, *, X_calib=None, y_calib=None):  # type: ignore[no-untyped-def]
        Spy.seen.append((X.index, X_calib.index))
        return super().fit(X, y, X_calib=X_calib, y_calib=y_calib)


def test_backtest_trains_only_on_rows_whose_labels_end_before_evaluation(
    programme, rfm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given monthly cutoffs, every row a fold fits or calibrates on has cutoff + H <= the
    fold's evaluation cutoff, and the metrics come out per fold."""
    members, orders = programme
    cutoffs = cutoffs_every(28, 10)
    frame = dataset.join_features(
        dataset.entity_frame(
            TASKS["churn"], members, orders, cutoffs, H, observed_until(orders), 0
        ),
        rfm(members, orders, cutoffs),
    )
    monkeypatch.setattr(backtest, "new_model", lambda kind, params: Spy(params))
    Spy.seen.clear()
    folds = backtest.plan_folds(cutoffs, H, folds=2)
    result = backtest.run(TASKS["churn"], frame, folds, FAST)
    assert len(Spy.seen) == 2
    for fold, (train_rows, calib_rows) in zip(folds, Spy.seen, strict=True):
        used = frame.loc[train_rows.union(calib_rows), "cutoff"]
        assert (used + pd.Timedelta(days=H) <= fold.evaluate).all(), "label window leak"
        assert (frame.loc[calib_rows, "cutoff"] == fold.calibrate).all()
    assert result.folds["evaluate"].tolist() == [f.evaluate for f in folds]
    assert result.mean["roc_auc"] > 0.7, "recency predicts churn in the synthetic programme"
    assert set(result.predictions["cutoff"]) == {f.evaluate for f in folds}


def test_final_split_calibrates_on_the_latest_cutoff() -> None:
    """Production: all earlier cutoffs train, the latest calibrates."""
    cutoffs = cutoffs_every(28, 4)
    split = backtest.final_split(cutoffs[::-1])
    assert split.calibrate == cutoffs[-1] and split.train == tuple(cutoffs[:-1])
