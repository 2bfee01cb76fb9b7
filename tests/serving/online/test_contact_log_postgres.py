"""The production contact log on the real PostgreSQL at 127.0.0.1:5432 (issue 14 finding 3):
NUL bytes never reach it, rows stored badly never make a decision fail, contacts can be
corrected and deleted, and a locked table gives StoreUnavailable within the store timeout.

Each module run uses its own schema (search_path in the URL), dropped afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from memberscore.errors import StoreUnavailable
from memberscore.settings import Settings
from serving.api.deps import get_contact_log
from serving.online.contact_log import TABLE_NAME, ContactLog, Response, Sent, open_contact_log

pytestmark = pytest.mark.production


@pytest.fixture(scope="module")
def schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema; skips when PostgreSQL is away."""
    import psycopg

    base = Settings().postgres_url
    try:
        psycopg.connect(base, connect_timeout=2).close()
    except psycopg.Error as error:
        pytest.skip(f"PostgreSQL at {base} unreachable: {error}")
    schema = f"mstest_contacts_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def production(serving_settings: Settings, schema_url: str) -> Settings:
    """The test settings in the production profile, the contact log in the test schema, with
    a short store timeout."""
    serving = serving_settings.serving.model_copy(update={"store_timeout_seconds": 0.5})
    return serving_settings.model_copy(
        update={"profile": "production", "postgres_url": schema_url, "serving": serving}
    )


@pytest.fixture
def pg_log(production: Settings) -> Iterator[ContactLog]:
    """The production contact log, emptied for each test."""
    import psycopg

    log = open_contact_log(production)
    with psycopg.connect(production.postgres_url, autocommit=True) as con:
        con.execute(f"DELETE FROM {TABLE_NAME}")
    yield log
    log.close()


@pytest.fixture
def pg_client(client: TestClient, pg_log: ContactLog) -> TestClient:
    """The app with the PostgreSQL contact log."""
    client.app.dependency_overrides[get_contact_log] = lambda: pg_log  # type: ignore[attr-defined]
    return client


def test_nul_in_ids_is_422_not_500_against_postgres(
    pg_client: TestClient, pg_log: ContactLog, write_headers: dict[str, str]
) -> None:
    """Given the production log, a NUL in action_id (body) or contact_id (path) is 422 naming
    the field (before: PostgreSQL refused the text and the API answered 500)."""
    body = {"member_id": "m1", "action_id": "winback_coupon\x00x", "channel": "email"}

    sent = pg_client.post("/v1/contacts", json=body, headers=write_headers)
    response = pg_client.post("/v1/contacts/c%00x/responses", json={}, headers=write_headers)

    assert sent.status_code == 422, sent.text
    assert sent.json()["detail"][0]["field"] == "action_id"
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "contact_id"
    assert pg_log.history(["m1"]).empty


def test_the_log_itself_refuses_a_nul_naming_the_field(pg_log: ContactLog) -> None:
    """A caller other than the API gets a ValueError naming the field, not a driver error
    carrying the SQL and its parameters."""
    sent = Sent("c-nul", "m1", "a\x00b", "email", "treatment", datetime.now(UTC))

    with pytest.raises(ValueError, match="action_id holds a NUL"):
        pg_log.record_sent(sent)


def test_poisoned_postgres_history_still_gives_decisions(
    pg_client: TestClient, pg_log: ContactLog, read_headers: dict[str, str]
) -> None:
    """Rows stored in years 5138 and 1 and an inf value (as the old API let through) make
    neither the single nor the batch next-best action fail."""
    for contact_id, at in (("future", datetime(5138, 11, 16)), ("past", datetime(1, 1, 1))):
        pg_log.record_sent(Sent(contact_id, "m3", "winback_coupon", "email", "treatment", at))
    pg_log.record_sent(Sent("inf", "m3", "winback_coupon", "email", "treatment", datetime.now(UTC)))
    pg_log.record_response(Response("inf", datetime.now(UTC), float("inf")))

    single = pg_client.get("/v1/members/m3/next-best-action", headers=read_headers)
    batch = pg_client.post(
        "/v1/next-best-action", json={"member_ids": ["m3", "m1"]}, headers=read_headers
    )

    assert single.status_code == 200, single.text
    assert batch.status_code == 200 and len(batch.json()["decisions"]) == 2, batch.text
    assert pg_log.history(["m3"])["contact_id"].tolist() == ["inf"]


def test_postgres_contact_is_corrected_and_deleted(
    pg_client: TestClient, pg_log: ContactLog, write_headers: dict[str, str]
) -> None:
    pg_log.record_sent(
        Sent("fix-me", "m4", "winback_coupon", "email", "treatment", datetime(5138, 1, 1))
    )
    pg_log.record_sent(
        Sent("drop-me", "m4", "winback_coupon", "sms", "treatment", datetime(1, 1, 1))
    )
    when = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)

    stored = pg_client.get("/v1/contacts/fix-me", headers=write_headers)
    corrected = pg_client.patch(
        "/v1/contacts/fix-me", json={"sent_at": when.isoformat()}, headers=write_headers
    )
    deleted = pg_client.delete("/v1/contacts/drop-me", headers=write_headers)
    again = pg_client.delete("/v1/contacts/drop-me", headers=write_headers)

    assert stored.status_code == 200 and stored.json()["sent_at"].startswith("5138-01-01")
    assert corrected.status_code == 200, corrected.text
    assert (deleted.status_code, again.status_code) == (204, 404)
    history = pg_log.history(["m4"])
    assert history["contact_id"].tolist() == ["fix-me"]
    assert history.loc[0, "sent_at"].to_pydatetime() == when


def test_locked_postgres_table_gives_store_unavailable_within_the_timeout(
    production: Settings, pg_log: ContactLog
) -> None:
    """Given another session holding the table locked, a read gives StoreUnavailable after
    about `store_timeout_seconds` (statement_timeout), instead of waiting for the lock."""
    import psycopg

    outcome: dict[str, object] = {}

    def read() -> None:
        started = time.monotonic()
        try:
            pg_log.history(["m1"])
            outcome["error"] = None
        except StoreUnavailable as error:
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    with psycopg.connect(production.postgres_url) as holder:
        holder.execute(f"LOCK TABLE {TABLE_NAME} IN ACCESS EXCLUSIVE MODE")
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout=5)
        holder.rollback()
    reader.join(timeout=5)

    assert "seconds" in outcome and outcome["seconds"] < 3, (  # type: ignore[operator]
        f"the read must give up after the 0.5 s store timeout: {outcome}"
    )
    assert isinstance(outcome["error"], StoreUnavailable), outcome
