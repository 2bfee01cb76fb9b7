"""Consent changes through the API reach the next decision (issue 17: consent and
personalisation opt-out honoured everywhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from decisions.catalogue import load_catalogue
from memberscore.settings import Settings
from serving.api.deps import get_domain

CATALOGUE = load_catalogue()
PERSONAL = {a.id for a in CATALOGUE.actions if "personalization" in a.requires_consent}


@pytest.fixture
def engine_client(client: TestClient) -> TestClient:
    """The client deciding with the real engine over the shipped catalogue (priors only)."""
    from decisions.uplift import prior_only_model
    from memberscore.decision_settings import DecisionSettings
    from serving.scoring.adapters import LibraryDomain

    domain = LibraryDomain(CATALOGUE, prior_only_model(CATALOGUE), DecisionSettings(), {})
    client.app.dependency_overrides[get_domain] = lambda: domain  # type: ignore[attr-defined]
    return client


def _opt_out(client: TestClient, member_id: str, headers: dict[str, str], **body: Any) -> Any:
    change = {"consent_marketing": True, "consent_personalization": False} | body
    return client.put(f"/v1/members/{member_id}/consent", json=change, headers=headers)


def _offered(decision: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The chosen action and the alternatives as (action id, channel)."""
    options = [decision["action"], *decision["alternatives"]]
    return [(o["action_id"], o["channel"]) for o in options]


def test_api_opt_out_reaches_the_next_single_and_batch_decision(
    engine_client: TestClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    """Issue 17: after PUT consent (personalisation off, email refused) the next decision,
    single and batch, offers no personalised action and nothing by email (before: the
    snapshot's consent decided until the next snapshot)."""
    # Given members whose decision is a personalised action sent by email (m22: the tier
    # upgrade nudge, its next tier within reach)
    members = ["m1", "m22"]
    before = engine_client.post(
        "/v1/next-best-action", json={"member_ids": members}, headers=read_headers
    ).json()["decisions"]
    assert all(d["action"]["action_id"] in PERSONAL for d in before), f"precondition: {before}"
    assert all(d["action"]["channel"] == "email" for d in before), f"precondition: {before}"

    # When they turn personalisation off and refuse email through the API
    for member_id in members:
        answer = _opt_out(engine_client, member_id, write_headers, channels_opted_out=["email"])
        assert answer.status_code == 200, answer.text

    # Then the next decisions are generic and never by email
    single = engine_client.get("/v1/members/m22/next-best-action", headers=read_headers).json()
    batch = engine_client.post(
        "/v1/next-best-action", json={"member_ids": members}, headers=read_headers
    ).json()["decisions"]
    for decision in [single, *batch]:
        offered = _offered(decision)
        assert not {a for a, _ in offered} & PERSONAL, (
            f"personalised action after opt-out: {offered}"
        )
        assert "email" not in {c for _, c in offered}, f"email after opting out of it: {offered}"
    assert (single["action"]["action_id"], single["action"]["channel"]) == (
        "benefit_reminder",
        "push",
    ), "the best generic action, on its first channel not refused"


def test_marketing_withdrawal_leaves_no_marketing_action(
    engine_client: TestClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    """Issue 17: marketing consent withdrawn through the API: the next decision is no_action
    (every shipped action needs marketing consent)."""
    answer = _opt_out(engine_client, "m20", write_headers, consent_marketing=False)
    decision = engine_client.get("/v1/members/m20/next-best-action", headers=read_headers)

    assert answer.status_code == 200, answer.text
    offered = _offered(decision.json())
    marketing = {a.id for a in CATALOGUE.actions if "marketing" in a.requires_consent}
    assert not {a for a, _ in offered} & marketing, f"marketing action after withdrawal: {offered}"


def test_get_gives_the_effective_consent(
    client: TestClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    """Issue 17: GET consent shows the snapshot's flags until a change, then the change."""
    before = client.get("/v1/members/m1/consent", headers=read_headers).json()
    changed_at = "2026-06-02T10:00:00+02:00"
    _opt_out(client, "m1", write_headers, channels_opted_out=["sms", "call"], changed_at=changed_at)
    after = client.get("/v1/members/m1/consent", headers=read_headers).json()

    assert before["source"] == "snapshot" and before["consent_personalization"] is True, before
    assert after["source"] == "api" and after["consent_personalization"] is False, after
    assert sorted(after["channels_opted_out"]) == ["call", "sms"], after
    assert after["changed_at"].startswith("2026-06-02T08:00:00"), "stored in UTC"


def test_an_older_change_does_not_replace_a_later_one(
    client: TestClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    """Issue 17: changes may arrive out of order; the latest changed_at stays in force (409)."""
    later = _opt_out(client, "m2", write_headers, changed_at="2026-06-03T00:00:00Z")
    older = client.put(
        "/v1/members/m2/consent",
        json={
            "consent_marketing": True,
            "consent_personalization": True,
            "changed_at": "2026-06-01T00:00:00Z",
        },
        headers=write_headers,
    )
    now = client.get("/v1/members/m2/consent", headers=read_headers).json()

    assert (later.status_code, older.status_code) == (200, 409), older.text
    assert now["consent_personalization"] is False, "the later opt-out stays"


def test_unknown_member_is_404_and_read_key_cannot_change(
    client: TestClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    """Issue 17: as for contacts, a member the feature store does not know is 404; a change
    needs the write scope."""
    unknown = _opt_out(client, "nobody", write_headers)
    unknown_read = client.get("/v1/members/nobody/consent", headers=read_headers)
    read_only = _opt_out(client, "m1", read_headers)

    assert (unknown.status_code, unknown_read.status_code, read_only.status_code) == (404, 404, 403)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"changed_at": "2026-06-02T10:00:00"}, "changed_at"),  # no zone
        ({"changed_at": "1900-01-01T00:00:00Z"}, "changed_at"),  # before earliest_date
        ({"changed_at": "far-future"}, "changed_at"),
        ({"channels_opted_out": ["pigeon"]}, "channels_opted_out"),
        ({"consent_marketing": "maybe"}, "consent_marketing"),
        ({"consent_personalization": None}, "consent_personalization"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, write_headers: dict[str, str], change: dict[str, Any], field: str
) -> None:
    """Issue 17: bad input to the consent route is refused with 422 naming the field."""
    if change.get("changed_at") == "far-future":
        change = {"changed_at": (datetime.now(UTC) + timedelta(days=30)).isoformat()}
    body = {"consent_marketing": True, "consent_personalization": False} | change

    answer = client.put("/v1/members/m1/consent", json=body, headers=write_headers)

    assert answer.status_code == 422, answer.text
    fields = [d["field"] for d in answer.json()["detail"]]
    assert any(f.split(".")[0] == field for f in fields), (
        f"422 should name {field}: {answer.json()}"
    )


def test_ingested_change_reaches_the_next_api_decision(
    engine_client: TestClient,
    read_headers: dict[str, str],
    serving_settings: Settings,
    tmp_path: Path,
) -> None:
    """Issue 17: a consent-change file ingested (no new snapshot, no materialization) is
    honoured by the next API decision."""
    from pipelines.ingest.tables import ingest

    changes = tmp_path / "consents.csv"
    changes.write_text(
        "member_id,changed_at,consent_marketing,consent_personalization,opted_out_email\n"
        "m22,2026-06-02T09:00:00Z,true,false,true\n"
    )
    before = engine_client.get("/v1/members/m22/next-best-action", headers=read_headers).json()
    assert before["action"]["action_id"] in PERSONAL, f"precondition: {before['action']}"

    ingest(serving_settings, "consents", str(changes), currency="USD")
    after = engine_client.get("/v1/members/m22/next-best-action", headers=read_headers).json()

    offered = _offered(after)
    assert not {a for a, _ in offered} & PERSONAL, f"personalised action after opt-out: {offered}"
    assert "email" not in {c for _, c in offered}, offered
