"""Data gates before training and the quality grade after the backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memberscore.settings import Settings
from training.core.gates import Gates, Grade, NotEnoughData, check_data, class_sizes, grade
from training.core.tasks import TASKS

CHURN, CLV, ACTIVATION = TASKS["churn"], TASKS["clv"], TASKS["activation"]
SMALL = Gates(min_history_days=90, min_population=100, min_class_rows=10)


@pytest.fixture
def gates(settings: Settings) -> Gates:
    """The minimums of the default settings."""
    return Gates(settings.min_history_days, settings.min_population, settings.min_class_rows)


def test_the_default_minimums_are_the_documented_ones(gates: Gates) -> None:
    assert gates == Gates(min_history_days=90, min_population=200, min_class_rows=50)


def test_a_43_row_training_set_is_refused_with_what_is_missing(gates: Gates) -> None:
    """Given 43 churn training rows (9 churned, 34 stayed) and default minimums, when checked,
    then NotEnoughData names both class counts against their minimum and the settings to
    lower."""
    labels = np.array([1] * 9 + [0] * 34)

    with pytest.raises(NotEnoughData) as caught:
        check_data(CHURN, gates, history_days=400, population=5_000, training_labels=labels)

    missing, advice = str(caught.value).split(". ", 1)
    assert missing == (
        "not enough data to train churn: 9 training rows churned (at least 50); "
        "34 training rows stayed (at least 50)"
    ), "both class counts, and only what is missing"
    assert "lower the minimums in settings (min_history_days, min_population, min_class_rows)" in (
        advice
    )


def test_every_missing_minimum_is_listed_at_once(gates: Gates) -> None:
    """Short history, a small population and a small class: all three in one message; the
    class with enough rows is not mentioned."""
    labels = np.array([1] * 60 + [0] * 10)
    with pytest.raises(NotEnoughData) as caught:
        check_data(CHURN, gates, history_days=45, population=150, training_labels=labels)
    missing = str(caught.value).split(". ", 1)[0]
    assert missing == (
        "not enough data to train churn: 45 days of order history (at least 90); "
        "150 members in the churn population at the latest cutoff (at least 200); "
        "10 training rows stayed (at least 50)"
    )
    with pytest.raises(NotEnoughData, match=r"^not enough data to train churn: 45 days[^;]*\. "):
        check_data(
            CHURN, gates, history_days=45, population=1_234, training_labels=[1] * 60 + [0] * 50
        )


def test_enough_data_passes(gates: Gates) -> None:
    """At the minimums exactly, nothing is refused."""
    labels = np.array([1] * 50 + [0] * 50)
    assert check_data(CHURN, gates, history_days=90, population=200, training_labels=labels) is None


def test_clv_classes_are_buyers_and_non_buyers_by_spend() -> None:
    """Spend labels: > 0 bought; 0 or a net refund did not."""
    spend = np.array([0.0, 12.5, -3.0, 40.0, 0.0])
    assert class_sizes(CLV, spend) == {"bought": 2, "did not buy": 3}
    assert class_sizes(ACTIVATION, np.array([1, 0, 0])) == {"activated": 1, "not activated": 2}
    with pytest.raises(NotEnoughData, match="2 training rows bought"):
        check_data(CLV, SMALL, history_days=400, population=500, training_labels=spend)


# --- grade ----------------------------------------------------------------------------------

GOOD_CHURN = pd.Series({"ece": 0.01})
GOOD_CLV = pd.Series({"coverage_p10_p90": 0.82})


def families(model: float, btyd: float | None = 0.70, baseline: float | None = 0.60) -> pd.Series:
    values = {"lightgbm": model, "btyd": btyd, "baseline": baseline}
    return pd.Series({k: v for k, v in values.items() if v is not None})


def test_a_model_that_does_not_beat_the_baseline_is_d_and_not_promotable() -> None:
    """Even with every other condition met, a tie with the baseline is D."""
    got = grade(CHURN, families(0.60), GOOD_CHURN, folds=3, smallest_class=10_000, gates=SMALL)
    assert got.letter == "D"
    assert not got.promotable
    assert got.notes == ("roc_auc 0.6000 does not beat the baseline 0.6000",)


def test_a_model_that_meets_every_condition_is_a() -> None:
    got = grade(CHURN, families(0.75), GOOD_CHURN, folds=3, smallest_class=100, gates=SMALL)
    assert got == Grade("A", ())
    assert got.promotable
    assert got.describe() == "quality grade A"


def test_two_of_the_four_other_conditions_give_b_with_notes() -> None:
    """Beats baseline and BTYD with 3 folds, but ECE 0.05 and 99 rows (< 10 × 10): B."""
    got = grade(
        CHURN, families(0.75), pd.Series({"ece": 0.05}), folds=3, smallest_class=99, gates=SMALL
    )
    assert got.letter == "B"
    assert got.notes == ("ECE 0.050 above 0.03", "99 rows in the smaller class")
    assert got.describe() == "quality grade B: ECE 0.050 above 0.03; 99 rows in the smaller class"


def test_one_of_the_four_other_conditions_gives_c() -> None:
    """Beats the baseline, calibrated only: not the BTYD forecast, 2 folds, few rows."""
    got = grade(CHURN, families(0.65), GOOD_CHURN, folds=2, smallest_class=5, gates=SMALL)
    assert got.letter == "C"
    assert got.promotable, "C still beats the baseline"
    assert got.notes == (
        "does not beat the BTYD forecast (0.7000)",
        "2 backtest fold(s), 3 wanted",
        "5 rows in the smaller class",
    )


def test_without_a_baseline_or_btyd_the_model_must_beat_no_skill() -> None:
    """Activation has neither family: ROC AUC 0.5 is D, above it the BTYD check passes."""
    alone = families(0.5, btyd=None, baseline=None)
    assert (
        grade(ACTIVATION, alone, GOOD_CHURN, folds=3, smallest_class=100, gates=SMALL).letter == "D"
    )
    better = families(0.51, btyd=None, baseline=None)
    assert (
        grade(ACTIVATION, better, GOOD_CHURN, folds=3, smallest_class=100, gates=SMALL).letter
        == "A"
    )


def test_spend_calibration_is_p10_p90_coverage_near_080() -> None:
    """Normalized Gini against 0 without a baseline; coverage 0.86 is off by more than 0.05."""
    fam = families(0.30, btyd=0.20, baseline=0.10)
    assert grade(CLV, fam, GOOD_CLV, folds=3, smallest_class=100, gates=SMALL).letter == "A"
    off = grade(
        CLV, fam, pd.Series({"coverage_p10_p90": 0.86}), folds=3, smallest_class=100, gates=SMALL
    )
    assert off.letter == "B"
    assert off.notes == ("p10–p90 coverage 0.86, not 0.8 ± 0.05",)
    assert (
        grade(
            CLV, families(0.0, None, None), GOOD_CLV, folds=3, smallest_class=100, gates=SMALL
        ).letter
        == "D"
    )
