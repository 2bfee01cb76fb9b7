"""The consent register (issue 17): latest change per member wins, forget erases, locally in
SQLite beside the contact log and in production on the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from memberscore.settings import Settings
from serving.online.consent import (
    TABLE_NAME,
    ConsentChange,
    ConsentRegister,
    open_consent_register,
    register_beside,
)
from serving.online.contact_log import database_url, open_contact_log

T1 = datetime(2026, 6, 1, 10, tzinfo=UTC)
T2 = datetime(2026, 6, 2, 10, tzinfo=UTC)


def _change(member_id: str, at: datetime, *, personal: bool, **extra: object) -> ConsentChange:
    return ConsentChange(member_id, True, personal, at, "api", **extra)  # type: ignore[arg-type]


def _behaves(register: ConsentRegister) -> None:
    """The register's contract, checked on either database."""
    # Given an opt-out at T2, then an opt-in dated T1 arriving late
    assert register.record(_change("m1", T2, personal=False, channels_opted_out=("sms", "email")))
    assert not register.record(_change("m1", T1, personal=True)), "an older change is history"
    assert register.record(_change("m2", T1, personal=True))

    # Then the latest change is the one read, channels sorted, time in UTC
    got = register.get("m1")
    assert got is not None and got.consent_personalization is False, got
    assert got.channels_opted_out == ("email", "sms") and got.changed_at == T2, got
    assert register.get("nobody") is None
    frame = register.entries(["m1", "m2", "nobody"])
    assert sorted(frame["member_id"]) == ["m1", "m2"], frame
    assert str(frame["changed_at"].dtype) == "datetime64[us, UTC]"
    assert len(register.entries()) == 2, "every entry when no ids are given"

    # When member m1 is forgotten (erasure), only m1's entry goes
    assert register.forget(["m1", "nobody"]) == 1
    assert register.get("m1") is None and register.get("m2") is not None


def test_register_local_sits_beside_the_contact_log(settings: Settings) -> None:
    """Issue 17: the local register is a table of the contact log's SQLite file, and the one
    the API uses (beside its contact log) sees what the pipelines' register wrote."""
    register = open_consent_register(settings)
    log = open_contact_log(settings)
    try:
        _behaves(register)
        register.record(_change("m3", T1, personal=False))
        assert register_beside(log).get("m3") is not None, "the API's register is the same table"
        assert database_url(settings).endswith("contact_log.sqlite")
    finally:
        register.close()
        log.close()


def test_unknown_channel_is_refused(settings: Settings) -> None:
    register = open_consent_register(settings)
    with pytest.raises(ValueError, match="unknown channel"):
        register.record(_change("m1", T1, personal=True, channels_opted_out=("pigeon",)))


@pytest.fixture
def production(settings: Settings) -> Iterator[Settings]:
    """The production profile on a fresh schema of the real PostgreSQL; skips when away."""
    import psycopg

    base = Settings().postgres_url
    try:
        psycopg.connect(base, connect_timeout=2).close()
    except psycopg.Error as error:
        pytest.skip(f"PostgreSQL at {base} unreachable: {error}")
    schema = f"mstest_consent_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    try:
        url = f"{base}?options=-csearch_path%3D{schema}"
        yield settings.model_copy(update={"profile": "production", "postgres_url": url})
    finally:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.production
def test_register_on_real_postgresql(production: Settings) -> None:
    """Issue 17: the production register is a PostgreSQL table beside the contact log."""
    import psycopg

    register = open_consent_register(production)
    try:
        _behaves(register)
        with psycopg.connect(production.postgres_url) as con:
            rows = con.execute(f"SELECT member_id, source FROM {TABLE_NAME}").fetchall()
        assert rows == [("m2", "api")], f"one row per member in {TABLE_NAME}: {rows}"
    finally:
        register.close()
