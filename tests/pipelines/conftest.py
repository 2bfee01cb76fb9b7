"""Fixtures of the pipelines tests: a throw-away table in the local PostgreSQL `test` database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url() -> str:
    """The local PostgreSQL server (trust auth) that the readers tests use."""
    return PG_URL


@pytest.fixture
def pg_table(pg_url: str) -> Iterator[str]:
    """Given a table of five orders-like rows in the local `test` database (dropped after)."""
    psycopg = pytest.importorskip("psycopg")
    name = f"ingest_test_{secrets.token_hex(4)}"
    try:
        conn = psycopg.connect(pg_url, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL at {pg_url} is unreachable: {error}")
    with conn:
        conn.execute(
            f"CREATE TABLE {name} (order_id text, member_id text, ordered_at timestamptz, "
            "amount numeric(10,2), discount numeric, items integer, channel text, "
            "is_return boolean)"
        )
        conn.execute(
            f"INSERT INTO {name} SELECT 'o' || i, 'm' || i, "
            "timestamptz '2024-05-01 10:00:00+02' + i * interval '1 day', i * 1.5, 0, i, "
            "'online', i = 5 FROM generate_series(1, 5) AS i"
        )
        try:
            yield name
        finally:
            conn.execute(f"DROP TABLE {name}")
