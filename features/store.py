"""The Feast feature store: generated config, apply, materialize, training and online reads.

I/O only. The profile setting picks the backends (see docs/feature-store.md):
- local: file registry and SQLite online store under `<data>/feast`, DuckDB offline store;
- production: PostgreSQL SQL registry, Redis online store, DuckDB offline store over the same
  Parquet snapshots (the snapshots are the offline table; no copy into PostgreSQL).

Feast is imported inside the functions: it takes seconds to import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import yaml

from features.feature_repo import PUBLISHED_VIEW
from memberscore.contract import TIMESTAMP_DTYPE
from memberscore.errors import DataNotFound, MemberNotFound, StoreUnavailable
from memberscore.settings import Settings, psycopg_url

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore, FeatureView

CONFIG_FILE = "feature_store.yaml"
SNAPSHOT_PREFIX = "snapshot-"
JOIN_KEY = "member_id"
AS_OF = "as_of"
EVENT_TIMESTAMP = "event_timestamp"
MATERIALIZE_BATCH_ROWS = 100_000
REDIS_TIMEOUTS = ("socket_timeout", "socket_connect_timeout")


@dataclass(frozen=True)
class Materialized:
    """What one materialize run wrote to the online store."""

    members: int
    values: int
    latest_as_of: pd.Timestamp
    seconds: float

    def describe(self) -> str:
        """One line for the CLI."""
        rate = self.members / self.seconds if self.seconds else float("inf")
        return (
            f"materialized {self.members:,} members ({self.values:,} feature values, latest "
            f"cutoff {self.latest_as_of:%Y-%m-%d}) in {self.seconds:.1f} s ({rate:,.0f} members/s)"
        )


def snapshot_path(settings: Settings, as_of: date) -> Path:
    """The Parquet file holding the snapshot of cutoff `as_of` (00:00 UTC of that day)."""
    return settings.snapshots_dir / f"{SNAPSHOT_PREFIX}{as_of:%Y-%m-%d}.parquet"


def snapshot_files(settings: Settings) -> list[Path]:
    """Every snapshot file, oldest cutoff first."""
    return sorted(settings.snapshots_dir.glob(f"{SNAPSHOT_PREFIX}*.parquet"))


def snapshot_glob(settings: Settings) -> str:
    """Absolute glob over every snapshot file: the path of the Feast FileSource."""
    return str(settings.snapshots_dir.resolve() / f"{SNAPSHOT_PREFIX}*.parquet")


def require_snapshots(settings: Settings) -> None:
    """Raise DataNotFound with the next step if no snapshot has been built."""
    if not snapshot_files(settings):
        raise DataNotFound(
            f"no feature snapshots in {settings.snapshots_dir}; run "
            "`memberscore features build --as-of YYYY-MM-DD` first"
        )


def store_config(settings: Settings, *, timeout_seconds: float | None = None) -> dict[str, Any]:
    """The content of feature_store.yaml for the settings' profile. `timeout_seconds` (the
    score API's `serving.store_timeout_seconds`) bounds each socket wait of the Redis client;
    batch jobs leave it unset, as one bulk pipeline may take longer."""
    config: dict[str, Any] = {
        "project": settings.feast_project,
        "provider": "local",
        "offline_store": {"type": "duckdb"},
        "entity_key_serialization_version": 3,
    }
    if settings.profile == "production":
        config["registry"] = {
            "registry_type": "sql",
            "path": psycopg_url(settings.postgres_url),
            "cache_ttl_seconds": 60,
            "sqlalchemy_config_kwargs": {"echo": False, "pool_pre_ping": True},
        }
        # skip_dedup: materialize always writes the latest snapshot, so Redis need not read
        # the stored timestamps first; this halves the round trips.
        config["online_store"] = {
            "type": "redis",
            "connection_string": redis_connection_string(settings.redis_url, timeout_seconds),
            "skip_dedup": True,
        }
        return config
    folder = feast_data_dir(settings).resolve()
    config["registry"] = {"registry_type": "file", "path": str(folder / "registry.db")}
    config["online_store"] = {"type": "sqlite", "path": str(folder / "online.db")}
    return config


def redis_connection_string(redis_url: str, timeout_seconds: float | None) -> str:
    """Feast's `host:port[,key=value,...]` for `redis_url`, with redis-py's `socket_timeout`
    and `socket_connect_timeout` (seconds) set to `timeout_seconds` where `redis_url` does not
    set them itself. Feast's Redis store hands every `key=value` pair to `redis.Redis`."""
    if timeout_seconds is None:
        return redis_url
    given = {part.split("=", 1)[0].strip() for part in redis_url.split(",") if "=" in part}
    extra = [f"{key}={float(timeout_seconds)!r}" for key in REDIS_TIMEOUTS if key not in given]
    return ",".join([redis_url, *extra])


def feast_data_dir(settings: Settings) -> Path:
    """Where the local profile keeps its registry and SQLite online store."""
    return settings.data_dir / "feast"


def write_config(settings: Settings) -> Path:
    """Generate feature_store.yaml in the Feast repo folder; rewritten only when it changes."""
    path = settings.feast_repo / CONFIG_FILE
    text = "# Generated by memberscore from settings; do not edit.\n" + yaml.safe_dump(
        store_config(settings), sort_keys=False
    )
    settings.feast_repo.mkdir(parents=True, exist_ok=True)
    if settings.profile == "local":
        feast_data_dir(settings).mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


@contextmanager
def reachable(settings: Settings) -> Iterator[None]:
    """Turn connection failures of Redis or PostgreSQL into StoreUnavailable."""
    import redis.exceptions
    import sqlalchemy.exc

    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
        raise StoreUnavailable(
            f"the Redis online store at {settings.redis_url} cannot be reached ({error}); "
            "start it or point MEMBERSCORE_REDIS_URL at it"
        ) from error
    except sqlalchemy.exc.OperationalError as error:
        from sqlalchemy.engine import make_url

        shown = make_url(psycopg_url(settings.postgres_url)).render_as_string(True)
        raise StoreUnavailable(
            f"the PostgreSQL registry at {shown} cannot be reached "
            f"({' '.join(str(error.orig).split())}); "
            "start it or point MEMBERSCORE_POSTGRES_URL at it"
        ) from error


def feature_store(settings: Settings, *, timeout_seconds: float | None = None) -> FeatureStore:
    """Open the Feast store of the settings' profile.

    The config is built in memory from settings, not read back from feature_store.yaml, so
    processes with different settings (data dirs, profiles) can share one repo folder. With
    `timeout_seconds` (the score API) no online-store wait lasts longer: see `bound_waits`.
    """
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    if settings.profile == "local":
        feast_data_dir(settings).mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        repo_path=settings.feast_repo,
        **store_config(settings, timeout_seconds=timeout_seconds),
    )
    with reachable(settings):
        store = FeatureStore(repo_path=str(settings.feast_repo), config=config)
    if timeout_seconds is not None:
        bound_waits(store, timeout_seconds)
    return store


def bound_waits(store: FeatureStore, timeout_seconds: float) -> None:
    """Make each wait of `store`'s online store end within `timeout_seconds`.

    Redis: the socket timeouts are in the connection string (`redis_connection_string`);
    here its client stops retrying (redis-py retries a timeout 3 times, with backoff up to
    10 s). SQLite: the busy timeout, how long a read waits for a writer's lock (Python's
    default is 5 s).
    """
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    online: Any = store._get_provider().online_store  # Feast's Redis or SQLite store
    kind = store.config.online_store.type
    if kind == "redis":
        online._get_client(store.config.online_store).set_retry(Retry(NoBackoff(), 0))
    elif kind == "sqlite":
        connection = online._get_conn(store.config)
        connection.execute(f"PRAGMA busy_timeout = {max(1, round(timeout_seconds * 1000))}")


def apply(settings: Settings, families: Any = None) -> list[str]:
    """Register the entity, snapshot source, feature views and services; returns their names.

    `families` (catalog family -> features) defaults to `features.catalog.FAMILIES`.
    """
    from features.feature_repo.definitions import declarations

    objects = declarations(snapshot_glob(settings), families)
    write_config(settings)  # for Feast's own CLI (`feast serve`, `feast ui`) on this repo
    store = feature_store(settings)
    with reachable(settings):
        store.apply(objects)
    return [obj.name for obj in objects]


def applied_views(store: FeatureStore) -> list[FeatureView]:
    """The registered feature views (not the published scores' view), or DataNotFound if
    `apply` has not run."""
    views = [view for view in store.list_feature_views() if view.name != PUBLISHED_VIEW]
    if not views:
        raise DataNotFound(
            f"the Feast registry of project {store.project!r} holds no feature views; run "
            "`memberscore features apply` first"
        )
    return sorted(views, key=lambda view: view.name)


def published_view(store: FeatureStore) -> FeatureView | None:
    """The view of published score cards, None until scores are first published."""
    return next((v for v in store.list_feature_views() if v.name == PUBLISHED_VIEW), None)


def published_path(settings: Settings) -> Path:
    """The Parquet copy of the published score cards (the view's offline source)."""
    return settings.data_dir / "published" / "scores.parquet"


def apply_published(settings: Settings) -> FeatureStore:
    """Register the published scores' view (`features.feature_repo.definitions`) unless it is
    registered with this Parquet copy already; the store."""
    from features.feature_repo.definitions import published_declarations

    store = feature_store(settings)
    path = str(published_path(settings).resolve())
    with reachable(settings):
        view = published_view(store)
        if view is None or getattr(view.batch_source, "path", None) != path:
            store.apply(published_declarations(path))
    return store


def write_published(store: FeatureStore, settings: Settings, cards: pd.DataFrame) -> None:
    """Write published cards (member_id, as_of, card, models, observed) to the online store."""
    view = published_view(store)
    if view is None:
        raise DataNotFound("the published scores' view is not registered: run `apply_published`")
    with reachable(settings):
        write_online(store, [view], cards, "bulk")


def forget_online(settings: Settings, member_ids: Sequence[str]) -> tuple[int, int]:
    """Delete `member_ids` from the online store of the settings' profile: every feature view
    and the published cards (members found, rows or fields deleted). Feast 0.67 has no delete
    per entity value (`RedisOnlineStore.delete_entity_values` drops every member of a join
    key), so the rows are deleted by their entity keys, computed as Feast computes them
    (`features.online_bulk`). No registry is read: this works before any `apply`."""
    from feast.repo_config import RepoConfig

    from features import online_bulk

    config = RepoConfig(repo_path=settings.feast_repo, **store_config(settings))
    kind = config.online_store.type
    with reachable(settings):
        if kind == "sqlite":
            return online_bulk.delete_sqlite(config, member_ids, join_key=JOIN_KEY)
        if kind == "redis":
            return online_bulk.delete_redis(config, member_ids, join_key=JOIN_KEY)
    raise ValueError(f"no erasure for a {kind!r} online store; use sqlite or redis")


def feature_service(store: FeatureStore, name: str) -> FeatureService:
    """The registered feature service `name`, or DataNotFound naming the known ones."""
    from feast.errors import FeatureServiceNotFoundException

    try:
        return store.get_feature_service(name)
    except FeatureServiceNotFoundException:
        applied_views(store)
        known = ", ".join(sorted(s.name for s in store.list_feature_services())) or "none"
        raise DataNotFound(
            f"no feature service {name!r} in the Feast registry (known: {known}); "
            "run `memberscore features apply`"
        ) from None


LATEST_QUERY = (
    f"SELECT * FROM read_parquet(?) QUALIFY row_number() OVER "
    f"(PARTITION BY {JOIN_KEY} ORDER BY {AS_OF} DESC) = 1 ORDER BY {JOIN_KEY}"
)


def latest_snapshot(settings: Settings) -> pd.DataFrame:
    """The most recent snapshot row of every member (across all cutoffs), by member id."""
    import duckdb

    require_snapshots(settings)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        frame = con.execute(LATEST_QUERY, [snapshot_glob(settings)]).df()
    frame[AS_OF] = frame[AS_OF].astype(TIMESTAMP_DTYPE)
    return frame


def latest_batches(settings: Settings, batch_rows: int) -> Iterator[pd.DataFrame]:
    """`latest_snapshot` streamed in batches of exactly `batch_rows` members (the last one
    smaller), in member id order: the same batches for the same snapshot files, so a batch's
    number names the same members on every run. Memory stays bounded by the batch size."""
    import duckdb
    import pyarrow as pa

    require_snapshots(settings)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        relation = con.sql(LATEST_QUERY, params=[snapshot_glob(settings)])
        with relation.to_arrow_reader(batch_size=batch_rows) as reader:
            pending: list[pa.RecordBatch] = []
            held = 0
            for batch in reader:
                pending.append(batch)
                held += batch.num_rows
                while held >= batch_rows:
                    table = pa.Table.from_batches(pending)
                    yield _latest_frame(table.slice(0, batch_rows))
                    rest = table.slice(batch_rows)
                    pending, held = rest.to_batches(), rest.num_rows
            if held:
                yield _latest_frame(pa.Table.from_batches(pending))


def _latest_frame(table: Any) -> pd.DataFrame:
    """An Arrow batch of latest snapshot rows as pandas, `as_of` in the contract's dtype."""
    frame = table.to_pandas()
    frame[AS_OF] = frame[AS_OF].astype(TIMESTAMP_DTYPE)
    return frame


def materialize(
    settings: Settings,
    *,
    batch_rows: int = MATERIALIZE_BATCH_ROWS,
    method: Literal["bulk", "feast"] = "bulk",
    progress: Callable[[int], None] | None = None,
) -> Materialized:
    """Write the latest snapshot of every member into the online store.

    Streams the latest rows with DuckDB (`latest_batches`; not `feast materialize`, which
    re-queries the offline store per view) and writes them in batches of `batch_rows` members.
    `method` "bulk" encodes values column-wise and writes Feast's online layout in bulk
    (`features.online_bulk`); "feast" goes through `FeatureStore.write_to_online_store`, one
    protobuf and (SQLite) one INSERT per value. `progress` gets the members of each batch.
    `pipelines.publish` writes the same rows together with the score cards.
    """
    require_snapshots(settings)
    store = feature_store(settings)
    views = applied_views(store)
    started = perf_counter()
    members, cutoffs = 0, []
    for batch in latest_batches(settings, batch_rows):
        with reachable(settings):
            write_online(store, views, batch, method)
        members += len(batch)
        cutoffs.append(batch[AS_OF].max())
        if progress is not None:
            progress(len(batch))
    width = sum(len(view.features) for view in views)
    return Materialized(
        members=members,
        values=members * width,
        latest_as_of=pd.Series(cutoffs, dtype=TIMESTAMP_DTYPE).max(),
        seconds=perf_counter() - started,
    )


def write_online(
    store: FeatureStore, views: Sequence[FeatureView], batch: pd.DataFrame, method: str = "bulk"
) -> None:
    """Write one batch of rows (`member_id`, `as_of` and the views' features) of every view
    with `method`: "bulk" (`features.online_bulk`, one write per member holding every view)
    or "feast" (`FeatureStore.write_to_online_store`, per view)."""
    from features import online_bulk

    if method == "feast":
        for view in views:
            columns = [JOIN_KEY, AS_OF, *(f.name for f in view.features)]
            store.write_to_online_store(view.name, batch[columns])
        return
    writers = {"sqlite": online_bulk.write_sqlite, "redis": online_bulk.write_redis}
    kind = store.config.online_store.type
    if method != "bulk" or kind not in writers:
        raise ValueError(f"no {method!r} online write for a {kind!r} online store")
    writers[kind](store.config, views, batch, join_key=JOIN_KEY, timestamp=AS_OF)


def training_frame(settings: Settings, entity_df: pd.DataFrame, service: str) -> pd.DataFrame:
    """Point-in-time correct features of `service` for (member_id, event_timestamp) rows.

    Each row gets the latest snapshot whose cutoff `as_of` is at or before its event_timestamp
    (and within the views' TTL), joined by Feast's `get_historical_features`.
    """
    missing = {JOIN_KEY, EVENT_TIMESTAMP} - set(entity_df.columns)
    if missing:
        raise ValueError(f"entity_df lacks column(s) {', '.join(sorted(missing))}")
    require_snapshots(settings)
    store = feature_store(settings)
    with reachable(settings):
        features = feature_service(store, service)
        return store.get_historical_features(entity_df=entity_df, features=features).to_df()


def online_features(
    settings: Settings, member_ids: Sequence[str], service: str | None = None
) -> pd.DataFrame:
    """Online features of `member_ids` (all views when `service` is None), one row per id.

    Column `as_of` is the cutoff of the snapshot served (NaT when the store has nothing).
    """
    store = feature_store(settings)
    with reachable(settings):
        features: Any = (
            feature_service(store, service)
            if service is not None
            else [f"{v.name}:{f.name}" for v in applied_views(store) for f in v.features]
        )
        response = store.get_online_features(
            features=features, entity_rows=[{JOIN_KEY: m} for m in member_ids]
        )
    frame = response.to_df(include_event_timestamps=True)
    stamps = [c for c in frame.columns if c.endswith("__ts")]
    seconds = frame[stamps].where(frame[stamps] > 0).max(axis=1)
    frame = frame.drop(columns=stamps)
    frame.insert(1, AS_OF, pd.to_datetime(seconds, unit="s", utc=True).astype(TIMESTAMP_DTYPE))
    return frame


def online_member(settings: Settings, member_id: str) -> pd.Series:
    """One member's online features with `as_of`; MemberNotFound if the store has none."""
    row = online_features(settings, [member_id]).iloc[0]
    if pd.isna(row[AS_OF]):
        raise MemberNotFound(
            f"member {member_id!r} has no features in the online store; check the id, or run "
            "`memberscore features build` and `memberscore features materialize`"
        )
    return row
