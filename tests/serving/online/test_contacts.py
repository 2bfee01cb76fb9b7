"""Contact log through the API, and cooldowns reaching the next-best action."""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from memberscore.contract import CONTACTS
from memberscore.errors import StoreUnavailable
from memberscore.settings import Settings
from serving.api.deps import get_contact_log, get_domain
from serving.api.routes.contacts import get_action_ids
from serving.online.contact_log import ContactLog, Response, Sent, open_contact_log

# The actions of the conftest's FakeDomain, which the cooldown tests record.
FAKE_ACTIONS = frozenset({"winback_email", "push_reminder"})


@pytest.fixture
def fake_actions(client: TestClient) -> TestClient:
    """The client, with the FakeDomain's action ids as the catalogue contacts may name."""
    client.app.dependency_overrides[get_action_ids] = lambda: FAKE_ACTIONS  # type: ignore[attr-defined]
    return client


def test_sent_then_response_are_appended_and_folded(
    client: TestClient, write_headers: dict[str, str], contact_log: ContactLog
) -> None:
    # Given a contact recorded as sent, when a response follows
    sent = client.post(
        "/v1/contacts",
        json={
            "member_id": "m1",
            "action_id": "winback_coupon",
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
    body = {"member_id": "m1", "action_id": "winback_coupon", "channel": "sms", "contact_id": "c-2"}

    first = client.post("/v1/contacts", json=body, headers=write_headers)
    again = client.post("/v1/contacts", json=body, headers=write_headers)
    unknown = client.post("/v1/contacts/nope/responses", json={}, headers=write_headers)

    assert (first.status_code, again.status_code, unknown.status_code) == (201, 409, 404)


def test_bad_channel_is_422_naming_the_field(
    client: TestClient, write_headers: dict[str, str]
) -> None:
    body = {"member_id": "m1", "action_id": "winback_coupon", "channel": "pigeon"}

    response = client.post("/v1/contacts", json=body, headers=write_headers)

    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "channel"


def test_recorded_contact_changes_the_next_best_action(
    fake_actions: TestClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    client = fake_actions
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


@pytest.fixture
def poisoned(contact_log: ContactLog) -> ContactLog:
    """A log holding, for m3, what the API stored before issue 14 finding 3 was fixed: a send
    in year 5138, one in year 1, and a response worth inf; plus a zone-less recent send of
    m4 (old rows were stored without a zone and are read as UTC)."""

    def sent(contact_id: str, member_id: str, at: datetime) -> Sent:
        return Sent(contact_id, member_id, "winback_coupon", "email", "treatment", at)

    contact_log.record_sent(sent("bad-future", "m3", datetime(5138, 11, 16, tzinfo=UTC)))
    contact_log.record_sent(sent("bad-past", "m3", datetime(1, 1, 1, tzinfo=UTC)))
    contact_log.record_sent(sent("inf-value", "m3", datetime.now(UTC) - timedelta(days=40)))
    contact_log.record_response(Response("inf-value", datetime.now(UTC), float("inf")))
    contact_log.record_sent(sent("naive", "m4", datetime.now(UTC).replace(tzinfo=None)))
    return contact_log


def test_history_skips_rows_stored_out_of_range_with_a_warning(
    poisoned: ContactLog, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 finding 3: reading a member whose stored history holds a send outside
    1677-2262 and an infinite value does not raise; the bad rows are named in a warning."""
    with caplog.at_level(logging.WARNING, logger="memberscore.serving.contact_log"):
        history = poisoned.history(["m3", "m4"])

    assert sorted(history["contact_id"]) == ["inf-value", "naive"], "out-of-range sends skipped"
    inf_row = history.set_index("contact_id").loc["inf-value"]
    assert pd.isna(inf_row["response_value"]) and pd.isna(inf_row["responded_at"]), (
        "an infinite response value is dropped, the send kept"
    )
    text = caplog.text
    assert "bad-future" in text and "bad-past" in text and "inf-value" in text, text
    assert "m3" not in text, "the warning names contacts, never members"


@pytest.fixture
def real_domain_client(client: TestClient) -> TestClient:
    """The client with the library domain (decisions.engine) over the shipped catalogue."""
    from decisions.catalogue import load_catalogue
    from decisions.uplift import prior_only_model
    from memberscore.decision_settings import DecisionSettings
    from serving.scoring.adapters import LibraryDomain

    catalogue = load_catalogue()
    domain = LibraryDomain(catalogue, prior_only_model(catalogue), DecisionSettings(), {})
    client.app.dependency_overrides[get_domain] = lambda: domain  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("domain", ["fake", "engine"])
def test_member_with_poisoned_history_still_gets_a_next_best_action(
    request: pytest.FixtureRequest,
    poisoned: ContactLog,
    read_headers: dict[str, str],
    domain: str,
) -> None:
    """Issue 14 finding 3: a member whose stored contacts hold a year-5138 send and an inf
    value gets a decision, alone and in a batch with other members (before: 500 for good)."""
    client = request.getfixturevalue("client" if domain == "fake" else "real_domain_client")

    single = client.get("/v1/members/m3/next-best-action", headers=read_headers)
    batch = client.post(
        "/v1/next-best-action", json={"member_ids": ["m1", "m3", "m4"]}, headers=read_headers
    )

    assert single.status_code == 200, single.text
    assert batch.status_code == 200, batch.text
    assert [d["member_id"] for d in batch.json()["decisions"]] == ["m1", "m3", "m4"]


def test_zone_less_stored_send_still_counts_as_a_cooldown(
    fake_actions: TestClient, contact_log: ContactLog, read_headers: dict[str, str]
) -> None:
    """An old row stored without a zone is read as UTC, so its cooldown still applies."""
    now = datetime.now(UTC).replace(tzinfo=None)
    contact_log.record_sent(Sent("old", "m2", "winback_email", "email", "treatment", now))

    after = fake_actions.get("/v1/members/m2/next-best-action", headers=read_headers).json()

    assert after["action"]["action_id"] == "push_reminder", "the zone-less send is a cooldown"


def test_a_poisoned_contact_can_be_corrected_and_deleted_with_write_scope_only(
    poisoned: ContactLog,
    client: TestClient,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
) -> None:
    """Issue 14 finding 3: PATCH and DELETE /v1/contacts/{id} need write scope; a correction is
    validated like a new contact; afterwards the history holds what was corrected."""
    when = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    fix = {"sent_at": when.isoformat()}

    refused = [
        client.patch("/v1/contacts/bad-future", json=fix, headers=read_headers).status_code,
        client.delete("/v1/contacts/bad-past", headers=read_headers).status_code,
        client.get("/v1/contacts/bad-past", headers=read_headers).status_code,
    ]
    still_bad = client.patch(
        "/v1/contacts/bad-future", json={"sent_at": "2100-01-01T00:00:00Z"}, headers=write_headers
    )
    corrected = client.patch("/v1/contacts/bad-future", json=fix, headers=write_headers)
    deleted = client.delete("/v1/contacts/bad-past", headers=write_headers)
    gone = client.get("/v1/contacts/bad-past", headers=write_headers)

    assert refused == [403, 403, 403], "correcting or reading contacts needs the write scope"
    assert still_bad.status_code == 422 and still_bad.json()["detail"][0]["field"] == "sent_at"
    assert corrected.status_code == 200, corrected.text
    assert datetime.fromisoformat(corrected.json()["sent_at"]) == when
    assert (deleted.status_code, gone.status_code) == (204, 404)
    history = poisoned.history(["m3"]).set_index("contact_id")
    assert sorted(history.index) == ["bad-future", "inf-value"], "bad-past is gone"
    assert history.loc["bad-future", "sent_at"] == pd.Timestamp(when)


def test_unknown_contact_is_404_for_correction_and_deletion(
    client: TestClient, write_headers: dict[str, str]
) -> None:
    patch = client.patch("/v1/contacts/nope", json={"channel": "sms"}, headers=write_headers)
    delete = client.delete("/v1/contacts/nope", headers=write_headers)

    assert (patch.status_code, delete.status_code) == (404, 404)
    assert "contact nope was never recorded" in delete.json()["detail"]


def test_empty_correction_is_422(client: TestClient, write_headers: dict[str, str]) -> None:
    response = client.patch("/v1/contacts/nope", json={}, headers=write_headers)

    assert response.status_code == 422, "a PATCH must correct something"


def test_a_deleted_contact_id_can_be_recorded_again(
    client: TestClient, write_headers: dict[str, str], contact_log: ContactLog
) -> None:
    body = {"member_id": "m5", "action_id": "winback_coupon", "channel": "email"}
    body["contact_id"] = "again"

    first = client.post("/v1/contacts", json=body, headers=write_headers).status_code
    client.delete("/v1/contacts/again", headers=write_headers)
    second = client.post("/v1/contacts", json=body, headers=write_headers).status_code

    assert (first, second) == (201, 201)
    assert contact_log.history(["m5"])["contact_id"].tolist() == ["again"]


def test_locked_sqlite_log_gives_503_within_the_store_timeout(
    client: TestClient, serving_settings: Settings, write_headers: dict[str, str]
) -> None:
    """A SQLite log another process holds locked answers 503 after the busy timeout
    (`serving.store_timeout_seconds`), not after a hung worker's minutes."""
    quick = serving_settings.model_copy(
        update={
            "serving": serving_settings.serving.model_copy(update={"store_timeout_seconds": 0.3})
        }
    )
    log = open_contact_log(quick)
    client.app.dependency_overrides[get_contact_log] = lambda: log  # type: ignore[attr-defined]
    holder = sqlite3.connect(quick.data_dir / "serving" / "contact_log.sqlite")
    holder.execute("BEGIN EXCLUSIVE")
    body = {"member_id": "m6", "action_id": "winback_coupon", "channel": "email"}
    try:
        started = time.monotonic()
        response = client.post("/v1/contacts", json=body, headers=write_headers)
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
        log.close()

    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert waited < 3, f"answered after {waited:.1f} s; the busy timeout is 0.3 s"


def test_a_log_opened_while_its_database_is_away_is_usable_once_it_is_back(
    tmp_path: Path,
) -> None:
    """Issue 14 finding 5: a contact log whose database cannot be opened does not stop the
    opening (the API starts and says not-ready); its calls answer StoreUnavailable until the
    database is there, and then create the table and work."""
    # Given a SQLite log whose folder does not exist yet (the database cannot be opened)
    folder = tmp_path / "not-yet"
    log = ContactLog(sa.create_engine(f"sqlite:///{folder / 'contacts.sqlite'}"))
    with pytest.raises(StoreUnavailable):
        log.ping()
    # When the database becomes reachable, then the next call creates the table and records
    folder.mkdir()
    log.ping()
    log.record_sent(
        Sent("c1", "m1", "winback_coupon", "email", "treatment", datetime(2026, 1, 1, tzinfo=UTC))
    )
    assert log.history(["m1"])["contact_id"].tolist() == ["c1"]


def test_opening_a_production_log_whose_database_is_down_does_not_raise(
    serving_settings: Settings,
) -> None:
    """Issue 14 finding 5: with the contact-log PostgreSQL down, `open_contact_log` returns
    (the app starts not-ready) and the log answers StoreUnavailable within its timeout."""
    down = serving_settings.model_copy(
        update={"profile": "production", "postgres_url": "postgresql://postgres@127.0.0.1:1/test"}
    )
    started = time.monotonic()
    log = open_contact_log(down)
    with pytest.raises(StoreUnavailable):
        log.ping()
    log.close()
    assert time.monotonic() - started < 10, "opening and pinging a down database took too long"
