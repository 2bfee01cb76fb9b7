"""The training job's choice of cutoffs: labelable, and aligned to built feature snapshots."""

from __future__ import annotations

import pandas as pd
import pytest

from memberscore.settings import Settings
from training.core.labels import UnlabelableCutoff, as_cutoff
from training.jobs import train as job

ORDERS = pd.DataFrame(
    {
        "member_id": ["a", "a"],
        "amount": [1.0, 1.0],
        "is_return": [False, False],
        "ordered_at": pd.to_datetime(["2024-01-02", "2024-12-30"], utc=True),
    }
)


def test_rolling_cutoffs_land_on_snapshot_days(settings: Settings) -> None:
    """Given weekly snapshots, every cutoff is a snapshot day and its window fits the data."""
    settings.snapshots_dir.mkdir(parents=True)
    for day in pd.date_range("2024-01-01", "2024-12-30", freq="7D"):
        (settings.snapshots_dir / f"snapshot-{day:%Y-%m-%d}.parquet").touch()
    cutoffs = job.choose_cutoffs(settings, ORDERS, 90, None, 28)
    snapshots = set(job.snapshot_cutoffs(settings))
    assert set(cutoffs) <= snapshots, "features as of the cutoff itself"
    assert cutoffs[-1] + pd.Timedelta(days=90) <= as_cutoff("2024-12-31")
    assert cutoffs[-1] + pd.Timedelta(days=97) > as_cutoff("2024-12-31"), "the latest that fits"


def test_explicit_cutoffs_must_be_labelable(settings: Settings) -> None:
    """A given cutoff whose window passes the data end is refused."""
    with pytest.raises(UnlabelableCutoff):
        job.choose_cutoffs(settings, ORDERS, 90, [as_cutoff("2024-11-01").date()], 28)
