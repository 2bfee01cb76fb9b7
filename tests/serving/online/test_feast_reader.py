"""The fast online read: Feast values to plain Python, per-view reads merged per member."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feast.protos.feast.types.Value_pb2 import Null, StringList, Value

from memberscore.settings import Settings
from serving.online import feast_reader as feast_online
from serving.online.feast_reader import (
    FeastReader,
    _Opened,
    member_features,
    published_cards,
    python_value,
)

EARLY = datetime(2026, 5, 25, tzinfo=UTC)
LATE = datetime(2026, 6, 1, tzinfo=UTC)


def test_python_value_gives_plain_scalars_lists_and_none() -> None:
    assert python_value(Value(double_val=1.5)) == 1.5
    assert python_value(Value(int64_val=7)) == 7 and type(python_value(Value(int64_val=7))) is int
    assert python_value(Value(bool_val=False)) is False
    assert python_value(Value(string_val="gold")) == "gold"
    assert python_value(Value(string_list_val=StringList(val=["a", "b"]))) == ["a", "b"]
    assert python_value(Value()) is None, "an unset value is missing"
    assert python_value(Value(null_val=Null.NULL)) is None


def test_member_features_merges_views_and_leaves_unknown_members_out() -> None:
    # Given two views read for four members: m2 is in neither view (no row; Redis through
    # `online_read` answers a hash without the view's fields and the epoch), m1 only in the
    # first, m0 in both (its rfm row all null), m4 only in Redis' second view
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rfm = [(EARLY, {"recency_days": 3.0}), (LATE, {"recency_days": None})]
    rfm += [(None, None), (epoch, {"recency_days": None})]
    profile = [(None, None), (LATE, {"tier": "gold"}), (epoch, {"tier": None})]
    profile.append((LATE, {"tier": "basic"}))

    found = member_features(["m1", "m0", "m2", "m4"], [rfm, profile])

    assert found.rows == {
        "m1": {"recency_days": 3.0},
        "m0": {"recency_days": None, "tier": "gold"},
        "m4": {"tier": "basic"},
    }, "features of every view a member has (null ones as None), none for unknown members"
    assert found.as_of == {"m1": EARLY, "m0": LATE, "m4": LATE}, "the latest cutoff among views"


def test_published_cards_carry_the_cutoff_of_the_features_row() -> None:
    """A card's features cutoff is the time of the member's row in the feature view read,
    even when every feature of that view is null for the member (its card stays current);
    members without a card are left out."""
    card = {"card": "{}", "models": "k", "observed": "{}"}
    cards = [(LATE, card), (LATE, card), (None, None)]
    tags = [(LATE, {"tags": None}), (EARLY, {"tags": None}), (LATE, None)]

    found = published_cards(["m1", "m2", "m3"], cards, tags)

    assert sorted(found) == ["m1", "m2"]
    assert found["m1"].current("k"), "all-null features row: same cutoff, current"
    assert not found["m2"].current("k"), "features of another cutoff"


def test_current_reopens_a_store_dropped_by_a_failed_request_meanwhile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a reader whose open store is stale, and a request that fails (dropping the store)
    # while this thread waits for the open lock
    reader = FeastReader(Settings(data_dir=tmp_path))
    stale = _Opened(
        store=None, online=None, views=(), listed_at=float("-inf"), published=None, smallest=None
    )
    fresh = _Opened(
        store="store", online="online", views=(), listed_at=0.0, published=None, smallest=None
    )
    reader._opened = stale
    previous: list[_Opened | None] = []

    def fake_open(settings: Settings, before: _Opened | None, timeout: float) -> _Opened:
        previous.append(before)
        return fresh

    @contextmanager
    def lock_after_failure() -> Iterator[None]:
        reader._opened = None  # what `read` does on StoreUnavailable
        yield

    monkeypatch.setattr(feast_online, "_open", fake_open)
    monkeypatch.setattr(reader, "_open_lock", lock_after_failure())

    # When this thread asks for the current store
    current = reader._current()

    # Then it opens the store afresh rather than handing back nothing
    assert current is fresh, "a store dropped meanwhile is opened again, never returned as None"
    assert previous == [None], "the dropped store is opened afresh, not refreshed"
    assert reader._opened is fresh, "the reopened store is kept for the next requests"


def test_redis_probe_reads_the_options_of_the_url_and_waits_the_store_timeout() -> None:
    """Issue 14 finding 4: the ping before each production read uses `redis_url`'s options
    (password, db) as Feast does, waits at most `serving.store_timeout_seconds` on its socket
    and never retries."""
    probe = feast_online._redis_probe("10.0.0.7:6390,db=3,password=pw", 0.25)

    options = probe.connection_pool.connection_kwargs
    assert (options["host"], options["port"], options["db"]) == ("10.0.0.7", 6390, 3)
    assert options["password"] == "pw", "a password-protected Redis must be pinged with it"
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.25
    assert probe.get_retry().get_retries() == 0, "a ping that fails must fail at once"
