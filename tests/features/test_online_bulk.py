"""Bulk online writes (`features.online_bulk`) store exactly what Feast's own writer stores.

Each store is written twice with the same frames, once through Feast's
`FeatureStore.write_to_online_store` and once in bulk, and the stored bytes are compared: SQLite
rows of every view table, Redis hashes of every member. A Feast upgrade that changes the online
layout makes these tests fail rather than letting the bulk path serve wrong values.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features import online_bulk, store
from memberscore.settings import Settings

MEMBERS = ["m0000001", "m0000002", "m0000003", "m0000004", "mé-005"]


def tricky_frame(as_of: str, seed: int) -> pd.DataFrame:
    """A small catalog-shaped frame with nulls, NaN, -0.0, inf, negative and huge ints."""
    from features.catalog import FAMILIES, PANDAS_DTYPES

    rng = np.random.default_rng(seed)
    n = len(MEMBERS)
    frame = pd.DataFrame({"member_id": pd.array(MEMBERS, dtype="string")})
    frame["as_of"] = pd.Series(pd.Timestamp(as_of, tz="UTC"), index=frame.index)
    frame["as_of"] = frame["as_of"].astype("datetime64[us, UTC]")
    special = {
        "float": [0.1, -0.0, np.inf, None, 1e300],
        "int": [0, -1, 2**62, None, 127],
        "string": ["", "é ü", "a" * 200, None, "x"],
        "bool": [True, False, None, True, False],
    }
    for i, feature in enumerate(f for family in FAMILIES.values() for f in family):
        values = list(special[feature.dtype])
        values = values[i % n :] + values[: i % n]  # vary which member gets which edge case
        if feature.dtype == "float":
            values = [v if v is None else v * rng.uniform(0.5, 2) for v in values]
        frame[feature.name] = pd.Series(values, dtype=PANDAS_DTYPES[feature.dtype])
    return frame


def write_both(
    feast_settings: Settings, bulk_settings: Settings, frames: list[pd.DataFrame]
) -> list[Any]:
    """Apply both stores, write `frames` in order through Feast and in bulk; returns the views."""
    for settings in (feast_settings, bulk_settings):
        store.apply(settings)
    reference = store.feature_store(feast_settings)
    bulk = store.feature_store(bulk_settings)
    views = store.applied_views(bulk)
    for frame in frames:
        for view in views:
            columns = ["member_id", "as_of", *(f.name for f in view.features)]
            reference.write_to_online_store(view.name, frame[columns])
        writer = {"sqlite": online_bulk.write_sqlite, "redis": online_bulk.write_redis}[
            bulk.config.online_store.type
        ]
        writer(bulk.config, views, frame, join_key="member_id", timestamp="as_of")
    return views


def test_encode_column_matches_feast_protobufs() -> None:
    """Every kind, including nulls and edge values, encodes to Feast's ValueProto bytes."""
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    cases = {
        "float": (pd.Series([1.5, -0.0, np.nan, np.inf, 1e-300]), ValueType.DOUBLE),
        "int": (pd.Series([0, -1, 2**63 - 1, None, 300], dtype="Int64"), ValueType.INT64),
        "string": (pd.Series(["", "é", None, "b" * 300], dtype="string"), ValueType.STRING),
        "bool": (pd.Series([True, None, False], dtype="boolean"), ValueType.BOOL),
    }
    for kind, (values, value_type) in cases.items():
        python = [None if pd.isna(v) else v for v in values.astype(object)]
        expected = [
            p.SerializeToString() for p in python_values_to_proto_values(python, value_type)
        ]
        assert online_bulk.encode_column(values, kind) == expected, f"{kind} bytes differ"


def test_entity_keys_match_feast_serialization() -> None:
    """Entity keys are Feast's v3 serialisation of the string join key."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    expected = [
        serialize_entity_key(
            EntityKey(join_keys=["member_id"], entity_values=[Value(string_val=m)]), 3
        )
        for m in MEMBERS
    ]
    assert online_bulk.entity_keys(pd.Series(MEMBERS), "member_id") == expected


def test_sqlite_rows_equal_feasts_own_writes(tmp_path: Path) -> None:
    """Given the same two writes (the second overwrites the first for most members), the SQLite
    tables hold byte-identical rows whether Feast or the bulk writer wrote them."""
    feast_side = Settings(data_dir=tmp_path / "feast", feast_repo=tmp_path / "repo_feast")
    bulk_side = Settings(data_dir=tmp_path / "bulk", feast_repo=tmp_path / "repo_bulk")
    first = tricky_frame("2024-06-03", seed=1)
    second = tricky_frame("2024-06-10", seed=2).iloc[1:]  # member 1 keeps its first row
    views = write_both(feast_side, bulk_side, [first, second])
    paths = [store.feast_data_dir(s) / "online.db" for s in (feast_side, bulk_side)]
    for view in views:
        table = f"{feast_side.feast_project}_{view.name}"
        rows = []
        for path in paths:
            with sqlite3.connect(path) as con:
                rows.append(con.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall())
        assert len(rows[0]) == len(MEMBERS) * len(view.features), f"{table}: one row a value"
        assert rows[1] == rows[0], f"{table}: bulk rows differ from Feast's"


@pytest.fixture
def redis_pair(tmp_path: Path) -> Iterator[tuple[Settings, Settings]]:
    """Two production-profile stores with their own Feast projects; their keys are removed."""
    import psycopg
    import redis

    base = Settings()
    host, _, port = base.redis_url.partition(":")
    try:
        redis.Redis(host=host, port=int(port or 6379), socket_connect_timeout=2).ping()
        psycopg.connect(base.postgres_url, connect_timeout=2).close()
    except (redis.exceptions.RedisError, psycopg.Error) as error:
        pytest.skip(f"Redis or PostgreSQL on 127.0.0.1 not reachable: {error}")
    schema = f"msbulk_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base.postgres_url, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    pair = tuple(
        Settings(
            data_dir=tmp_path / side,
            feast_repo=tmp_path / f"repo_{side}",
            profile="production",
            feast_project=f"{schema}_{side}",
            postgres_url=f"{base.postgres_url}?options=-csearch_path%3D{schema}",
        )
        for side in ("feast", "bulk")
    )
    try:
        yield pair  # type: ignore[misc]
    finally:
        for settings in pair:
            store.feature_store(settings).teardown()
        with psycopg.connect(base.postgres_url, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.production
def test_redis_hashes_equal_feasts_own_writes(redis_pair: tuple[Settings, Settings]) -> None:
    """Against the real Redis: every member's hash holds the same fields and bytes whether
    Feast or the bulk writer wrote it, and get_online_features reads the bulk values back."""
    import redis

    feast_side, bulk_side = redis_pair
    first = tricky_frame("2024-06-03", seed=1)
    second = tricky_frame("2024-06-10", seed=2).iloc[1:]
    write_both(feast_side, bulk_side, [first, second])
    host, _, port = bulk_side.redis_url.partition(":")
    client = redis.Redis(host=host, port=int(port or 6379))
    keys = online_bulk.entity_keys(pd.Series(MEMBERS), "member_id")
    for member, key in zip(MEMBERS, keys, strict=True):
        stock = client.hgetall(key + feast_side.feast_project.encode())
        bulk = client.hgetall(key + bulk_side.feast_project.encode())
        assert stock, f"Feast wrote nothing for {member}"
        assert bulk == stock, f"{member}: bulk hash differs from Feast's"
    online = store.online_features(bulk_side, MEMBERS[:2])
    assert online["as_of"].tolist() == [first["as_of"][0], second["as_of"].iloc[0]], (
        "member 1 keeps its first snapshot, member 2 gets the second"
    )
