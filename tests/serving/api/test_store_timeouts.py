"""Issue 14 finding 4: a hung store must not freeze the worker.

Stores whose reads block (a `threading.Event` they wait on, far longer than the store timeout)
stand in for a Redis stopped with SIGSTOP. Calls go through `httpx.AsyncClient` on the app's
own event loop (`ASGITransport`), several at once, so a read that blocked the loop would
delay every other call; `TestClient` would serialise them and hide it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI

from memberscore.settings import Settings
from serving.api.app import create_app
from serving.api.deps import (
    get_consent_register,
    get_contact_log,
    get_domain,
    get_feature_reader,
    get_model_holder,
)
from serving.online.consent import register_beside
from serving.online.contact_log import ContactLog
from serving.scoring.bundle import ModelHolder
from serving.scoring.sources import FeatureReader, MemberFeatures, PublishedCard
from tests.serving.conftest import FakeDomain, FakeReader

TIMEOUT = 0.3  # serving.store_timeout_seconds of these tests (s)
SLACK = 1.2  # scheduling on a busy 2-core test machine (s)
HANG = 3.0  # how long a hung read blocks unless released (s): far past TIMEOUT + SLACK
AT_ONCE = 0.5  # what "answers at once" allows on that machine (s)


class Hang:
    """A switch for fake stores: while on, each read blocks until `release` (or HANG);
    `blocked` counts the reads that did."""

    def __init__(self) -> None:
        self.on = False
        self.released = threading.Event()
        self.blocked = 0
        self._count = threading.Lock()

    def wait(self) -> None:
        if self.on:
            with self._count:
                self.blocked += 1
            self.released.wait(HANG)

    def release(self) -> None:
        self.on = False
        self.released.set()


class HangingReader:
    """The conftest online store, whose reads block while `hang` is on."""

    def __init__(self, inner: FakeReader, hang: Hang) -> None:
        self.inner, self.hang = inner, hang

    def read(self, member_ids: Sequence[str], services: Sequence[str]) -> MemberFeatures:
        self.hang.wait()
        return self.inner.read(member_ids, services)

    def published(self, member_ids: Sequence[str]) -> Mapping[str, PublishedCard]:
        self.hang.wait()
        return self.inner.published(member_ids)

    def ping(self) -> None:
        self.hang.wait()
        self.inner.ping()


class HangingContactLog:
    """The real contact log, whose history reads block while `hang` is on."""

    def __init__(self, inner: ContactLog, hang: Hang) -> None:
        self.inner, self.hang = inner, hang

    def history(self, member_ids: Sequence[str]) -> pd.DataFrame:
        self.hang.wait()
        return self.inner.history(member_ids)

    def ping(self) -> None:
        self.hang.wait()
        self.inner.ping()


def with_timeout(settings: Settings, seconds: float) -> Settings:
    """`settings` with `serving.store_timeout_seconds` = `seconds`."""
    serving = settings.serving.model_copy(update={"store_timeout_seconds": seconds})
    return settings.model_copy(update={"serving": serving})


def timed_app(
    settings: Settings, reader: FeatureReader, holder: ModelHolder, contacts: Any
) -> FastAPI:
    """The real app for `settings`, with `reader`, `holder`, `contacts` and the fake domain."""
    app = create_app(settings)
    app.dependency_overrides |= {
        get_feature_reader: lambda: reader,
        get_model_holder: lambda: holder,
        get_contact_log: lambda: contacts,
        get_consent_register: lambda: register_beside(getattr(contacts, "inner", contacts)),
        get_domain: FakeDomain,
    }
    return app


def http(app: FastAPI) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """An async client calling `app` on the running event loop."""
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://memberscore.test")


@dataclass(frozen=True)
class Timed:
    """An answer and how long it took (s)."""

    response: httpx.Response
    seconds: float


async def timed(call: Any) -> Timed:
    """Await `call` (a request coroutine) and time it."""
    started = time.perf_counter()
    response = await call
    return Timed(response, time.perf_counter() - started)


@pytest.fixture
def hang() -> Iterator[Hang]:
    """The switch of the fake stores; released at the end so no thread stays blocked."""
    switch = Hang()
    yield switch
    switch.release()


@pytest.fixture
def hung_app(
    serving_settings: Settings,
    reader: FakeReader,
    holder: ModelHolder,
    contact_log: ContactLog,
    hang: Hang,
) -> FastAPI:
    """The app with a store timeout of TIMEOUT over stores that hang when `hang` is on."""
    settings = with_timeout(serving_settings, TIMEOUT)
    contacts = HangingContactLog(contact_log, hang)
    return timed_app(settings, HangingReader(reader, hang), holder, contacts)


Call = tuple[str, str, dict[str, Any]]  # method, path, keyword arguments of the request


@dataclass(frozen=True)
class HealthCheck:
    """A /healthz answer sent just after other calls: how long after them it came (s) and
    how many of them were still waiting then."""

    response: httpx.Response
    seconds: float
    waiting: int

    def check(self, store: str) -> None:
        """It answered at once, while the calls still waited on the hung `store`."""
        assert self.response.status_code == 200, f"/healthz must answer while the {store} hangs"
        assert self.seconds < AT_ONCE, (
            f"/healthz answered {self.seconds:.2f} s after the calls on the hung {store}: "
            "the event loop was blocked"
        )
        assert self.waiting > 0, f"/healthz answered only after the calls on the hung {store}"


async def with_health_check(app: FastAPI, calls: Sequence[Call]) -> tuple[list[Timed], HealthCheck]:
    """Send `calls` at once, then, while they wait on the stores, GET /healthz; their
    answers and the health check."""
    async with http(app) as client:
        sent = time.perf_counter()
        pending = [
            asyncio.create_task(timed(client.request(method, path, **kwargs)))
            for method, path, kwargs in calls
        ]
        await asyncio.sleep(0.05)  # the calls are now waiting on the stores
        response = await client.get("/healthz")
        waiting = sum(not task.done() for task in pending)
        health = HealthCheck(response, time.perf_counter() - sent, waiting)
        return list(await asyncio.gather(*pending)), health


def assert_503_in_time(answers: Sequence[Timed], store: str) -> None:
    """Every answer is a 503 with Retry-After naming `store`, within TIMEOUT plus slack."""
    for answer in answers:
        response = answer.response
        assert response.status_code == 503, (
            f"a hung {store} must answer 503, got {response.status_code} after "
            f"{answer.seconds:.2f} s"
        )
        assert response.headers.get("retry-after"), "a 503 tells the caller when to retry"
        assert store in response.json()["detail"], "the 503 names the store that hung"
        assert answer.seconds < TIMEOUT + SLACK, (
            f"a hung {store} answered after {answer.seconds:.2f} s; the store timeout is "
            f"{TIMEOUT} s"
        )


def test_hung_online_store_gives_503_in_time_while_healthz_answers_at_once(
    hung_app: FastAPI, hang: Hang, read_headers: dict[str, str]
) -> None:
    """Issue 14 finding 4: score and next-best-action calls on a hung online store answer
    503 within the store timeout, /healthz answers at once meanwhile, and the calls recover
    when the store answers again."""
    # Given the online store hangs, when score and decision calls arrive with a health check
    hang.on = True
    calls: list[Call] = [
        ("GET", "/v1/members/m3/scores", {"headers": read_headers}),
        ("POST", "/v1/scores", {"headers": read_headers, "json": {"member_ids": ["m1", "m2"]}}),
        ("GET", "/v1/members/m3/next-best-action", {"headers": read_headers}),
        ("POST", "/v1/next-best-action", {"headers": read_headers, "json": {"member_ids": ["m1"]}}),
    ]
    answers, health = asyncio.run(with_health_check(hung_app, calls))

    # Then the health check answered at once, and every call 503 within the timeout
    health.check("online store")
    assert_503_in_time(answers, "online store")
    assert hang.blocked >= len(calls), "each call reached the store (not refused before it)"

    # When the store answers again, so do the calls
    hang.release()
    again = asyncio.run(with_health_check(hung_app, calls[:3]))[0]
    assert [a.response.status_code for a in again] == [200, 200, 200], "recovered, no restart"


def test_hung_contact_log_gives_503_in_time(
    serving_settings: Settings,
    reader: FakeReader,
    holder: ModelHolder,
    contact_log: ContactLog,
    hang: Hang,
    read_headers: dict[str, str],
) -> None:
    """Issue 14 finding 4: a next-best action whose contact-log read hangs answers 503 naming
    the contact log within the store timeout (the online store answers)."""
    # Given only the contact log hangs
    contacts = HangingContactLog(contact_log, hang)
    app = timed_app(with_timeout(serving_settings, TIMEOUT), reader, holder, contacts)
    hang.on = True

    # When a decision is asked for
    calls: list[Call] = [("GET", "/v1/members/m3/next-best-action", {"headers": read_headers})]
    answers, health = asyncio.run(with_health_check(app, calls))

    # Then it is a 503 in time and the health check did not wait for it
    health.check("contact log")
    assert_503_in_time(answers, "contact log")
    assert hang.blocked == 1, "the contact log was read (and hung)"


def test_many_calls_on_a_hung_store_neither_queue_past_the_timeout_nor_starve_others(
    hung_app: FastAPI, hang: Hang, read_headers: dict[str, str]
) -> None:
    """Issue 14 finding 4: three times as many calls as the store has threads, all on a
    hung store: each still answers 503 within the timeout (those queued for a thread give up
    too), and a route served by the shared thread pool (/metrics) answers meanwhile."""
    # Given more calls than store threads (8) arrive while the store hangs
    hang.on = True
    calls: list[Call] = [
        ("GET", f"/v1/members/m{i}/scores", {"headers": read_headers}) for i in range(24)
    ]

    async def scenario() -> tuple[list[Timed], HealthCheck, Timed]:
        answers_task = asyncio.create_task(with_health_check(hung_app, calls))
        await asyncio.sleep(0.1)
        async with http(hung_app) as client:
            metrics = await timed(client.get("/metrics"))
        answers, health = await answers_task
        return answers, health, metrics

    answers, health, metrics = asyncio.run(scenario())

    # Then all of them are 503s in time, and the other routes were served meanwhile
    assert_503_in_time(answers, "online store")
    health.check("online store")
    assert metrics.response.status_code == 200 and metrics.seconds < AT_ONCE, (
        f"/metrics (thread pool) took {metrics.seconds:.2f} s: hung reads starved the pool"
    )
