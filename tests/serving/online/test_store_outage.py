"""Production profile: the online store (a Redis of our own) goes down and comes back.

Scoring answers 503 with the reason and /readyz says so while Redis is down; both recover with
no restart once it is back. Needs PostgreSQL (the Feast registry) and the redis-server binary.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features import build, store
from memberscore.settings import Settings
from serving.api.deps import get_feature_reader
from serving.online.feast_reader import FeastReader

pytestmark = pytest.mark.production


class OwnRedis:
    """A redis-server on a free port, snapshotting to `folder` so a restart keeps the data."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.folder), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Save to disk and stop (SHUTDOWN SAVE), as a restart after maintenance would."""
        import redis

        if self.process is None:
            return
        with contextlib.suppress(redis.exceptions.ConnectionError):  # it drops as Redis exits
            redis.Redis(port=self.port).shutdown(save=True)
        self.process.wait(timeout=10)
        self.process = None


def services_reachable(url: str) -> str | None:
    """None when PostgreSQL answers and redis-server is installed, else why not."""
    import psycopg

    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error as error:
        return f"PostgreSQL at {url} unreachable: {error}"
    return None


@pytest.fixture(scope="module")
def outage(
    tmp_path_factory: pytest.TempPathFactory, snapshot: pd.DataFrame, families: dict
) -> Iterator[tuple[Settings, OwnRedis]]:
    """Production settings on our own Redis and a throwaway PostgreSQL schema, materialized."""
    import psycopg

    base = Settings()
    reason = services_reachable(base.postgres_url)
    if reason is not None:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("serving_outage")
    redis_server = OwnRedis(root)
    redis_server.start()
    schema = f"mstest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base.postgres_url, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    settings = Settings(
        data_dir=root / "data",
        feast_repo=root / "feature_repo",
        profile="production",
        feast_project=schema,
        redis_url=f"127.0.0.1:{redis_server.port}",
        postgres_url=f"{base.postgres_url}?options=-csearch_path%3D{schema}",
    )
    try:
        build.write_snapshot(snapshot, store.snapshot_path(settings, snapshot["as_of"][0].date()))
        store.apply(settings, families)
        store.materialize(settings)
        yield settings, redis_server
    finally:
        redis_server.stop()
        with psycopg.connect(base.postgres_url, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


def test_redis_down_gives_503_with_reason_then_recovers(
    client: TestClient, outage: tuple[Settings, OwnRedis], read_headers: dict[str, str]
) -> None:
    settings, redis_server = outage
    reader = FeastReader(settings)
    client.app.dependency_overrides[get_feature_reader] = lambda: reader
    assert client.get("/v1/members/m3/scores", headers=read_headers).status_code == 200

    # Given Redis goes down
    redis_server.stop()
    started = time.perf_counter()
    try:
        ready = client.get("/readyz")
        scores = client.get("/v1/members/m3/scores", headers=read_headers)
        batch = client.post("/v1/scores", json={"member_ids": ["m3"]}, headers=read_headers)
        elapsed = time.perf_counter() - started
    finally:
        redis_server.start()

    # Then readiness and scoring are 503 with the reason, not a 500 with a trace
    assert ready.status_code == 503
    assert "online store unavailable: the Redis online store" in ready.json()["reasons"][0]
    assert scores.status_code == 503 and batch.status_code == 503
    assert f"127.0.0.1:{redis_server.port} cannot be reached" in scores.json()["detail"]
    assert elapsed < 3, f"three calls took {elapsed:.1f} s: an outage must fail fast"

    # When it is back (same data, restored from its snapshot), both recover by themselves
    assert client.get("/readyz").status_code == 200
    again = client.get("/v1/members/m3/scores", headers=read_headers)
    assert again.status_code == 200 and again.json()["member_id"] == "m3"


def test_published_cards_through_redis(
    client: TestClient,
    outage: tuple[Settings, OwnRedis],
    families: dict,
    read_headers: dict[str, str],
) -> None:
    """Production profile: cards go to Redis (Feast's hash layout) and the PostgreSQL registry,
    are read back current and answer as live scoring does."""
    from tests.serving.online.test_real_store import published_like_live

    published_like_live(client, outage[0], families, read_headers)


def test_reads_equal_feasts_online_read_on_redis(outage: tuple[Settings, OwnRedis]) -> None:
    """Redis: the one pipelined read of every view gives each view's rows as Feast's
    `online_read` does (members in any order, repeated, unknown, all-null views; the cards'
    view in `published_like_live`)."""
    from tests.serving.online.test_real_store import reads_equal_feasts

    reads_equal_feasts(outage[0], ["n1", "m3", "ghost", "m0", "m3", "m1", "m2"])


def test_unknown_member_is_404_on_redis(
    client: TestClient, outage: tuple[Settings, OwnRedis], read_headers: dict[str, str]
) -> None:
    """Redis answers a member it does not hold with empty fields, not with nothing: still 404."""
    reader = FeastReader(outage[0])
    client.app.dependency_overrides[get_feature_reader] = lambda: reader
    assert reader.read(["ghost"], ()).rows == {}
    assert client.get("/v1/members/ghost/scores", headers=read_headers).status_code == 404


def test_null_features_are_read_as_none_on_redis(
    outage: tuple[Settings, OwnRedis], families: dict
) -> None:
    """Redis: a view whose features are all null for the member is there, with None values."""
    row = FeastReader(outage[0]).read(["n1"], ()).rows["n1"]
    assert set(row) == {f.name for features in families.values() for f in features}
    assert row["btyd_p_alive"] is None
