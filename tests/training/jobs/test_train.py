"""The training job's plan: cutoffs aligned to built feature snapshots, horizons and folds."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from memberscore.settings import Settings
from training.core.dataset import NotEnoughHistory
from training.core.labels import as_cutoff
from training.core.tasks import TASKS
from training.jobs import train as job

ORDERS = pd.DataFrame(
    {
        "member_id": ["a", "a"],
        "amount": [1.0, 1.0],
        "is_return": [False, False],
        "ordered_at": pd.to_datetime(["2024-01-02", "2024-12-30"], utc=True),
    }
)


def weekly_snapshots(settings: Settings) -> None:
    """Empty snapshot files every 7 days of 2024 (only their names are read)."""
    settings.snapshots_dir.mkdir(parents=True)
    for day in pd.date_range("2024-01-01", "2024-12-30", freq="7D"):
        (settings.snapshots_dir / f"snapshot-{day:%Y-%m-%d}.parquet").touch()


def test_cutoffs_are_the_snapshot_days_whose_windows_fit(settings: Settings) -> None:
    """Given weekly snapshots, every cutoff is a snapshot day, the final model calibrates on
    the latest whose window fits the data and trains on the 12 before it."""
    weekly_snapshots(settings)
    plan = job.make_plan(settings, TASKS["activation"], ORDERS, horizon_days=90)
    assert set(plan.cutoffs) <= set(job.snapshot_cutoffs(settings)), "features as of the cutoff"
    split = plan.final_split()
    end = as_cutoff("2024-12-31")
    assert split.calibrate + pd.Timedelta(days=90) <= end < split.calibrate + pd.Timedelta(days=97)
    assert len(split.train) == job.MAX_TRAIN_CUTOFFS and max(split.train) < split.calibrate
    assert plan.label_days == 90 and not plan.horizon.extended and len(plan.horizon.folds) == 3


def test_every_thins_the_snapshots_from_the_latest(settings: Settings) -> None:
    """--every 28 keeps every fourth weekly snapshot, counted back from the latest."""
    weekly_snapshots(settings)
    kept = job.thin(job.snapshot_cutoffs(settings), 28)
    assert kept[-1] == as_cutoff("2024-12-30")
    assert {(b - a).days for a, b in itertools.pairwise(kept)} == {28}


def test_a_horizon_longer_than_the_history_is_carried_with_btyd(settings: Settings) -> None:
    """A year of weekly snapshots cannot label 300 days: the plan labels a shorter whole-week
    horizon and says so."""
    weekly_snapshots(settings)
    plan = job.make_plan(settings, TASKS["activation"], ORDERS, horizon_days=300)
    assert plan.horizon.extended and plan.label_days % 7 == 0 and plan.label_days < 300
    assert "carried to 300 days with the BTYD forecast" in plan.horizon.describe()


def test_cutoffs_that_leave_no_fold_are_refused(settings: Settings) -> None:
    """Given cutoffs with no room for a training, calibration and evaluation window, the
    plan is refused with what to do."""
    with pytest.raises(NotEnoughHistory, match="build feature snapshots further back"):
        job.make_plan(
            settings, TASKS["activation"], ORDERS, horizon_days=90,
            cutoffs=[as_cutoff("2024-11-01").date()],
        )  # fmt: skip


def test_churn_needs_repeat_buyers_before_a_cutoff(settings: Settings) -> None:
    """Given one member with two orders, no cutoff has the repeat buyers a BTYD fit needs: the
    churn plan is refused saying so."""
    weekly_snapshots(settings)
    with pytest.raises(NotEnoughHistory, match="fewer than 100 members had bought twice"):
        job.make_plan(settings, TASKS["churn"], ORDERS, horizon_days=90)


def test_the_plan_keeps_only_the_cutoffs_it_uses(settings: Settings) -> None:
    """Given a year of weekly snapshots, the plan's cutoffs are exactly those of the final
    split and the folds (no feature rows are joined for the others)."""
    weekly_snapshots(settings)
    plan = job.make_plan(settings, TASKS["activation"], ORDERS, horizon_days=30)
    split = plan.final_split()
    used = {*split.train, split.calibrate}
    for fold in plan.horizon.folds:
        used |= {*fold.train, fold.calibrate, fold.evaluate}
    assert set(plan.cutoffs) == used and len(plan.cutoffs) < len(job.snapshot_cutoffs(settings))
