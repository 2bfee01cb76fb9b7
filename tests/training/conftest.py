"""Tiny synthetic programmes built in code: members, orders and a few RFM features."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memberscore.settings import Settings

START = pd.Timestamp("2023-01-01", tz="UTC")
DAYS = 420


def simulate(members: int = 600, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Members registered over 60 days who buy at a personal rate until a personal end day."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"m{i:04d}" for i in range(members)])
    registered = START + pd.to_timedelta(rng.integers(0, 60, members), unit="D")
    rate = rng.gamma(1.5, 1 / 45, members)  # orders per day
    life = rng.exponential(250, members)  # days from registration to lapse
    basket = rng.lognormal(3.5, 0.4, members)
    rows = []
    for i in range(members):
        t = rng.exponential(1 / rate[i])
        while t < min(life[i], DAYS):
            rows.append((ids[i], registered[i] + pd.Timedelta(days=t), basket[i]))
            t += rng.exponential(1 / rate[i])
    orders = pd.DataFrame(rows, columns=["member_id", "ordered_at", "amount"])
    orders = orders.loc[orders["ordered_at"] < START + pd.Timedelta(days=DAYS)]
    orders["is_return"] = False
    orders["amount"] = orders["amount"] * rng.lognormal(0, 0.2, len(orders))
    regions = rng.choice(["north", "south", "east"], members)
    members_frame = pd.DataFrame({"member_id": ids, "registered_at": registered, "region": regions})
    return members_frame, orders.reset_index(drop=True)


def rfm_features(
    members: pd.DataFrame, orders: pd.DataFrame, cutoffs: Sequence[pd.Timestamp]
) -> pd.DataFrame:
    """Test-only features keyed by (member_id, event_timestamp): recency, frequency, monetary,
    tenure, region and the rest of the BTYD inputs (days since the first order, average order
    value, first order amount), from data strictly before each cutoff."""
    parts = []
    for cutoff in cutoffs:
        past = orders.loc[orders["ordered_at"] < cutoff].sort_values("ordered_at")
        agg = past.groupby("member_id").agg(
            first=("ordered_at", "min"),
            last=("ordered_at", "max"),
            frequency=("amount", "size"),
            monetary=("amount", "sum"),
            first_amount=("amount", "first"),
        )
        frame = members.loc[members["registered_at"] < cutoff].set_index("member_id")
        frame = frame.join(agg)
        parts.append(
            pd.DataFrame(
                {
                    "member_id": frame.index,
                    "event_timestamp": cutoff,
                    "recency_days": (cutoff - frame["last"]).dt.days.to_numpy(),
                    "frequency": frame["frequency"].fillna(0).to_numpy(),
                    "monetary": frame["monetary"].fillna(0).to_numpy(),
                    "tenure_days": (cutoff - frame["registered_at"]).dt.days.to_numpy(),
                    "days_since_first_order": (cutoff - frame["first"]).dt.days.to_numpy(),
                    "avg_order_value": (frame["monetary"] / frame["frequency"]).to_numpy(),
                    "first_order_amount": frame["first_amount"].to_numpy(),
                    "region": frame["region"].astype("string").to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="session")
def programme() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(members, orders) of a 600-member synthetic programme over 420 days."""
    return simulate()


@pytest.fixture(scope="session")
def rfm() -> object:
    """The test-only feature function `rfm_features`."""
    return rfm_features


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow sqlite database, created once (creation takes ~10 s)."""
    import mlflow

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_settings(settings: Settings, mlflow_template: Path) -> Settings:
    """The per-test `settings`, with its MLflow sqlite store copied from the migrated template."""
    target = Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///"))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mlflow_template, target)
    return settings
