"""The score API over a real (tiny) Feast store: snapshot → apply → materialize → online read.

Models and domain rules are still the in-test fakes (see conftest.py); the features come from
the real `features.store` through the serving adapter.
"""

from __future__ import annotations

import sqlite3
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features import build, store
from memberscore.errors import StoreUnavailable
from memberscore.settings import Settings
from serving.api.deps import get_feature_reader
from serving.online.feast_reader import FeastReader, _entity_key, _plain, stored
from tests.serving.api.test_store_timeouts import with_timeout


@pytest.fixture(scope="module")
def feast_settings(
    tmp_path_factory: pytest.TempPathFactory, snapshot: pd.DataFrame, families: dict
) -> Settings:
    """A local-profile Feast store in a temp folder with the conftest members materialized."""
    root = tmp_path_factory.mktemp("serving_feast")
    settings = Settings(
        data_dir=root / "data", feast_repo=root / "feature_repo", feast_project="serving_test"
    )
    build.write_snapshot(snapshot, store.snapshot_path(settings, snapshot["as_of"][0].date()))
    store.apply(settings, families)
    store.materialize(settings)
    return settings


def test_scores_from_the_real_online_store(
    client: TestClient, feast_settings: Settings, read_headers: dict[str, str]
) -> None:
    """Given the same members in Feast as in the in-memory fake store, the scores are the same,
    and the freshness is the snapshot cutoff."""
    ids = {"member_ids": ["m3", "n1", "ghost"]}
    from_fake = client.post("/v1/scores", json=ids, headers=read_headers).json()

    reader = FeastReader(feast_settings)
    client.app.dependency_overrides[get_feature_reader] = lambda: reader
    body = client.post("/v1/scores", json=ids, headers=read_headers).json()

    assert body["not_found"] == ["ghost"]
    (m3, n1), (fake_m3, fake_n1) = body["scores"], from_fake["scores"]
    assert m3["features_as_of"].startswith("2026-06-01T00:00:00")
    assert m3["churn"] == fake_m3["churn"], "same features must give the same churn score"
    assert m3["spend"] == fake_m3["spend"] and m3["reasons"] == fake_m3["reasons"]
    assert m3["tags"] == ["newsletter"] and m3["rfm_segment"] == "champions"
    assert n1["insufficient_history"] is True
    assert n1["activation"] == fake_n1["activation"]


def test_unknown_member_and_readiness_with_the_real_store(
    client: TestClient, feast_settings: Settings, read_headers: dict[str, str]
) -> None:
    reader = FeastReader(feast_settings)
    client.app.dependency_overrides[get_feature_reader] = lambda: reader

    assert client.get("/v1/members/ghost/scores", headers=read_headers).status_code == 404
    assert client.get("/readyz").json() == {"status": "ok", "reasons": []}


def test_fast_read_equals_feasts_get_online_features(feast_settings: Settings) -> None:
    """The reader's own online_read path gives the values `get_online_features` gives."""
    ids = ["m0", "m1", "m3", "n1", "ghost"]
    reference = store.online_features(feast_settings, ids).set_index(store.JOIN_KEY)

    found = FeastReader(feast_settings).read(ids, ())

    assert sorted(found.rows) == ["m0", "m1", "m3", "n1"], "ghost is unknown"
    for member, row in found.rows.items():
        expected = reference.loc[member]
        assert found.as_of[member] == expected[store.AS_OF].to_pydatetime()
        for name, value in row.items():
            want = expected[name]
            if pd.isna(want):
                assert value is None, f"{member}.{name}: missing must stay missing"
            else:
                assert value == want, f"{member}.{name}: {value!r} != {want!r}"


def reads_equal_feasts(settings: Settings, ids: list[str]) -> None:
    """The reader's rows of every view (features and published cards) are those of Feast's
    own `online_read` with plain values: same members in the same order, times and values."""
    reader = FeastReader(settings)
    reader.read(ids[:1], ())
    opened = reader._opened
    assert opened is not None and opened.layouts, "the store is read through its layout"
    views = [*opened.views, *([opened.published] if opened.published else [])]
    keys = [_entity_key(m) for m in ids]

    found = opened.read(ids, views)

    for view, read in zip(views, found, strict=True):
        expected = [_plain(r) for r in opened.online.online_read(opened.store.config, view, keys)]
        assert len(read) == len(ids), f"{view.name}: one row per member asked for"
        for member, got, want in zip(ids, read, expected, strict=True):
            assert stored(got) == stored(want), f"{view.name}, {member}: {got} != {want}"


def test_reads_equal_feasts_online_read(feast_settings: Settings) -> None:
    """SQLite: every view's rows as Feast reads them, for members in any order, repeated,
    unknown, with all-null views and list values (the cards' view in `published_like_live`)."""
    reads_equal_feasts(feast_settings, ["n1", "m3", "ghost", "m0", "m3", "m1", "m2"])


def test_a_failed_read_is_503_and_the_next_read_opens_the_store_afresh(
    feast_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = FeastReader(feast_settings)
    assert "m3" in reader.read(["m3"], ()).rows
    opened = reader._opened
    assert opened is not None

    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    # Given the open store's connection fails once
    monkeypatch.setattr(opened.online, "_get_conn", broken)
    with pytest.raises(StoreUnavailable, match="disk I/O error"):
        reader.read(["m3"], ())

    # Then the next read opens a new store and answers
    assert "m3" in reader.read(["m3"], ()).rows
    assert reader._opened is not opened, "the failed store must not be reused"


def test_published_cards_through_the_real_online_store(
    client: TestClient, feast_settings: Settings, families: dict, read_headers: dict[str, str]
) -> None:
    """Cards written to the real online store (their own view, Feast's layout) are read back
    current, with the cutoff of the member's features, and answer as live scoring does."""
    published_like_live(client, feast_settings, families, read_headers)


def published_like_live(
    client: TestClient, settings: Settings, families: dict, read_headers: dict[str, str]
) -> None:
    """Publish cards of m3 and n1 into the store of `settings` (fake models and domain) and
    check they are read back current and answer byte for byte as live scoring."""
    from pipelines.publish import cards_frame
    from serving.api.deps import get_domain, get_model_holder
    from serving.scoring.context import ScoringContext

    reader = FeastReader(settings)
    client.app.dependency_overrides[get_feature_reader] = lambda: reader
    ids = {"member_ids": ["m3", "n1", "ghost"]}
    live = client.post("/v1/scores", json=ids, headers=read_headers).content
    assert reader.published(["m3"]) == {}, "nothing published yet"

    bundle = client.app.dependency_overrides[get_model_holder]().current
    domain = client.app.dependency_overrides[get_domain]()
    context = ScoringContext(bundle=bundle, reader=reader, domain=domain, settings=settings)
    frame = cards_frame(["m3", "n1", "ghost"], context)
    store.write_published(store.apply_published(settings), settings, frame)
    reader = FeastReader(settings)  # a reader opened before the publish re-lists later
    client.app.dependency_overrides[get_feature_reader] = lambda: reader
    cards = reader.published(["m3", "n1", "ghost"])

    assert sorted(cards) == ["m3", "n1"] and len(frame) == 2
    assert all(card.current(frame["models"][0]) for card in cards.values())
    assert client.post("/v1/scores", json=ids, headers=read_headers).content == live
    views = store.applied_views(store.feature_store(settings))
    assert [v.name for v in views] == sorted(families), "the cards' view is no feature view"
    reads_equal_feasts(settings, ["ghost", "n1", "m3"])


def test_null_features_are_read_as_none(feast_settings: Settings, families: dict) -> None:
    """A member's view whose features are all null (btyd of a member who never ordered) is
    read as those features with None, not as missing columns (the uplift model needs them)."""
    row = FeastReader(feast_settings).read(["n1"], ()).rows["n1"]
    assert set(row) == {f.name for features in families.values() for f in features}
    assert row["btyd_p_alive"] is None


def test_a_locked_sqlite_store_is_503_within_the_store_timeout(feast_settings: Settings) -> None:
    """Issue 14 finding 4 (local profile): while a writer holds the SQLite online store's lock,
    a read gives up after `serving.store_timeout_seconds` (the busy timeout), not after
    SQLite's default 5 s, and reads again once the lock is gone."""
    timeout = 0.2
    reader = FeastReader(with_timeout(feast_settings, timeout))
    assert "m3" in reader.read(["m3"], ()).rows, "the store answers before the lock"

    # Given another process holds the database's exclusive lock (as a long write would)
    writer = sqlite3.connect(store.feast_data_dir(feast_settings) / "online.db")
    writer.isolation_level = None
    writer.execute("BEGIN EXCLUSIVE")
    started = time.perf_counter()
    try:
        with pytest.raises(StoreUnavailable, match="database is locked"):
            reader.read(["m3"], ())
        elapsed = time.perf_counter() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    # Then the read gave up within the timeout, and the store answers again afterwards
    assert elapsed < timeout + 1.0, f"a locked store answered after {elapsed:.2f} s"
    assert "m3" in reader.read(["m3"], ()).rows, "reads recover once the lock is released"
