"""The next-best action's cost bounds: members per call (422) and members per second per API
key (429 with Retry-After), documented in OpenAPI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from memberscore.settings import Settings
from serving.api.app import create_app
from serving.api.limits import MemberRate, retry_after
from tests.serving.conftest import WRITE_KEY

ROUTES = [("/v1/members/{member_id}/next-best-action", "get"), ("/v1/next-best-action", "post")]


def test_a_bucket_lets_a_burst_through_then_says_how_long_to_wait() -> None:
    """Given 10 members per second and bursts of 20, 20 members go at once; 5 more must wait
    0.5 s; after 0.5 s they go; another key has its own bucket."""
    bucket = MemberRate(rate=10, burst=20)

    assert bucket.take("a", 20, now=100.0) == 0.0
    assert bucket.take("a", 5, now=100.0) == pytest.approx(0.5)
    assert bucket.take("a", 5, now=100.5) == 0.0, "refilled at the rate"
    assert bucket.take("b", 20, now=100.5) == 0.0, "keys do not share a bucket"
    assert bucket.take("a", 1, now=1e6) == 0.0 and bucket.take("a", 20, now=1e6) > 0, (
        "a bucket never holds more than the burst"
    )
    assert retry_after(0.01) == "1" and retry_after(2.2) == "3"


def _limited(client: TestClient, settings: Settings, **serving: float) -> TestClient:
    """The client's app (same fakes) under `settings` with `serving` changed."""
    changed = settings.model_copy(update={"serving": settings.serving.model_copy(update=serving)})
    app = create_app(changed)
    app.dependency_overrides = client.app.dependency_overrides  # type: ignore[attr-defined]
    return TestClient(app)


def test_more_members_than_max_decision_members_is_422_naming_the_setting(
    client: TestClient, serving_settings: Settings, read_headers: dict[str, str]
) -> None:
    limited = _limited(client, serving_settings, max_decision_members=3)

    fits = limited.post("/v1/next-best-action", json={"member_ids": ["m1", "m2", "m3"]},
                        headers=read_headers)  # fmt: skip
    over = limited.post("/v1/next-best-action", json={"member_ids": ["m1", "m2", "m3", "m4"]},
                        headers=read_headers)  # fmt: skip

    assert fits.status_code == 200, fits.text
    assert over.status_code == 422, over.text
    (error,) = over.json()["detail"]
    assert error["field"] == "member_ids" and "serving.max_decision_members" in error["msg"]


def test_a_key_past_its_members_per_second_gets_429_with_retry_after(
    client: TestClient, serving_settings: Settings, read_headers: dict[str, str]
) -> None:
    """Given 1 member per second with bursts of 4 members, a 4-member call goes, the next
    call of that key (one member, GET) is 429 with Retry-After, another key still goes; the
    score routes are not limited."""
    limited = _limited(
        client, serving_settings, max_decision_members=4, decision_members_per_second=1
    )
    ids = {"member_ids": ["m1", "m2", "m3", "m4"]}
    other = {"X-API-Key": WRITE_KEY}

    first = limited.post("/v1/next-best-action", json=ids, headers=read_headers)
    again = limited.get("/v1/members/m5/next-best-action", headers=read_headers)
    another_key = limited.get("/v1/members/m5/next-best-action", headers=other)
    scores = limited.post("/v1/scores", json=ids, headers=read_headers)

    assert first.status_code == 200, first.text
    assert again.status_code == 429, again.text
    assert again.headers["retry-after"] == "1", again.headers
    assert "serving.decision_members_per_second" in again.json()["detail"]
    assert another_key.status_code == 200 and scores.status_code == 200


@pytest.mark.parametrize(("path", "method"), ROUTES)
def test_the_429_and_its_retry_after_are_documented(
    client: TestClient, path: str, method: str
) -> None:
    responses = client.app.openapi()["paths"][path][method]["responses"]  # type: ignore[attr-defined]

    assert "429" in responses, f"{method} {path} does not document 429"
    assert "Retry-After" in responses["429"]["headers"]
