"""Horizon plans and the folds under them: the requested horizon when the history labels it,
else the longest whole-week horizon that does; no label window reaches an evaluation cutoff."""

from __future__ import annotations

from itertools import pairwise

import pandas as pd
import pytest

from training.core import backtest, horizons
from training.core.backtest import Fold, final_split, labelable, plan_folds
from training.core.dataset import NotEnoughHistory
from training.core.horizons import candidates, fold_days, plan_horizon

FOLDS, TRAIN_CUTOFFS, MIN_TRAIN = 3, 12, 3  # as `training.jobs.train` plans them
DAY = pd.Timedelta(days=1)


def weekly(first: pd.Timestamp, count: int) -> list[pd.Timestamp]:
    """`count` cutoffs a week apart from `first`."""
    return [first + 7 * i * DAY for i in range(count)]


def plan(cutoffs: list[pd.Timestamp], end: pd.Timestamp, horizon: int) -> horizons.HorizonPlan:
    return plan_horizon(
        cutoffs, end, horizon, folds=FOLDS, train_cutoffs=TRAIN_CUTOFFS, min_train=MIN_TRAIN
    )


def assert_no_leak(fold: Fold, end: pd.Timestamp) -> None:
    """Every training and calibration label window ends by the evaluation cutoff, whose own
    window ends by the end of the data; calibration comes after training."""
    assert fold.evaluate is not None
    for t in (*fold.train, fold.calibrate):
        assert t + fold.label_days * DAY <= fold.evaluate, f"{t:%F} leaks into {fold.evaluate:%F}"
    assert fold.evaluate + fold.predict_days * DAY <= end, "evaluation window not observed"
    assert max(fold.train) < fold.calibrate
    assert list(fold.train) == sorted(fold.train)


# --- 9 months of weekly cutoffs, 100-day horizon --------------------------------------------

NINE_MONTHS_START = pd.Timestamp("2023-01-01", tz="UTC")
NINE_MONTHS_END = NINE_MONTHS_START + 273 * DAY  # exclusive end of the data
NINE_MONTHS = weekly(NINE_MONTHS_START + 7 * DAY, 38)  # every week before the end


def test_nine_months_label_the_100_day_horizon_itself_in_three_folds() -> None:
    """Given 38 weekly cutoffs over 9 months of data and H = 100 days, when the horizon is
    planned, then it labels 100 days itself in 3 folds (train and predict over 100 days)
    on the three latest evaluable cutoffs, none leaking."""
    got = plan(NINE_MONTHS, NINE_MONTHS_END, 100)

    assert (got.horizon_days, got.label_days, got.extended) == (100, 100, False)
    assert len(got.folds) == FOLDS
    assert got.describe() == "labels over the 100-day horizon itself"
    evaluable = labelable(NINE_MONTHS, NINE_MONTHS_END, 100)
    assert [f.evaluate for f in got.folds] == evaluable[-FOLDS:], "latest evaluations, oldest first"
    for fold in got.folds:
        assert (fold.label_days, fold.predict_days) == (100, 100)
        assert_no_leak(fold, NINE_MONTHS_END)


def test_nine_month_folds_train_on_every_earlier_cutoff_and_report_how_many() -> None:
    """Given the same history, the final model trains on the 12 cutoffs before the latest
    labelable one, but a fold can only train on cutoffs whose labels end by its evaluation
    cutoff: 6, 7 and 8 of them here. Each fold takes all it can (up to 12), and
    len(fold.train) reports it (the backtest logs it as `train_cutoffs`)."""
    got = plan(NINE_MONTHS, NINE_MONTHS_END, 100)
    final = final_split(NINE_MONTHS, NINE_MONTHS_END, got.label_days, TRAIN_CUTOFFS)

    assert len(final.train) == TRAIN_CUTOFFS
    assert final.calibrate == labelable(NINE_MONTHS, NINE_MONTHS_END, 100)[-1]
    assert [len(f.train) for f in got.folds] == [6, 7, 8], "fewer than the final split's 12"
    for fold in got.folds:
        usable = labelable(NINE_MONTHS, fold.evaluate, fold.label_days)
        assert fold.calibrate == usable[-1], "the latest usable cutoff calibrates"
        assert len(fold.train) == min(TRAIN_CUTOFFS, len(usable) - 1), "all it can, up to 12"


def test_with_enough_history_folds_train_on_as_many_cutoffs_as_the_final_model() -> None:
    """Given two years of weekly cutoffs, every fold trains on 12 consecutive weekly cutoffs
    just before its calibration cutoff, like the final model."""
    cutoffs = weekly(NINE_MONTHS_START, 104)
    end = cutoffs[-1] + 7 * DAY
    got = plan(cutoffs, end, 100)
    final = final_split(cutoffs, end, got.label_days, TRAIN_CUTOFFS)

    assert [len(f.train) for f in got.folds] == [len(final.train)] * FOLDS == [12] * FOLDS
    for fold in got.folds:
        assert all(b - a == 7 * DAY for a, b in pairwise((*fold.train, fold.calibrate)))
        assert_no_leak(fold, end)


# --- CDNOW-like: 39 weeks of cutoffs, 273-day horizon -----------------------------------------

CDNOW_END = pd.Timestamp("1997-10-01", tz="UTC")  # calibration data 1997-01-01..1997-09-30
CDNOW = weekly(pd.Timestamp("1997-01-01", tz="UTC"), 39)  # 1997-01-01 .. 1997-09-24


def test_cdnow_horizon_is_carried_from_the_longest_whole_week_label_horizon() -> None:
    """Given 39 weekly cutoffs and H = 273 days (the 39-week holdout), the data cannot label
    273 days: the plan labels h < 273 days, a whole number of weeks, with 3 folds that train
    on labels over round(h·h/273) days and are scored over h, none leaking."""
    got = plan(CDNOW, CDNOW_END, 273)

    h = got.label_days
    assert got.extended and h < 273
    assert h % 7 == 0, f"label horizon {h} is not whole weeks"
    assert len(got.folds) == FOLDS
    for fold in got.folds:
        assert fold.label_days == round(h * h / 273) == fold_days(h, 273)
        assert fold.predict_days == h
        assert_no_leak(fold, CDNOW_END)
    assert f"trained on {h}-day labels and carried to 273 days" in got.describe()
    assert f"({round(h * h / 273)} → {h} days)" in got.describe()


def test_cdnow_label_horizon_is_the_longest_that_gives_three_folds() -> None:
    """One week more than the chosen h leaves fewer than 3 folds (so h is the longest), and
    every horizon between h and 273 does too."""
    got = plan(CDNOW, CDNOW_END, 273)
    assert got.label_days == 147, "pinned: 21 weeks for this history"
    for longer in [c for c in candidates(273) if c > got.label_days]:
        found = plan_folds(
            CDNOW,
            CDNOW_END,
            label_days=fold_days(longer, 273),
            predict_days=longer,
            folds=FOLDS,
            train_cutoffs=TRAIN_CUTOFFS,
            min_train=MIN_TRAIN,
        )
        assert len(found) < FOLDS, f"{longer} days would have given {len(found)} folds"


def test_when_no_horizon_gives_all_folds_the_one_with_most_folds_is_taken() -> None:
    """Given 6 weekly cutoffs, no horizon gives 3 folds of 3 training cutoffs; 14 and 7 days
    both give 2: the plan takes 14, the longest of those."""
    cutoffs = weekly(pd.Timestamp("2024-01-01", tz="UTC"), 6)
    end = cutoffs[-1] + 30 * DAY

    got = plan(cutoffs, end, 28)

    def count(h: int) -> int:
        return len(
            plan_folds(
                cutoffs,
                end,
                label_days=fold_days(h, 28),
                predict_days=h,
                folds=FOLDS,
                train_cutoffs=TRAIN_CUTOFFS,
                min_train=MIN_TRAIN,
            )
        )

    assert [count(h) for h in candidates(28)] == [0, 0, 2, 2], "the shape this test needs"
    assert len(got.folds) == 2
    assert got.label_days == 14


def test_no_horizon_with_a_fold_raises_a_readable_not_enough_history() -> None:
    """Given 4 weekly cutoffs (a fold needs 3 training, 1 calibration and 1 evaluation
    cutoff), NotEnoughHistory says the horizon, the cutoffs, the data end and what to do."""
    cutoffs = weekly(pd.Timestamp("2024-01-01", tz="UTC"), 4)
    end = pd.Timestamp("2024-02-01", tz="UTC")
    with pytest.raises(NotEnoughHistory) as caught:
        plan(cutoffs, end, 90)
    message = str(caught.value)
    for part in (
        "up to 90 days",
        "cutoffs 2024-01-01..2024-01-22",
        "data until 2024-02-01",
        "memberscore features build --from",
    ):
        assert part in message, f"{part!r} missing from: {message}"
    with pytest.raises(NotEnoughHistory, match="cutoffs none"):
        plan([], end, 90)


def test_candidates_are_the_horizon_then_whole_weeks_below_it_longest_first() -> None:
    assert candidates(30) == [30, 28, 21, 14, 7]
    assert candidates(28) == [28, 21, 14, 7], "a whole-week horizon is not repeated"
    assert candidates(5) == [5]
    assert candidates(273)[:3] == [273, 266, 259]


def test_fold_days_apply_the_ratio_once_more_and_at_least_a_week() -> None:
    assert fold_days(147, 273) == 79  # 147² / 273 = 79.15
    assert fold_days(91, 91) == 91, "not extended: the folds label the horizon itself"
    assert fold_days(14, 273) == 7, "never under a week"


# --- plan_folds, final_split, labelable -----------------------------------------------------


def test_plan_folds_keeps_training_windows_off_the_evaluation_cutoff() -> None:
    """Given cutoffs 2 weeks apart, labels over 30 days and predictions over 60, each fold's
    training and calibration windows end by its evaluation cutoff, at most 4 cutoffs train,
    and the evaluations are the latest whose 60 days are observed."""
    cutoffs = [pd.Timestamp("2024-01-01", tz="UTC") + 14 * i * DAY for i in range(20)]
    end = cutoffs[-1] + DAY

    folds = plan_folds(
        cutoffs, end, label_days=30, predict_days=60, folds=3, train_cutoffs=4, min_train=2
    )

    assert len(folds) == 3
    assert [f.evaluate for f in folds] == labelable(cutoffs, end, 60)[-3:]
    for fold in folds:
        assert (fold.label_days, fold.predict_days) == (30, 60)
        assert len(fold.train) == 4
        assert_no_leak(fold, end)
        assert fold.calibrate + 30 * DAY <= fold.evaluate < fold.calibrate + 44 * DAY, (
            "the latest cutoff whose window ends by the evaluation calibrates"
        )


def test_plan_folds_is_empty_when_no_fold_has_min_train_cutoffs() -> None:
    cutoffs = weekly(pd.Timestamp("2024-01-01", tz="UTC"), 6)
    end = cutoffs[-1] + 7 * DAY
    assert (
        plan_folds(
            cutoffs, end, label_days=28, predict_days=7, folds=3, train_cutoffs=12, min_train=3
        )
        == []
    )
    some = plan_folds(
        cutoffs, end, label_days=7, predict_days=7, folds=3, train_cutoffs=12, min_train=3
    )
    assert [len(f.train) for f in some] == [3, 4], "only evaluations with 3 earlier cutoffs"


def test_plan_folds_with_min_train_zero_skips_evaluations_without_a_calibration_cutoff() -> None:
    """Given 4 weekly cutoffs and min_train=0, the earliest cutoff has nothing before it to
    calibrate on: it is skipped ("empty when no fold fits"), not an IndexError."""
    cutoffs = weekly(pd.Timestamp("2024-01-01", tz="UTC"), 4)
    folds = plan_folds(
        cutoffs,
        cutoffs[-1] + 7 * DAY,
        label_days=7,
        predict_days=7,
        folds=5,
        train_cutoffs=12,
        min_train=0,
    )
    assert all(f.calibrate < f.evaluate for f in folds)
    assert len(folds) == 3


def test_final_split_calibrates_on_the_latest_labelable_cutoff() -> None:
    """The latest cutoff whose window is observed calibrates; at most `train_cutoffs` before
    it train; fewer than two labelable cutoffs is NotEnoughHistory."""
    cutoffs = weekly(pd.Timestamp("2024-01-01", tz="UTC"), 10)
    end = cutoffs[-1] + DAY

    split = final_split(cutoffs, end, 15, train_cutoffs=3)

    assert split.calibrate == cutoffs[-3], "cutoffs[-2] + 15 d is past the end"
    assert split.train == tuple(cutoffs[-6:-3])
    assert split.evaluate is None
    assert (split.label_days, split.predict_days) == (15, 15)
    with pytest.raises(NotEnoughHistory, match="found 1"):
        final_split(cutoffs, cutoffs[0] + 20 * DAY, 15, train_cutoffs=3)


def test_labelable_keeps_cutoffs_whose_window_ends_by_the_end_sorted() -> None:
    """[t, t + days) must end at or before the exclusive end; naive dates count as UTC."""
    end = pd.Timestamp("2024-03-01", tz="UTC")
    cutoffs = [end - 10 * DAY, end - 30 * DAY, end - 31 * DAY, end - 29 * DAY]
    assert labelable(cutoffs, end, 30) == [end - 31 * DAY, end - 30 * DAY]
    assert backtest.labelable(["2024-01-01"], end, 30) == [pd.Timestamp("2024-01-01", tz="UTC")]
