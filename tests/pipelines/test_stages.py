"""`memberscore stages`: two snapshots in, migration matrix, heatmap and CSV out."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.store import snapshot_path
from memberscore.errors import ContractError, DataNotFound
from memberscore.settings import Settings
from pipelines.stages import stage_migration

FIRST, SECOND = date(2025, 6, 2), date(2025, 9, 1)


def snapshot(recency: list[float]) -> pd.DataFrame:
    n = len(recency)
    return pd.DataFrame(
        {
            "member_id": [f"m{i}" for i in range(n)],
            "has_ordered": True,
            "days_since_registration": 900,
            "days_since_first_order": 800.0,
            "recency_days": recency,
            "frequency": 9,
            "days_overdue": 0.0,
            "last_gap_days": 30.0,
        }
    )


def write(settings: Settings, day: date, frame: pd.DataFrame) -> None:
    path = snapshot_path(settings, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)


def test_migration_from_two_snapshots(settings: Settings) -> None:
    write(settings, FIRST, snapshot([10.0, 10.0, 200.0]))
    write(settings, SECOND, snapshot([100.0 + 91, 20.0, 400.0]))

    matrix, png, basis = stage_migration(settings, FIRST, SECOND)

    assert matrix.loc["mature", "dormant"] == 1
    assert matrix.loc["mature", "mature"] == 1
    assert matrix.loc["dormant", "churned"] == 1
    assert png.is_file() and png.with_suffix(".csv").is_file()
    assert basis.startswith("no churn champion"), basis
    assert np.array_equal(pd.read_csv(png.with_suffix(".csv"), index_col=0).to_numpy(), matrix)


def test_missing_snapshot_and_columns_are_domain_errors(settings: Settings) -> None:
    with pytest.raises(DataNotFound, match="memberscore features build --as-of 2025-06-02"):
        stage_migration(settings, FIRST, SECOND)
    write(settings, FIRST, snapshot([1.0]).drop(columns="last_gap_days"))
    write(settings, SECOND, snapshot([1.0]))
    with pytest.raises(ContractError, match="last_gap_days"):
        stage_migration(settings, FIRST, SECOND)
