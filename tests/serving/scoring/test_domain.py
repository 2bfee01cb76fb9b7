"""The real domain libraries behind the API: reason codes from `training.core.reasons`, stages from
`decisions.stages`, decisions from `decisions.engine` (priors-only uplift), cooldowns from the
contact log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from decisions import catalogue as catalogue_module
from serving.api.deps import get_domain
from serving.scoring.adapters import LibraryDomain


@pytest.fixture
def real_domain(client: TestClient) -> LibraryDomain:
    """The app with the library domain over the shipped catalogue."""
    from decisions.uplift import prior_only_model
    from memberscore.decision_settings import DecisionSettings

    catalogue = catalogue_module.load_catalogue()
    uplift = prior_only_model(catalogue)
    domain = LibraryDomain(catalogue, uplift, DecisionSettings(), {"tier": "loyalty tier"})
    client.app.dependency_overrides[get_domain] = lambda: domain
    return domain


def test_scores_carry_library_stage_and_reasons(
    client: TestClient, real_domain: LibraryDomain, read_headers: dict[str, str]
) -> None:
    body = client.post("/v1/scores", json={"member_ids": ["m4", "n2"]}, headers=read_headers).json()
    m4, n2 = body["scores"]

    assert n2["lifecycle"]["stage"] == "registered"
    assert m4["lifecycle"]["stage"] != "registered", "m4 has ordered"
    assert m4["lifecycle"]["rule"], "the rule is given in words"
    assert all(r["impact"] > 0 for r in m4["reasons"]), "reasons push the score up"
    assert m4["p_alive"] is None, "this domain is built without a BTYD outlook"


def test_next_best_action_from_the_engine_respects_a_recorded_contact(
    client: TestClient,
    real_domain: LibraryDomain,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
) -> None:
    decisions = client.post(
        "/v1/next-best-action",
        json={"member_ids": [f"m{i}" for i in range(40)]},
        headers=read_headers,
    ).json()["decisions"]
    first = next(d for d in decisions if d["action"]["action_id"] != "no_action")
    member, chosen = first["member_id"], first["action"]
    client.post(
        "/v1/contacts",
        json={
            "member_id": member,
            "action_id": chosen["action_id"],
            "channel": chosen["channel"],
            "sent_at": datetime.now(UTC).isoformat(),
        },
        headers=write_headers,
    )

    again = client.get(f"/v1/members/{member}/next-best-action", headers=read_headers).json()

    assert first["expected_value"] == chosen["expected_value"] > 0
    assert again["action"]["action_id"] != chosen["action_id"], "cooldown from the contact log"
    assert any(r.startswith("stage ") for r in again["reasons"])
