"""The uplift job: held-out split, Qini, policy table, MLflow logging and registry aliases.

The lake and Feast read (`contact_rows`) is replaced by synthetic contacts; MLflow writes to a
temporary store (the `settings` fixture).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from decisions.catalogue import Catalogue, parse_catalogue
from memberscore.settings import Settings
from tests.decisions.conftest import CATALOGUE, Campaign, simulate
from tests.training.test_no_member_data import (
    ids_in_files,
    logged_example,
    matching_rows,
    stored_files,
)
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


def test_the_logged_uplift_model_carries_no_member_data(
    campaign: Callable[..., Any],
    catalogue: Catalogue,
    mlflow_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Issue 17 (MLflow input examples). Given an uplift model trained on 6000 contacts, when
    its run and registered version are downloaded, then no file (tables, state JSON, MLmodel,
    input examples) nor the tracking database holds a member id; the input example is no
    member's row and has no `member_id`, while the pyfunc still takes `member_id` (optional)
    and keys its answer by the caller's ids."""
    import mlflow

    frame = rows(campaign)
    monkeypatch.setattr(job, "contact_rows", lambda _: frame)
    tuned = mlflow_settings.model_copy(
        update={"decisions": mlflow_settings.decisions.model_copy(update={"uplift": _rules(
            mlflow_settings)})}
    )  # fmt: skip
    run = job.train(tuned, catalogue)
    uri = f"models:/{job.MODEL_NAME}/{run.version}"

    folder = stored_files(tuned, run.run_id, uri, tmp_path / "stored")

    assert ids_in_files(folder, frame["member_id"].astype(str)) == {}, "files with member ids"
    example = logged_example(folder / "model")
    assert example is not None and list(example.columns) == ["segment", "x"], "features only"
    assert matching_rows(example, frame) == 0, "the input example copies a member's row"
    pyfunc = mlflow.pyfunc.load_model(uri)
    assert pyfunc.metadata.get_input_schema().input_names() == ["member_id", "segment", "x"]
    asked = frame[["member_id", "segment", "x"]].head(3)
    answer = pyfunc.predict(asked)
    assert set(answer["member_id"]) == set(asked["member_id"]), "answers keyed by the ids asked"


def _rules(settings: Settings) -> Any:
    return settings.decisions.uplift.model_copy(update={"holdout_days": 30, "min_treated": 200})
