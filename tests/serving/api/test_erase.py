"""`DELETE /v1/members/{member_id}` (issue 17, erasure): with a write key the member leaves the
online store, the published cards and the contact log at once, the erasure is recorded (a salted
hash) with the lake and files pending for the pipelines; a read key is refused."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.store import published_path
from memberscore import erasures
from memberscore.settings import Settings
from serving.api.routes.erasure import get_online_eraser
from serving.online.contact_log import ContactLog, Sent
from serving.online.erasure import PIPELINE_STORES


class FakeOnline:
    """The online store's eraser: the members it holds, and the calls it got."""

    def __init__(self, members: set[str]) -> None:
        self.members = members
        self.calls: list[list[str]] = []

    def __call__(self, settings: Settings, member_ids: Sequence[str]) -> tuple[int, int]:
        self.calls.append(list(member_ids))
        found = self.members & set(member_ids)
        self.members -= found
        return len(found), 10 * len(found)


@pytest.fixture
def online(client: TestClient) -> FakeOnline:
    fake = FakeOnline({"m1", "m2"})
    client.app.dependency_overrides[get_online_eraser] = lambda: fake  # type: ignore[attr-defined]
    return fake


def _sent(contact_id: str, member_id: str) -> Sent:
    when = datetime(2026, 5, 1, tzinfo=UTC)
    return Sent(contact_id, member_id, "benefit_reminder", "email", "treatment", when)


def test_a_write_key_erases_what_the_api_serves_and_records_the_rest_as_pending(
    client: TestClient,
    online: FakeOnline,
    contact_log: ContactLog,
    serving_settings: Settings,
    write_headers: dict[str, str],
) -> None:
    # Given contacts of m1 and m2 and published cards of both
    contact_log.record_sent(_sent("c1", "m1"))
    contact_log.record_sent(_sent("c2", "m2"))
    cards = published_path(serving_settings)
    cards.parent.mkdir(parents=True)
    pd.DataFrame({"member_id": ["m1", "m2"], "card": ["{}", "{}"]}).to_parquet(cards)

    # When m1 is erased
    answer = client.delete("/v1/members/m1", headers=write_headers)

    # Then the stores the API serves from no longer hold m1, and m2 is untouched
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["found"] is True
    assert body["removed"]["online store"] == 1 and body["removed"]["contact log"] == 1
    assert body["removed"]["published cards"] == 1
    assert body["pending"] == list(PIPELINE_STORES)
    assert "memberscore erase --pending" in body["detail"]
    assert online.calls == [["m1"]] and online.members == {"m2"}
    assert contact_log.history(["m1"]).empty
    assert len(contact_log.history(["m2"])) == 1
    assert pd.read_parquet(cards)["member_id"].tolist() == ["m2"]
    # ... and the erasure log holds m1's salted hash with the pipelines' stores pending
    data = serving_settings.data_dir
    key = erasures.salt(data)
    assert key is not None
    assert erasures.pending(data) == {erasures.member_hash(key, "m1"): list(PIPELINE_STORES)}
    assert "m1" not in erasures.log_path(data).read_text()


def test_an_unknown_member_is_not_an_error_and_is_recorded(
    client: TestClient,
    online: FakeOnline,
    write_headers: dict[str, str],
    serving_settings: Settings,
) -> None:
    answer = client.delete("/v1/members/nobody", headers=write_headers)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["found"] is False and not any(body["removed"].values()), body
    assert body["detail"].startswith("not found"), body["detail"]
    assert len(erasures.pending(serving_settings.data_dir)) == 1, "recorded for the pipelines"


def test_a_read_key_is_refused_and_nothing_is_erased(
    client: TestClient,
    online: FakeOnline,
    read_headers: dict[str, str],
    serving_settings: Settings,
) -> None:
    answer = client.delete("/v1/members/m1", headers=read_headers)

    assert answer.status_code == 403, answer.text
    assert "write" in answer.json()["detail"]
    assert online.calls == [] and not erasures.log_path(serving_settings.data_dir).exists()


def test_a_store_that_is_away_answers_503_and_the_request_stays_on_record(
    client: TestClient, write_headers: dict[str, str], serving_settings: Settings
) -> None:
    """The pending entry is written before any store is touched, naming every store."""
    from memberscore.errors import StoreUnavailable

    def away(settings: Settings, member_ids: Sequence[str]) -> tuple[int, int]:
        raise StoreUnavailable("the Redis online store cannot be reached")

    client.app.dependency_overrides[get_online_eraser] = lambda: away  # type: ignore[attr-defined]

    answer = client.delete("/v1/members/m1", headers=write_headers)

    assert answer.status_code == 503, answer.text
    (stores,) = erasures.pending(serving_settings.data_dir).values()
    assert "online store" in stores and "lake" in stores
