"""The Feast online store as the score API's feature reader: one open store per process.

Opening a `FeatureStore` costs about 25 ms and `get_online_features` several ms more per call
(registry look-ups, response protobufs, a DataFrame). The request path here skips both: the
store is opened once, its feature views are listed once (and again every
`VIEWS_REFRESH_SECONDS`, so a new `features apply` is picked up) with where each keeps its rows,
and each request reads those rows straight from the layout Feast writes
(`serving.online.view_reads`: one SQLite query per view, or one pipelined Redis HMGET per member
for every view at once), values as plain Python. Published score cards
(`serving.scoring.cards`) are read the same way: their view, and the smallest feature view for
the cutoff the store holds. Another online store type is read through its own `online_read`.

Like `get_online_features`, these reads return the latest materialized values whatever their
age (a view's TTL only flags them); `as_of` says how old they are.

No read waits longer than `serving.store_timeout_seconds` on the store: the Redis client's
socket timeouts and the SQLite busy timeout are set to it and the Redis client does not
retry (`features.store.bound_waits`). A store that hangs is then a `StoreUnavailable` within
about that time, and the thread is free again.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from features.store import (
    JOIN_KEY,
    applied_views,
    feature_store,
    published_view,
    reachable,
    redis_connection_string,
)
from memberscore.errors import StoreUnavailable
from memberscore.redact import redact
from memberscore.settings import Settings
from serving.online.view_reads import PlainRead, python_value, redis_reads, sqlite_reads
from serving.scoring.sources import MemberFeatures, PublishedCard

PING_MEMBER = "__readyz__"
VIEWS_REFRESH_SECONDS = 60.0
NO_ROW = datetime(1970, 1, 1, tzinfo=UTC)  # Redis' time of a view the member's hash lacks

# One view's answer, plain values (`serving.online.view_reads`): per member, (event time,
# values) or (None, None) when the store has nothing for it.
ViewRead = Sequence[tuple[datetime | None, dict[str, Any] | None]]
__all__ = ["FeastReader", "member_features", "published_cards", "python_value", "stored"]


def member_features(member_ids: Sequence[str], reads: Sequence[ViewRead]) -> MemberFeatures:
    """Merge per-view reads (each aligned with `member_ids`) into `MemberFeatures`.

    A member the store knows in no view is left out. Its `as_of` is the latest event time
    (snapshot cutoff) among its views; features of a view without a row are missing (absent).
    """
    rows: dict[str, dict[str, Any]] = {}
    as_of: dict[str, datetime] = {}
    for i, member_id in enumerate(member_ids):
        row: dict[str, Any] = {}
        latest: datetime | None = None
        for read in reads:
            stamp, values = stored(read[i])
            if values is None:
                continue
            row.update(values)
            if stamp is not None and (latest is None or stamp > latest):
                latest = stamp
        if latest is not None:
            rows[member_id], as_of[member_id] = row, latest
    return MemberFeatures(rows, as_of)


def published_cards(
    member_ids: Sequence[str], cards: ViewRead, features: ViewRead
) -> dict[str, PublishedCard]:
    """The published cards among `member_ids` from a read of the cards' view and a read of
    one feature view (its timestamps: the cutoff of the features the store holds now, whether
    or not the member has values in that view; None or the epoch when it has no row)."""
    found: dict[str, PublishedCard] = {}
    for member_id, card_read, (features_as_of, _) in zip(member_ids, cards, features, strict=True):
        as_of, values = stored(card_read)
        if as_of is None or values is None:
            continue
        card, key, observed = (values[name] for name in ("card", "models", "observed"))
        found[member_id] = PublishedCard(card, key, observed, as_of, features_as_of)
    return found


def stored(
    read: tuple[datetime | None, dict[str, Any] | None],
) -> tuple[datetime | None, dict[str, Any] | None]:
    """One member's read of one view as (event time, values), or (None, None) when the store
    holds no row for it: SQLite answers None, Redis (through its `online_read`) a hash without
    the view's timestamp field (the epoch as its time, every value unset). A row whose values
    are all null is a row: its features are present, as None."""
    stamp, values = read
    if values is None or stamp is None or stamp == NO_ROW:
        return None, None
    return stamp, values


@dataclass(frozen=True)
class _Opened:
    """An open Feast store, its online store, the feature views listed at `listed_at`
    (`time.monotonic()` seconds), the published cards' view (None before the first publish),
    the feature view with the fewest features (read for its cutoffs) and where each of these
    views keeps its rows (`_layouts`; empty for a store read through `online_read`)."""

    store: Any
    online: Any
    views: tuple[Any, ...]
    listed_at: float
    published: Any
    smallest: Any
    layouts: dict[str, Any] = field(default_factory=dict)

    def read(self, member_ids: Sequence[str], views: Sequence[Any]) -> list[PlainRead]:
        """The rows of `member_ids` in each of `views`, plain values."""
        if not views:
            return []
        config, kind = self.store.config, self.store.config.online_store.type
        entity_keys = [_entity_key(m) for m in member_ids]
        if not self.layouts:
            reads = (self.online.online_read(config, view, entity_keys) for view in views)
            return [[_plain(row) for row in read] for read in reads]
        if kind == "sqlite":
            from feast.infra.key_encoding_utils import serialize_entity_key

            version = config.entity_key_serialization_version
            keys = [
                serialize_entity_key(k, entity_key_serialization_version=version)
                for k in entity_keys
            ]
            tables = [self.layouts[view.name] for view in views]
            return sqlite_reads(self.online._get_conn(config), tables, keys)
        keys = self.online._generate_redis_keys_for_entities(config, entity_keys)
        client = self.online._get_client(config.online_store)
        return redis_reads(client, keys, [self.layouts[view.name] for view in views])


class FeastReader:
    """Online features through the open Feast store of `settings` (see the module docstring).

    One read of every feature view covers all services. In the production profile a ping
    without retries goes first, so a Redis that is down fails the request at once instead
    of in the middle of its reads. The local SQLite connection is shared by the request
    threads, so its reads take a lock. A read queued behind one that hangs waits for it:
    the score API stops waiting at its store timeout (`serving.api.context`), and each read
    in turn ends within the SQLite busy timeout.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = settings.serving.store_timeout_seconds
        production = settings.profile == "production"
        self._probe: Any = _redis_probe(settings.redis_url, self._timeout) if production else None
        self._read_lock: Any = nullcontext() if production else threading.Lock()
        self._open_lock = threading.Lock()
        self._opened: _Opened | None = None

    def read(self, member_ids: Sequence[str], services: Sequence[str]) -> MemberFeatures:
        """Features of the known members among `member_ids`, with their snapshot cutoffs."""
        ids = list(member_ids)
        return member_features(ids, self._reads(ids, lambda opened: opened.views))

    def published(self, member_ids: Sequence[str]) -> dict[str, PublishedCard]:
        """Published cards of `member_ids` (none before the first publish)."""
        ids = list(member_ids)
        reads = self._reads(ids, lambda o: () if o.published is None else (o.published, o.smallest))
        return published_cards(ids, *reads) if reads else {}

    def _reads(
        self, member_ids: list[str], views: Callable[[_Opened], Sequence[Any]]
    ) -> list[PlainRead]:
        """The rows of `member_ids` in each view that `views` picks from the open store."""
        self._check_redis()
        try:
            with _sqlite_reachable(), reachable(self._settings):
                opened = self._current()
                with self._read_lock:
                    return opened.read(member_ids, views(opened))
        except StoreUnavailable:
            self._opened = None  # the next request opens the store afresh
            raise

    def ping(self) -> None:
        """One online read of an id that does not exist: it only has to answer."""
        self.read([PING_MEMBER], ())

    def _current(self) -> _Opened:
        """The open store and its views; opened on first use, views re-listed when stale."""
        opened = self._opened
        if opened is not None and time.monotonic() - opened.listed_at < VIEWS_REFRESH_SECONDS:
            return opened
        with self._open_lock:
            current = self._opened
            # None: never opened, or dropped meanwhile by a request the store failed; `opened`:
            # stale and no other thread has reopened it. Either way (re)open it here.
            if current is None or current is opened:
                current = self._opened = _open(self._settings, current, self._timeout)
        return current

    def _check_redis(self) -> None:
        """Raise StoreUnavailable at once when the production Redis does not answer."""
        import redis

        if self._probe is None:
            return
        try:
            self._probe.ping()
        except redis.exceptions.RedisError as error:
            raise StoreUnavailable(
                redact(
                    f"the Redis online store at {self._settings.redis_url} cannot be reached "
                    f"({error}); check that it runs and answers within {self._timeout:g} s "
                    "(serving.store_timeout_seconds)"
                )
            ) from error


def _open(settings: Settings, previous: _Opened | None, timeout_seconds: float) -> _Opened:
    """Open the store (first time; its online waits bounded by `timeout_seconds`) or refresh
    the previous one's registry; list its views."""
    if previous is None:
        store = feature_store(settings, timeout_seconds=timeout_seconds)
    else:
        store = previous.store
        store.refresh_registry()
    online = store._get_provider().online_store
    views = tuple(applied_views(store))
    smallest = min(views, key=lambda view: len(view.features))
    published = published_view(store)
    layouts = _layouts(store, online, [*views, *([published] if published else [])])
    return _Opened(store, online, views, time.monotonic(), published, smallest, layouts)


def _layouts(store: Any, online: Any, views: Sequence[Any]) -> dict[str, Any]:
    """Per view name, where Feast's online store keeps its rows: the SQLite table, or for Redis
    (view name as stored, feature names, their hash fields); empty for other store types."""
    config = store.config
    kind = config.online_store.type
    versioned = config.registry.enable_online_feature_view_versioning
    if kind == "sqlite":
        from feast.infra.online_stores.sqlite import _table_id

        return {view.name: _table_id(config.project, view, versioned) for view in views}
    if kind == "redis":
        from feast.infra.online_stores.redis import _versioned_fv_name

        layouts: dict[str, Any] = {}
        for view in views:
            name = _versioned_fv_name(view, config)
            names, fields = online._generate_hset_keys_for_features(view, fv_name_override=name)
            layouts[view.name] = (name, names[:-1], fields[:-1])  # less the timestamp field
        return layouts
    return {}


def _plain(
    read: tuple[datetime | None, dict[str, Any] | None],
) -> tuple[datetime | None, dict[str, Any] | None]:
    """One row of `online_read` with plain values."""
    stamp, values = read
    if values is None:
        return stamp, None
    return stamp, {name: python_value(value) for name, value in values.items()}


def _entity_key(member_id: str) -> Any:
    """The Feast entity key of a member."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=member_id)])


@contextmanager
def _sqlite_reachable() -> Iterator[None]:
    """The local SQLite online store: a missing or locked file is 'unavailable', not a 500."""
    try:
        yield
    except sqlite3.OperationalError as error:
        raise StoreUnavailable(f"the SQLite online store cannot be read ({error})") from error


def _redis_probe(redis_url: str, timeout_seconds: float) -> Any:
    """A Redis client for `host:port[,key=value,...]` as Feast reads it (password, db, ssl...)
    that never retries and waits `timeout_seconds` at most on its socket."""
    import redis
    from feast.infra.online_stores.redis import RedisOnlineStore
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    nodes, options = RedisOnlineStore._parse_connection_string(
        redis_connection_string(redis_url, timeout_seconds)
    )
    return redis.Redis(
        host=nodes[0].get("host") or "127.0.0.1",
        port=int(nodes[0].get("port") or 6379),
        **options,
        retry=Retry(NoBackoff(), 0),
    )
