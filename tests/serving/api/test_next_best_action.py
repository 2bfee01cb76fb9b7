"""The score API decides next-best actions as batch scoring does: both go through
`decisions.engine.decide`, so the same members, features, contacts, consents and time give the
same actions, channels and expected values."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from decisions.catalogue import NO_ACTION, load_catalogue
from decisions.uplift import UpliftModel, catalogue_priors, prior_only_model
from memberscore.settings import Settings
from pipelines.batch.chunk import CONTACT_COLUMNS, Decider, score_chunk
from serving.api.deps import get_domain, get_model_holder
from serving.api.offload import PROCESS_MEMBERS
from serving.online.consent import register_beside
from serving.online.contact_log import ContactLog, Sent
from serving.scoring.adapters import LibraryDomain
from serving.scoring.bundle import ModelBundle, ModelHolder
from tests.serving.conftest import TIERS, FakeSource

CATALOGUE = load_catalogue()
LEARNED = ("double_points", "winback_coupon", "benefit_reminder")
UPLIFT_FEATURES = ["recency_days", "frequency", "monetary", "tier"]


def _uplift() -> UpliftModel:
    """A small uplift model learned for LEARNED (the other actions keep their priors) from
    randomized contacts whose response depends on recency and tier."""
    rng = np.random.default_rng(7)
    n = 1_800
    rows = pd.DataFrame(
        {
            "recency_days": rng.uniform(0, 300, n),
            "frequency": rng.integers(1, 9, n).astype(float),
            "monetary": rng.uniform(20, 400, n),
            "tier": pd.Series(rng.choice(TIERS, n), dtype="string"),
            "action_id": rng.choice(LEARNED, n),
            "group": rng.choice(["treatment", "control"], n),
        }
    )
    lift = np.where(rows["group"] == "treatment", 0.2 * (rows["recency_days"] > 100), 0.0)
    rows["responded"] = rng.uniform(0, 1, n) < 0.05 + lift
    rows["response_value"] = np.where(rows["responded"], rows["monetary"] / 4, 0.0)
    model = UpliftModel(UPLIFT_FEATURES, min_treated=100, min_control=100, n_estimators=10)
    return model.fit(rows, catalogue_priors(CATALOGUE))


class UpliftSource(FakeSource):
    """The fake registry with an uplift champion."""

    def __init__(self, uplift: UpliftModel) -> None:
        super().__init__()
        self.uplift = uplift

    def load(self) -> ModelBundle:
        return dataclasses.replace(super().load(), uplift=self.uplift)


@pytest.fixture(scope="module")
def uplift() -> UpliftModel:
    return _uplift()


@pytest.fixture
def engine(
    client: TestClient, serving_settings: Settings, uplift: UpliftModel
) -> Iterator[TestClient]:
    """The client deciding with the real engine over the shipped catalogue and a learned
    uplift model in the served bundle (its decision process stopped afterwards)."""
    domain = LibraryDomain(CATALOGUE, prior_only_model(CATALOGUE), serving_settings.decisions, {})
    holder = ModelHolder(UpliftSource(uplift))
    holder.refresh()
    client.app.dependency_overrides |= {  # type: ignore[attr-defined]
        get_domain: lambda: domain,
        get_model_holder: lambda: holder,
    }
    yield client
    client.app.state.decision_process.close()  # type: ignore[attr-defined]


def _history(contact_log: ContactLog, now: datetime) -> None:
    """Recent sends that block actions by cooldown or cap for some members; old ones that
    no longer count; a control contact (never counts)."""
    sends = [
        ("m1", "double_points", 3, "treatment"),
        ("m2", "winback_coupon", 1, "treatment"),
        ("m4", "benefit_reminder", 10, "treatment"),
        ("m5", "double_points", 400, "treatment"),
        ("m6", "winback_coupon", 2, "control"),
        ("m7", "onboarding_recs", 5, "treatment"),
        ("m9", "tier_upgrade_nudge", 2, "treatment"),
    ]
    for k, (member, action, days, group) in enumerate(sends):
        at = now - timedelta(days=days)
        contact_log.record_sent(Sent(f"c{k}", member, action, "email", group, at))


def _chosen(decision: dict[str, Any]) -> tuple[str, str | None, float, bool]:
    action = decision["action"]
    return (
        action["action_id"],
        action["channel"],
        round(action["expected_value"], 9),
        decision["control_group"],
    )


def test_api_decisions_equal_the_batch_scorers(
    engine: TestClient,
    snapshot: pd.DataFrame,
    contact_log: ContactLog,
    serving_settings: Settings,
    uplift: UpliftModel,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
) -> None:
    """Given members with contacts in the log and consent changes in the register, when the
    API decides for all of them in one call and batch scoring decides for the same snapshot
    rows at the same time, then every member gets the same action, channel, expected value
    and control-group flag; a one-member call answers what the many-member call did."""
    now = datetime.now(UTC)
    _history(contact_log, now)
    for member_id, change in {
        "m3": {"consent_marketing": False, "consent_personalization": False},
        "m8": {
            "consent_marketing": True,
            "consent_personalization": True,
            "channels_opted_out": ["email"],
        },
        "m10": {"consent_marketing": True, "consent_personalization": False},
    }.items():
        answer = engine.put(f"/v1/members/{member_id}/consent", json=change, headers=write_headers)
        assert answer.status_code == 200, answer.text
    ids = snapshot["member_id"].astype(str).tolist()

    served = engine.post("/v1/next-best-action", json={"member_ids": ids}, headers=read_headers)
    one = engine.get("/v1/members/m8/next-best-action", headers=read_headers)

    assert served.status_code == 200 and one.status_code == 200, served.text + one.text
    api = {d["member_id"]: _chosen(d) for d in served.json()["decisions"]}
    bundle = engine.app.dependency_overrides[get_model_holder]().current  # type: ignore[attr-defined]
    contacts = contact_log.history(ids)[CONTACT_COLUMNS]
    consents = register_beside(contact_log).entries(ids)
    rows = score_chunk(
        snapshot,
        pd.Timestamp(now),
        bundle,
        Decider(CATALOGUE, uplift, contacts, consents),
        serving_settings,
        reasons=0,
    )
    batch = {
        str(r.member_id): (
            r.action_id,
            None if pd.isna(r.channel) else r.channel,
            round(float(r.expected_value), 9),
            bool(r.control_group),
        )
        for r in rows.itertuples()
    }
    assert api == batch, {m: (api.get(m), batch[m]) for m in batch if api.get(m) != batch[m]}
    assert _chosen(one.json()) == api["m8"], "one member alone is decided as among many"
    sources = set(rows["action_source"])
    assert "learned" in sources and len({a for a, *_ in api.values()} - {NO_ACTION}) >= 2, (
        f"the comparison covers learned uplift and several actions: {sources}, {api}"
    )
    assert api["m3"][0] == NO_ACTION, "the register's opt-out holds in both"
    assert api["m8"][1] != "email", "the register's channel opt-out holds in both"


def test_many_members_are_decided_in_the_decision_process_as_in_threads(
    engine: TestClient,
    snapshot: pd.DataFrame,
    contact_log: ContactLog,
    read_headers: dict[str, str],
) -> None:
    """Given a call of more members than `PROCESS_MEMBERS`, when it is decided in the app's
    decision process, then the answer is byte for byte the one the worker's threads give."""
    _history(contact_log, datetime.now(UTC))
    ids = {"member_ids": [*snapshot["member_id"].astype(str).tolist(), "ghost"]}
    assert len(ids["member_ids"]) >= PROCESS_MEMBERS, "the call is one for the process"
    process = engine.app.state.decision_process  # type: ignore[attr-defined]

    in_process = engine.post("/v1/next-best-action", json=ids, headers=read_headers)
    again = engine.post("/v1/next-best-action", json=ids, headers=read_headers)
    engine.app.state.decision_process = None  # type: ignore[attr-defined]
    in_threads = engine.post("/v1/next-best-action", json=ids, headers=read_headers)
    engine.app.state.decision_process = process  # type: ignore[attr-defined]

    assert in_process.status_code == in_threads.status_code == 200, in_process.text
    assert process._child_has > 0, "the call was decided in the child process"
    assert in_process.content == in_threads.content == again.content
    assert in_process.json()["not_found"] == ["ghost"]
