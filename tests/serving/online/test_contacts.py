"""Contact log through the API, and cooldowns reaching the next-best action."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from fastapi.testclient import TestClient

from memberscore.contract import CONTACTS
from serving.online.contact_log import ContactLog


def test_sent_then_response_are_appended_and_folded(
    client: TestClient, write_headers: dict[str, str], contact_log: ContactLog
) -> None:
    # Given a contact recorded as sent, when a response follows
    sent = client.post(
        "/v1/contacts",
        json={
            "member_id": "m1",
            "action_id": "winback_email",
            "channel": "email",
            "contact_id": "c-1",
            "sent_at": "2026-06-02T10:00:00+02:00",
        },
        headers=write_headers,
    )
    answer = client.post("/v1/contacts/c-1/responses", json={"value": 42.5}, headers=write_headers)

    # Then both are stored and the history is in contract columns, in UTC
    assert sent.status_code == 201 and sent.json()["contact_id"] == "c-1"
    assert answer.status_code == 201 and answer.json()["member_id"] == "m1"
    history = contact_log.history(["m1"])
    assert list(history.columns) == CONTACTS.names
    assert history.loc[0, "sent_at"] == pd.Timestamp("2026-06-02T08:00:00Z")
    assert history.loc[0, "response_value"] == 42.5


def test_duplicate_contact_is_409_and_unknown_contact_404(
    client: TestClient, write_headers: dict[str, str]
) -> None:
    body = {"member_id": "m1", "action_id": "a", "channel": "sms", "contact_id": "c-2"}

    first = client.post("/v1/contacts", json=body, headers=write_headers)
    again = client.post("/v1/contacts", json=body, headers=write_headers)
    unknown = client.post("/v1/contacts/nope/responses", json={}, headers=write_headers)

    assert (first.status_code, again.status_code, unknown.status_code) == (201, 409, 404)


def test_bad_channel_is_422_naming_the_field(
    client: TestClient, write_headers: dict[str, str]
) -> None:
    body = {"member_id": "m1", "action_id": "a", "channel": "pigeon"}

    response = client.post("/v1/contacts", json=body, headers=write_headers)

    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "channel"


def test_recorded_contact_changes_the_next_best_action(
    client: TestClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    before = client.get("/v1/members/m2/next-best-action", headers=read_headers).json()
    client.post(
        "/v1/contacts",
        json={
            "member_id": "m2",
            "action_id": before["action"]["action_id"],
            "channel": "email",
            "sent_at": datetime.now(UTC).isoformat(),
        },
        headers=write_headers,
    )

    after = client.get("/v1/members/m2/next-best-action", headers=read_headers).json()

    assert before["action"]["action_id"] == "winback_email"
    assert before["expected_value"] == 4.0 and before["alternatives"]
    assert after["action"]["action_id"] == "push_reminder", "cooldown read from the contact log"
    assert after["reasons"] == ["cooldown: winback_email sent recently"]


def test_batch_next_best_action(client: TestClient, read_headers: dict[str, str]) -> None:
    body = client.post(
        "/v1/next-best-action", json={"member_ids": ["m1", "n1", "zz"]}, headers=read_headers
    ).json()

    assert [d["member_id"] for d in body["decisions"]] == ["m1", "n1"]
    assert body["not_found"] == ["zz"]
    assert body["decisions"][1]["lifecycle"]["stage"] == "registered"
