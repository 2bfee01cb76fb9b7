"""The contact API refuses what would poison the contact log (issue 14 finding 3): unknown
members and actions, implausible or zone-less times, non-finite or non-numeric values, a
response before its send, NUL and control characters in ids. Local profile (SQLite log), the
shipped catalogue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.online.contact_log import ContactLog

GOOD = {"member_id": "m1", "action_id": "winback_coupon", "channel": "email"}
RECENT = (datetime.now(UTC) - timedelta(days=10)).isoformat()


def _fields(response: Any) -> list[str]:
    """The fields a 422 names."""
    return [item["field"] for item in response.json()["detail"]]


def test_a_plausible_contact_is_recorded(
    client: TestClient, write_headers: dict[str, str], contact_log: ContactLog
) -> None:
    """Given a known member, a catalogue action and a recent time with a zone, it is stored."""
    response = client.post(
        "/v1/contacts", json=GOOD | {"sent_at": RECENT, "contact_id": "ok-1"}, headers=write_headers
    )

    assert response.status_code == 201, response.text
    assert contact_log.history(["m1"])["contact_id"].tolist() == ["ok-1"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action_id": "free_money"}, "action_id"),
        ({"action_id": "no_action"}, "action_id"),
        ({"action_id": "winback_coupon\x00x"}, "action_id"),
        ({"action_id": "winback_coupon\x1b"}, "action_id"),
        ({"contact_id": "crm\x00-1"}, "contact_id"),
        ({"contact_id": "crm\n1"}, "contact_id"),
        ({"member_id": "m1\x00x"}, "member_id"),
        ({"sent_at": "2100-01-01T00:00:00Z"}, "sent_at"),
        ({"sent_at": "0001-01-01T00:00:00Z"}, "sent_at"),
        ({"sent_at": "1969-12-31T23:59:59Z"}, "sent_at"),
        ({"sent_at": 99999999999999}, "sent_at"),
        ({"sent_at": "99999999999999"}, "sent_at"),
        ({"sent_at": "2026-06-02T10:00:00"}, "sent_at"),
        pytest.param(
            {"sent_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()},
            "sent_at",
            id="sent_at three days ahead",
        ),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_bad_contact_is_422_naming_the_field(
    client: TestClient,
    write_headers: dict[str, str],
    contact_log: ContactLog,
    change: dict[str, Any],
    field: str,
) -> None:
    """Given one bad field in an otherwise good contact, when it is posted, then it is 422
    naming that field and nothing is stored."""
    response = client.post("/v1/contacts", json=GOOD | change, headers=write_headers)

    assert response.status_code == 422, f"{change} must be refused, got {response.text}"
    assert _fields(response) == [field], f"the 422 names {field}: {response.json()}"
    assert contact_log.history(["m1"]).empty, "a refused contact leaves no row"


def test_unknown_member_is_404_naming_the_member(
    client: TestClient, write_headers: dict[str, str], contact_log: ContactLog
) -> None:
    """Given a member the feature store does not know, the contact is 404 naming the member."""
    response = client.post("/v1/contacts", json=GOOD | {"member_id": "zz9"}, headers=write_headers)

    assert response.status_code == 404, response.text
    assert "member zz9 is not known to the feature store" in response.json()["detail"]
    assert contact_log.history(["zz9"]).empty


@pytest.fixture
def sent(client: TestClient, write_headers: dict[str, str]) -> str:
    """A contact of m1 recorded ten days ago; its id."""
    body = GOOD | {"contact_id": "crm-7", "sent_at": RECENT}
    assert client.post("/v1/contacts", json=body, headers=write_headers).status_code == 201
    return "crm-7"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"value": Infinity}', "value"),
        ('{"value": 1e309}', "value"),
        ('{"value": NaN}', "value"),
        ('{"value": true}', "value"),
        ('{"value": "12.5"}', "value"),
        (json.dumps({"responded_at": "2026-06-02T10:00:00"}), "responded_at"),
        (json.dumps({"responded_at": 99999999999999}), "responded_at"),
        (json.dumps({"responded_at": "2100-01-01T00:00:00Z"}), "responded_at"),
        pytest.param(
            json.dumps({"responded_at": (datetime.now(UTC) - timedelta(days=11)).isoformat()}),
            "responded_at",
            id="responded_at before the send",
        ),
    ],
    ids=lambda value: value[:40],
)
def test_bad_response_is_422_naming_the_field(
    client: TestClient,
    write_headers: dict[str, str],
    contact_log: ContactLog,
    sent: str,
    raw: str,
    field: str,
) -> None:
    """Given a recorded contact, a response with an infinite, non-numeric or boolean value, a
    zone-less or implausible time, or a time before the send is 422 naming the field."""
    headers = write_headers | {"Content-Type": "application/json"}

    response = client.post(f"/v1/contacts/{sent}/responses", content=raw, headers=headers)

    assert response.status_code == 422, f"{raw} must be refused, got {response.text}"
    assert _fields(response) == [field], response.json()
    assert contact_log.history(["m1"])["responded_at"].isna().all(), "no response stored"


def test_response_before_send_names_the_send_time(
    client: TestClient, write_headers: dict[str, str], sent: str
) -> None:
    """Given a contact sent ten days ago, a response eleven days ago says when it was sent."""
    early = (datetime.now(UTC) - timedelta(days=11)).isoformat()

    response = client.post(
        f"/v1/contacts/{sent}/responses", json={"responded_at": early}, headers=write_headers
    )

    assert response.status_code == 422
    assert "is before the contact was sent" in response.json()["detail"][0]["msg"]


def test_good_response_after_send_is_recorded(
    client: TestClient, write_headers: dict[str, str], contact_log: ContactLog, sent: str
) -> None:
    response = client.post(
        f"/v1/contacts/{sent}/responses", json={"value": 12}, headers=write_headers
    )

    assert response.status_code == 201, response.text
    assert contact_log.history(["m1"]).loc[0, "response_value"] == 12.0


@pytest.mark.parametrize("path", ["crm%00-7", "crm%01-7", "crm%0A-7"])
def test_control_characters_in_a_contact_id_path_are_422(
    client: TestClient, write_headers: dict[str, str], sent: str, path: str
) -> None:
    """A NUL or control character in the contact id of a path is 422 on every route."""
    for method, suffix, body in (
        ("POST", "/responses", {}),
        ("GET", "", None),
        ("PATCH", "", {"channel": "sms"}),
        ("DELETE", "", None),
    ):
        response = client.request(
            method, f"/v1/contacts/{path}{suffix}", json=body, headers=write_headers
        )
        assert response.status_code == 422, f"{method} {path}{suffix}: {response.text}"
        assert _fields(response) == ["contact_id"]
