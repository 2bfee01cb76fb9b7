"""The uplift job: held-out split, Qini, policy table, MLflow logging and registry aliases.

The lake and Feast read (`contact_rows`) is replaced by synthetic contacts; MLflow writes to a
temporary store (the `settings` fixture).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from decisions.catalogue import Catalogue, parse_catalogue
from memberscore.settings import Settings
from tests.decisions.conftest import CATALOGUE, Campaign, simulate
from training import tracking
from training.jobs import uplift as job

START = pd.Timestamp("2025-01-01", tz="UTC")


@pytest.fixture
def campaign() -> Callable[..., Campaign]:
    """The randomized campaign simulator of the decisions tests."""
    return simulate


@pytest.fixture
def catalogue() -> Catalogue:
    return parse_catalogue(CATALOGUE)


def rows(campaign: Callable[..., Any], n: int = 6000) -> pd.DataFrame:
    """Synthetic contacts shaped like `job.uplift_rows` output, spread over 120 days."""
    log = campaign(n, seed=5).log.reset_index()
    sent_at = START + pd.to_timedelta(np.arange(n) * 120 // n, unit="D")
    contacts = pd.DataFrame(
        {
            "contact_id": [f"c{i}" for i in range(n)],
            "member_id": log["member_id"],
            "sent_at": sent_at,
            "action_id": log["action_id"],
            "channel": "email",
            "group": log["group"],
            "responded_at": sent_at.where(log["responded"]),
            "response_value": log["response_value"],
        }
    )
    features = log[["segment", "x"]].assign(contact_id=contacts["contact_id"])
    return job.uplift_rows(contacts, features)


def test_rows_split_and_features(campaign: Callable[..., Any]) -> None:
    frame = rows(campaign)

    earlier, later = job.split(frame, holdout_days=30)

    assert job.feature_names(frame) == ["segment", "x"]
    assert later["sent_at"].min() > earlier["sent_at"].max()
    assert frame["response_value"].notna().all(), "no response counts as 0"


@pytest.mark.slow
def test_train_logs_registers_and_evaluates(
    campaign: Callable[..., Any],
    catalogue: Catalogue,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = rows(campaign)
    monkeypatch.setattr(job, "contact_rows", lambda _: frame)
    tuned = settings.model_copy(
        update={"decisions": settings.decisions.model_copy(update={"uplift": _rules(settings)})}
    )

    run = job.train(tuned, catalogue)
    promoted = tracking.promote(tuned, job.MODEL_NAME)
    table = job.evaluate(tuned, "champion", catalogue)

    assert run.version == promoted.version == "1", "the first challenger becomes champion"
    assert run.metrics[job.PRIMARY_METRIC] > 0, "the model ranks helped members first"
    assert set(run.counts["source"]) == {"learned"}
    dr = table[table["estimator"] == "dr"].set_index("policy")["lift"]
    assert dr["learned"] > dr.drop("learned").max(), dr.to_dict()


def _rules(settings: Settings) -> Any:
    return settings.decisions.uplift.model_copy(update={"holdout_days": 30, "min_treated": 200})
