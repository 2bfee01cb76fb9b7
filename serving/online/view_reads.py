"""Rows of several feature views for many members, read straight from the layout Feast's
online stores write, with plain Python values: what `OnlineStore.online_read` and
`python_value` give together, at a fraction of the cost.

Feast's generic read turns every stored value into a `ValueProto` and, in SQLite, parses every
row's event time (one row per member and feature: 92 per member here); a 100-member read cost
tens of milliseconds of CPU in that alone. Here each distinct serialized value is decoded once
per read (most features of most members share a handful of values: 0, null, flags, tiers) and
each distinct stored time once. SQLite: one query per view, as Feast's; Redis: one pipelined
HMGET per member covering every view (the views share the member's hash), where Feast sends one
pipeline per view.

The answers are Feast's own (tests compare them with `online_read` on SQLite and Redis): per
view and member, (event time, feature name → value) or (None, None) when the store holds no
row; a Redis hash without the view's timestamp field is no row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

# One view's rows, aligned with the members asked for.
PlainRead = list[tuple[datetime | None, dict[str, Any] | None]]

_MISSING = object()


def python_value(value: Any) -> Any:
    """A Feast `ValueProto` as plain Python: None when unset, int/float/bool/str for scalars,
    a list for list types."""
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    found = getattr(value, kind)
    return list(found.val) if hasattr(found, "val") else found


class Decoder:
    """Serialized `ValueProto`s (and Redis' `Timestamp`s) as plain Python, each distinct
    serialization decoded once per decoder; lists are decoded afresh each time, so no two
    members share one."""

    def __init__(self) -> None:
        self._values: dict[bytes, Any] = {}
        self._times: dict[bytes, datetime] = {}

    def value(self, data: bytes | None) -> Any:
        """The plain value of `data`; None for an absent or empty one (Redis' missing field)."""
        if not data:
            return None
        found = self._values.get(data, _MISSING)
        if found is _MISSING:
            from feast.protos.feast.types.Value_pb2 import Value

            proto = Value()
            proto.ParseFromString(data)
            found = python_value(proto)
            if isinstance(found, list):
                return found
            self._values[data] = found
        return found

    def redis_time(self, data: bytes) -> datetime:
        """A Redis view timestamp field as Feast reads it (seconds + nanos, UTC)."""
        found = self._times.get(data)
        if found is None:
            from google.protobuf.timestamp_pb2 import Timestamp

            stamp = Timestamp()
            stamp.ParseFromString(data)
            seconds = stamp.seconds + stamp.nanos / 1_000_000_000.0
            found = self._times[data] = datetime.fromtimestamp(seconds, tz=UTC)
        return found


def sqlite_reads(
    connection: sqlite3.Connection, tables: Sequence[str], keys: Sequence[bytes]
) -> list[PlainRead]:
    """Per table (Feast's `<project>_<view>` tables) the rows of the serialized entity `keys`,
    in the order of `keys`. The query is Feast's, but the event time comes as stored text,
    converted once per distinct text the way the connection's `timestamp` converter does."""
    decoder, times = Decoder(), _SqliteTimes()
    marks = ",".join("?" * len(keys))
    reads: list[PlainRead] = []
    for table in tables:
        cursor = connection.execute(
            "SELECT entity_key, feature_name, value, CAST(event_ts AS TEXT) "
            f"FROM {_quote(table)} WHERE entity_key IN ({marks}) ORDER BY entity_key",
            list(keys),
        )
        found: dict[bytes, tuple[datetime | None, dict[str, Any]]] = {}
        for key, group in groupby(cursor.fetchall(), key=itemgetter(0)):
            rows = list(group)
            values = {name: decoder.value(data) for _, name, data, _ in rows}
            found[key] = (times.utc(rows[-1][3]), values)  # Feast's: the last row's time
        reads.append([found.get(key, (None, None)) for key in keys])
    return reads


class _SqliteTimes:
    """Stored event-time texts as aware UTC datetimes, as Feast's SQLite read gives them (the
    `timestamp` converter, then UTC), once per distinct text."""

    def __init__(self) -> None:
        self._seen: dict[str | None, datetime | None] = {}
        self._convert = sqlite3.converters.get("TIMESTAMP")

    def utc(self, text: str | None) -> datetime | None:
        if text in self._seen:
            return self._seen[text]
        moment: datetime | None = None
        if text is not None:
            raw = self._convert(text.encode()) if self._convert else datetime.fromisoformat(text)
            moment = raw.astimezone(UTC) if raw.tzinfo is not None else raw.replace(tzinfo=UTC)
        self._seen[text] = moment
        return moment


def redis_reads(
    client: Any,
    keys: Sequence[bytes],
    views: Sequence[tuple[str, Sequence[str], Sequence[bytes]]],
) -> list[PlainRead]:
    """Per view, given as (Feast's view name, feature names, their hash fields), the rows of
    the members' Redis hashes `keys` (Feast's entity key + project), in the order of `keys`:
    one HMGET per member for every view's fields and timestamp at once, in one pipeline."""
    fields: list[str | bytes] = []
    spans: list[tuple[int, int]] = []
    for name, _, hashed in views:
        spans.append((len(fields), len(fields) + len(hashed)))
        fields += [*hashed, f"_ts:{name}"]
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hmget(key, fields)
        replies = pipe.execute()
    decoder = Decoder()
    reads: list[PlainRead] = []
    for (start, stop), (_, names, _) in zip(spans, views, strict=True):
        read: PlainRead = []
        for reply in replies:
            stamp = reply[stop]
            if not stamp:
                read.append((None, None))
                continue
            values = {n: decoder.value(d) for n, d in zip(names, reply[start:stop], strict=True)}
            read.append((decoder.redis_time(stamp), values))
        reads.append(read)
    return reads


def _quote(identifier: str) -> str:
    """A SQLite identifier in double quotes (embedded quotes doubled), as Feast quotes it."""
    return '"' + identifier.replace('"', '""') + '"'
