"""`memberscore erase` in the production profile (issue 17, erasure): against the real Redis
online store and PostgreSQL (Feast registry, contact log, consent register) the member leaves
every store; other members' Redis hashes and PostgreSQL rows are untouched. Skipped when the
services are absent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from features import store
from features.online_bulk import entity_keys
from memberscore.settings import Settings
from pipelines import erase
from pipelines.batch import job
from serving.online.consent import TABLE_NAME as CONSENT_TABLE
from serving.online.contact_log import TABLE_NAME, database_url
from tests.features.test_store import services_reachable
from tests.pipelines.erase_world import (
    World,
    add_contacts_and_quarantine,
    build_world,
    files_naming,
    listed_members,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Given the erasure tests' programme in a unique Feast project (Redis keys) and
    PostgreSQL schema (registry, contact log); both removed afterwards."""
    import psycopg

    base = Settings()
    reason = services_reachable(base)
    if reason is not None:
        pytest.skip(f"production services not reachable: {reason}")
    run_id = f"mserase_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base.postgres_url, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {run_id}")
    root = tmp_path_factory.mktemp("erase-production")
    settings = Settings(
        data_dir=root / "data",
        feast_repo=root / "feature_repo",
        profile="production",
        feast_project=run_id,
        postgres_url=f"{base.postgres_url}?options=-csearch_path%3D{run_id}",
        mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_artifact_root=root / "mlartifacts",
    )
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            yield build_world(settings, root / "export", monkeypatch)
    finally:
        store.feature_store(settings).teardown()  # drops the project's Redis keys
        with psycopg.connect(base.postgres_url, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {run_id} CASCADE")


def _redis_hashes(settings: Settings) -> dict[bytes, dict[bytes, bytes]]:
    """Every hash of the Feast project in Redis, by key."""
    import redis

    host, _, port = settings.redis_url.partition(":")
    client = redis.Redis(host=host, port=int(port or 6379))
    pattern = b"*" + settings.feast_project.encode()
    return {key: client.hgetall(key) for key in client.scan_iter(match=pattern)}


def _contact_rows(settings: Settings, member_id: str, table: str = TABLE_NAME) -> int:
    """Rows of `member_id` in a table of the contact log's PostgreSQL database."""
    engine = sa.create_engine(database_url(settings))
    with engine.connect() as con:
        query = sa.text(f"SELECT count(*) FROM {table} WHERE member_id = :m")
        count = int(con.execute(query, {"m": member_id}).scalar_one())
    engine.dispose()
    return count


@pytest.mark.production
def test_erase_in_the_production_profile_leaves_no_trace(world: World) -> None:
    settings = world.settings
    target, other = listed_members(world)[:2]
    add_contacts_and_quarantine(world, [target, other])
    hashes = _redis_hashes(settings)
    (target_key, other_key) = (
        key + settings.feast_project.encode()
        for key in entity_keys(pd.Series([target, other]), store.JOIN_KEY)
    )
    assert target_key in hashes and _contact_rows(settings, target) == 1, "the world holds it"
    other_before = hashes[other_key]

    # When the member is erased
    report = erase.erase(settings, [target])

    # Then Redis holds no hash of it (features and published cards), PostgreSQL no contact
    removed = {name: sum(c.values()) for name, c in report.removed.items()}
    assert removed["online store"] == 1 and removed["contact log"] == 1, removed
    after = _redis_hashes(settings)
    assert not [k for k in after if target.encode() in k], "no Redis key spells the id"
    assert not [k for k, v in after.items() if any(target.encode() in x for x in v.values())]
    assert after[other_key] == other_before, "the other member's hash is untouched"
    assert _contact_rows(settings, target) == 0
    assert _contact_rows(settings, other) == 1
    assert _contact_rows(settings, target, CONSENT_TABLE) == 0
    assert _contact_rows(settings, other, CONSENT_TABLE) == 1
    # ... and nothing under the data dir names it; the batch run still verifies
    assert not files_naming(settings.data_dir, target)
    assert job.verify(world.batch_out).ok
    assert store.online_features(settings, [target])["as_of"].isna().all()
