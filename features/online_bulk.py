"""Bulk writes of snapshot rows into Feast's online stores (SQLite, Redis), in Feast's layout.

Feast's own write path (`FeatureStore.write_to_online_store` -> `online_write_batch`) builds one
protobuf object per feature value in Python and, on SQLite, runs one INSERT per value: about
15 us a value, i.e. 86 M values and many minutes for 1 M members. This module writes the same
bytes in bulk:

- values are encoded column by column (numpy for doubles; one encoding per distinct value for
  ints, strings and booleans) into the protobuf wire format of `feast.types.Value`, with nulls
  and NaN as the empty message, exactly as Feast serialises them;
- entity keys use Feast's v3 key serialisation, Redis field names Feast's own mmh3 helper;
- SQLite gets one `executemany` per feature view and batch, in primary-key order, inside one
  transaction; Redis gets one pipelined HSET per member holding every view's fields.

`tests/features/test_online_bulk.py` checks that the SQLite rows and Redis hashes are
byte-identical to what Feast's own writer stores, so a Feast upgrade that changes the layout
fails the tests instead of serving wrong values. Feast is imported inside the functions.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from feast import FeatureView
    from feast.repo_config import RepoConfig

DOUBLE_TAG = 0x29  # field 5 (double_val), wire type 1 (64-bit)
INT64_TAG = 0x20  # field 4 (int64_val), wire type 0 (varint)
STRING_TAG = 0x12  # field 2 (string_val), wire type 2 (length-delimited)
BOOL_TAG = 0x38  # field 7 (bool_val), wire type 0 (varint)
KINDS = ("float", "int", "string", "bool")
REDIS_PIPELINE_MEMBERS = 10_000  # HSETs per round trip: bounds the client's buffer (~30 MB)


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a signed 64-bit integer (negatives take 10 bytes)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def encode_scalar(value: Any, kind: str) -> bytes:
    """Serialised `feast.types.Value` of one non-null value of catalog kind `kind`."""
    if kind == "float":
        return bytes([DOUBLE_TAG]) + struct.pack("<d", float(value))
    if kind == "int":
        return bytes([INT64_TAG]) + varint(int(value))
    if kind == "string":
        data = str(value).encode("utf-8")
        return bytes([STRING_TAG]) + varint(len(data)) + data
    if kind == "bool":
        return bytes([BOOL_TAG, 1 if value else 0])
    raise ValueError(f"unknown feature kind {kind!r}; expected one of {', '.join(KINDS)}")


def encode_column(values: pd.Series, kind: str) -> list[bytes]:
    """Serialised Value protos of one column, one per row; null and NaN give b"" (no value)."""
    if kind == "float":
        return _encode_doubles(values)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.array([encode_scalar(u, kind) for u in uniques] + [b""], dtype=object)
    return table[codes].tolist()  # code -1 (null) picks the trailing b""


def _encode_doubles(values: pd.Series) -> list[bytes]:
    """Doubles as 9-byte messages (tag + little-endian IEEE 754), built in one numpy pass."""
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    buffer = np.empty((len(numbers), 9), dtype=np.uint8)
    buffer[:, 0] = DOUBLE_TAG
    buffer[:, 1:] = numbers.astype("<f8").view(np.uint8).reshape(-1, 8)
    encoded: list[bytes] = buffer.view("V9").ravel().tolist()  # void keeps trailing zero bytes
    for i in np.flatnonzero(np.isnan(numbers)).tolist():
        encoded[i] = b""
    return encoded


def value_texts(values: pd.Series, kind: str) -> list[str | None]:
    """SQLite's `value_text` column as Feast fills it: str() of the value, None when null."""
    if kind == "float":
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        texts: list[str | None] = list(map(str, numbers.tolist()))
        for i in np.flatnonzero(np.isnan(numbers)).tolist():
            texts[i] = None
        return texts
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    convert = {"int": int, "string": str, "bool": bool}[kind]
    table = np.array([str(convert(u)) for u in uniques] + [None], dtype=object)
    return table[codes].tolist()


def entity_keys(member_ids: pd.Series, join_key: str) -> list[bytes]:
    """Feast's v3 serialised entity keys of single string join-key values."""
    from feast.infra.key_encoding_utils import serialize_entity_key_prefix
    from feast.protos.feast.types.Value_pb2 import ValueType

    prefix = serialize_entity_key_prefix([join_key], 3) + struct.pack("<I", ValueType.STRING)
    return [
        prefix + struct.pack("<I", len(data)) + data
        for data in (m.encode("utf-8") for m in member_ids.astype(str).tolist())
    ]


def feature_kinds(view: FeatureView) -> list[tuple[str, str]]:
    """(feature name, kind) of a view's features, kind in KINDS."""
    from feast.value_type import ValueType

    kinds = {
        ValueType.DOUBLE: "float",
        ValueType.INT64: "int",
        ValueType.STRING: "string",
        ValueType.BOOL: "bool",
    }
    out = []
    for field in view.features:
        value_type = field.dtype.to_value_type()
        if value_type not in kinds:
            raise ValueError(f"bulk writes support {KINDS}, not {value_type} ({field.name})")
        out.append((field.name, kinds[value_type]))
    return out


def _factorized(stamps: pd.Series, convert: Callable[[pd.Timestamp], Any]) -> list[Any]:
    """`convert` applied once per distinct timestamp, spread back over the rows."""
    codes, uniques = pd.factorize(stamps)
    table = np.array([convert(pd.Timestamp(u)) for u in uniques], dtype=object)
    return table[codes].tolist()


def sqlite_timestamps(stamps: pd.Series) -> list[int]:
    """Event timestamps as Feast's SQLite adapter stores them: `int(naive_utc.timestamp())`."""
    return _factorized(
        stamps, lambda t: int(t.tz_convert("UTC").tz_localize(None).to_pydatetime().timestamp())
    )


def redis_timestamps(stamps: pd.Series) -> list[bytes]:
    """Event timestamps as Feast stores them in Redis: a serialised protobuf Timestamp."""
    from google.protobuf.timestamp_pb2 import Timestamp

    def encode(stamp: pd.Timestamp) -> bytes:
        proto = Timestamp()
        proto.FromDatetime(stamp.tz_convert("UTC").to_pydatetime())
        return proto.SerializeToString()

    return _factorized(stamps, encode)


def _check_plain(config: RepoConfig) -> None:
    """Refuse store options whose layout this writer does not reproduce."""
    online = config.online_store
    for option in ("vector_enabled", "enable_openai_compatible_store", "key_ttl_seconds"):
        if getattr(online, option, None):
            raise ValueError(f"bulk online writes do not support online_store.{option}")
    if getattr(config.registry, "enable_online_feature_view_versioning", False):
        raise ValueError("bulk online writes do not support feature view versioning")


def sqlite_path(config: RepoConfig) -> Path:
    """The SQLite online store file, resolved against the repo folder like Feast does."""
    path = Path(config.online_store.path)
    return path if path.is_absolute() or config.repo_path is None else config.repo_path / path


def write_sqlite(
    config: RepoConfig,
    views: Sequence[FeatureView],
    frame: pd.DataFrame,
    *,
    join_key: str,
    timestamp: str,
) -> None:
    """Upsert every row of `frame` (one per member) into the SQLite tables of `views`.

    Tables must exist (`feast apply` creates them). One transaction for the whole frame.
    """
    from feast.infra.online_stores.helpers import compute_table_id

    _check_plain(config)
    frame = frame.sort_values(join_key, ignore_index=True)  # primary-key order: cheap appends
    keys = np.array(entity_keys(frame[join_key], join_key), dtype=object)
    stamps = np.array(sqlite_timestamps(frame[timestamp]), dtype=object)
    con = sqlite3.connect(sqlite_path(config))
    try:
        con.execute("PRAGMA synchronous = OFF")  # the snapshot files stay the source of truth
        with con:
            for view in views:
                _write_sqlite_view(
                    con, compute_table_id(config.project, view), view, frame, keys, stamps
                )
    finally:
        con.close()


def _write_sqlite_view(
    con: sqlite3.Connection,
    table: str,
    view: FeatureView,
    frame: pd.DataFrame,
    keys: np.ndarray,
    stamps: np.ndarray,
) -> None:
    """One executemany for a view: rows ordered by (entity key, feature name)."""
    features = sorted(feature_kinds(view))
    names = np.array([name for name, _ in features], dtype=object)
    values = np.empty((len(frame), len(features)), dtype=object)
    texts = np.empty((len(frame), len(features)), dtype=object)
    for j, (name, kind) in enumerate(features):
        values[:, j] = encode_column(frame[name], kind)
        texts[:, j] = value_texts(frame[name], kind)
    width = len(features)
    quoted = '"' + table.replace('"', '""') + '"'
    con.executemany(
        f"INSERT INTO {quoted} (entity_key, feature_name, value, value_text, event_ts, "
        "created_ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE "
        "SET value = excluded.value, value_text = excluded.value_text, "
        "event_ts = excluded.event_ts, created_ts = excluded.created_ts",
        zip(
            np.repeat(keys, width).tolist(),
            np.tile(names, len(frame)).tolist(),
            values.ravel().tolist(),
            texts.ravel().tolist(),
            np.repeat(stamps, width).tolist(),
            repeat(None),
        ),
    )


def write_redis(
    config: RepoConfig,
    views: Sequence[FeatureView],
    frame: pd.DataFrame,
    *,
    join_key: str,
    timestamp: str,
) -> None:
    """Write every row of `frame` (one per member) as one HSET of all `views`' fields.

    Same keys and fields as Feast's Redis store with `skip_dedup`: the member's hash gets
    `_ts:<view>` and mmh3("<view>:<feature>") fields; other fields of the hash are kept.
    """
    from feast.infra.online_stores.helpers import _mmh3
    from feast.infra.online_stores.redis import RedisOnlineStore

    _check_plain(config)
    suffix = config.project.encode("utf-8")
    keys = [key + suffix for key in entity_keys(frame[join_key], join_key)]
    stamps = redis_timestamps(frame[timestamp])
    columns: list[Any] = []
    for view in views:
        columns += [repeat(f"_ts:{view.name}".encode()), stamps]
        for name, kind in feature_kinds(view):
            columns += [repeat(_mmh3(f"{view.name}:{name}")), encode_column(frame[name], kind)]
    client = RedisOnlineStore()._get_client(config.online_store)
    rows = zip(keys, zip(*columns, strict=False), strict=False)
    # Two threads: one packs its pipeline (holding the GIL) while the other waits on Redis.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: list[Future[None]] = []
        while chunk := list(islice(rows, REDIS_PIPELINE_MEMBERS)):
            pending.append(pool.submit(_send_hsets, client, chunk))
            if len(pending) >= 2:
                pending.pop(0).result()
        for future in pending:
            future.result()


def _send_hsets(client: Any, chunk: list[tuple[bytes, tuple[bytes, ...]]]) -> None:
    """One pipelined round trip of HSET key field value ... per member."""
    with client.pipeline(transaction=False) as pipe:
        for key, arguments in chunk:
            pipe.execute_command("HSET", key, *arguments)
        pipe.execute()


def delete_sqlite(
    config: RepoConfig, member_ids: Sequence[str], *, join_key: str
) -> tuple[int, int]:
    """Delete the rows of `member_ids` from every table of the project in the SQLite online
    store (each feature view's, the published cards' included, registered or not); returns
    (members found, rows deleted). `secure_delete` overwrites the freed bytes, so the deleted
    entity keys (which spell the id) do not linger in the file; no file, nothing to delete."""
    path = sqlite_path(config)
    if not path.is_file() or not member_ids:
        return 0, 0
    keys = entity_keys(pd.Series(list(member_ids), dtype="string"), join_key)
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA secure_delete = ON")
        tables = [
            name
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name.startswith(f"{config.project}_")
            and "entity_key" in {row[1] for row in con.execute(f'PRAGMA table_info("{name}")')}
        ]
        found, deleted = set(), 0
        with con:
            for table in tables:
                quoted = '"' + table.replace('"', '""') + '"'
                for key in keys:
                    count = con.execute(f"DELETE FROM {quoted} WHERE entity_key = ?", (key,))
                    if count.rowcount:
                        found.add(key)
                        deleted += count.rowcount
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a WAL would still hold the rows
    finally:
        con.close()
    return len(found), deleted


def delete_redis(
    config: RepoConfig, member_ids: Sequence[str], *, join_key: str
) -> tuple[int, int]:
    """Delete the hashes of `member_ids` from the Redis online store: Feast keeps one hash per
    member and project (key: serialised entity key + project) holding every view's fields, the
    published cards' included. Returns (members found, fields deleted)."""
    from feast.infra.online_stores.redis import RedisOnlineStore

    if not member_ids:
        return 0, 0
    suffix = config.project.encode("utf-8")
    keys = [key + suffix for key in entity_keys(pd.Series(list(member_ids)), join_key)]
    client = RedisOnlineStore()._get_client(config.online_store)
    with client.pipeline(transaction=True) as pipe:
        for key in keys:
            pipe.hlen(key)
        pipe.delete(*keys)
        *fields, found = pipe.execute()
    return int(found), int(sum(fields))
