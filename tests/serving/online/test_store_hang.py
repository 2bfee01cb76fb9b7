"""Issue 14 finding 4 against the real Redis: the online store hangs (answers nothing, as a
Redis stopped with SIGSTOP does) and comes back.

The hang is a TCP forwarder started here in front of the shared Redis, paused and resumed:
the Redis server itself is never stopped. Production profile: a throwaway Feast project (its
Redis keys dropped at the end) and PostgreSQL schema; skipped when either service is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
import redis

from features import build, store
from memberscore.settings import Settings
from serving.online.contact_log import ContactLog
from serving.online.feast_reader import FeastReader, _entity_key
from serving.scoring.bundle import ModelHolder
from tests.serving.api.test_store_timeouts import (
    Call,
    assert_503_in_time,
    timed_app,
    with_health_check,
    with_timeout,
)

pytestmark = pytest.mark.production

TIMEOUT = 0.3  # the score API's store timeout in these tests (s), as in test_store_timeouts
SLACK = 1.2
RESUME_AFTER = 6.0  # a forgotten pause ends by itself, so a regression fails instead of hanging


class PausableProxy:
    """Forwards connections from a free port on 127.0.0.1 to `target`; while paused, bytes
    stop flowing both ways (connections are still accepted, as the kernel accepts them for a
    stopped server)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def pause(self) -> None:
        """Stop passing bytes; resumes by itself after RESUME_AFTER seconds at the latest."""
        self._flowing.clear()
        threading.Timer(RESUME_AFTER, self.resume).start()

    def resume(self) -> None:
        """Pass bytes again (those held meanwhile go on)."""
        self._flowing.set()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed = True
        self._flowing.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                return
            upstream.settimeout(None)
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                self._flowing.wait()
                if self._closed:
                    return
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def redis_address(settings: Settings) -> tuple[str, int]:
    """(host, port) of the settings' Redis."""
    host, _, port = settings.redis_url.split(",")[0].partition(":")
    return host or "127.0.0.1", int(port or 6379)


def unreachable(settings: Settings) -> str | None:
    """None when the shared Redis and PostgreSQL answer, else why not."""
    import psycopg

    host, port = redis_address(settings)
    try:
        redis.Redis(host=host, port=port, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as error:
        return f"Redis at {settings.redis_url} unreachable: {error}"
    try:
        psycopg.connect(settings.postgres_url, connect_timeout=2).close()
    except psycopg.Error as error:
        return f"PostgreSQL at {settings.postgres_url} unreachable: {error}"
    return None


@pytest.fixture(scope="module")
def materialized(
    tmp_path_factory: pytest.TempPathFactory, snapshot: pd.DataFrame, families: dict
) -> Iterator[Settings]:
    """Production settings on the shared Redis (own Feast project) and an own PostgreSQL
    schema, the conftest members materialized; cleaned up afterwards."""
    import psycopg

    base = Settings()
    reason = unreachable(base)
    if reason is not None:
        pytest.skip(f"production services not reachable: {reason}")
    schema = f"mstest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base.postgres_url, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    root = tmp_path_factory.mktemp("serving_hang")
    settings = Settings(
        data_dir=root / "data",
        feast_repo=root / "feature_repo",
        profile="production",
        feast_project=schema,
        postgres_url=f"{base.postgres_url}?options=-csearch_path%3D{schema}",
    )
    try:
        build.write_snapshot(snapshot, store.snapshot_path(settings, snapshot["as_of"][0].date()))
        store.apply(settings, families)
        store.materialize(settings)
        yield settings
    finally:
        store.feature_store(settings).teardown()  # drops the project's Redis keys
        with psycopg.connect(base.postgres_url, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def proxy(materialized: Settings) -> Iterator[PausableProxy]:
    """A pausable forwarder to the shared Redis."""
    forwarder = PausableProxy(redis_address(materialized))
    yield forwarder
    forwarder.close()


def through(proxy: PausableProxy, settings: Settings) -> Settings:
    """`settings` reading Redis through `proxy`, with a store timeout of TIMEOUT."""
    return with_timeout(
        settings.model_copy(update={"redis_url": f"127.0.0.1:{proxy.port}"}), TIMEOUT
    )


def test_paused_redis_gives_503_in_time_then_recovers(
    materialized: Settings,
    proxy: PausableProxy,
    serving_settings: Settings,
    holder: ModelHolder,
    contact_log: ContactLog,
    read_headers: dict[str, str],
) -> None:
    """Issue 14 finding 4: with Redis answering nothing, score calls answer 503 within the
    store timeout while /healthz answers at once; once Redis answers again, so do they."""
    reader = FeastReader(through(proxy, materialized))
    app = timed_app(with_timeout(serving_settings, TIMEOUT), reader, holder, contact_log)
    calls: list[Call] = [
        ("GET", f"/v1/members/m{i}/scores", {"headers": read_headers}) for i in range(6)
    ]
    before = asyncio.run(with_health_check(app, calls))[0]
    assert [a.response.status_code for a in before] == [200] * 6, "served through the proxy"

    # Given Redis stops answering
    proxy.pause()
    try:
        answers, health = asyncio.run(with_health_check(app, calls))
    finally:
        proxy.resume()

    # Then every call is a 503 within the timeout, and /healthz did not wait for them
    health.check("online store")
    assert_503_in_time(answers, "online store")

    # When Redis answers again, the calls recover with no restart
    deadline = time.monotonic() + 5
    while True:
        again = asyncio.run(with_health_check(app, calls[:2]))[0]
        codes = [a.response.status_code for a in again]
        if codes == [200, 200] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert codes == [200, 200], f"no recovery within 5 s of Redis answering again: {codes}"


def test_feast_redis_client_of_the_api_gives_up_within_the_timeout(
    materialized: Settings, proxy: PausableProxy
) -> None:
    """Issue 14 finding 4: the Redis client Feast reads with, as the score API opens it, gives
    up on a Redis that answers nothing after its socket timeout, without retries (redis-py's
    default retries a timeout 3 times with backoff; the old client had no timeout at all)."""
    settings = through(proxy, materialized)
    feast = store.feature_store(settings, timeout_seconds=TIMEOUT)
    online = feast._get_provider().online_store
    view = store.applied_views(feast)[0]
    keys = [_entity_key("m3")]
    assert online.online_read(feast.config, view, keys)[0][1], "m3 read through the proxy"

    # Given Redis stops answering
    proxy.pause()
    started = time.perf_counter()
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            online.online_read(feast.config, view, keys)
        elapsed = time.perf_counter() - started
    finally:
        proxy.resume()

    # Then the read gave up after one socket timeout, not after retries
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK, f"the read gave up after {elapsed:.2f} s"
