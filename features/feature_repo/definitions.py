"""Feast objects for the member feature snapshots, generated from `features.catalog`.

Built by `declarations(snapshot_glob)` rather than at module level because the snapshot location
comes from settings (it differs per data dir and per test run); `memberscore features apply`
calls it. Running the bare `feast apply` in this folder would therefore register nothing.

Time semantics: every snapshot row carries `as_of`, the cutoff the features were computed at
(features use only data strictly before it). Feast's point-in-time join gives an entity row at
time t the latest snapshot with `as_of <= t` and `as_of > t - TTL`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.data_format import ParquetFormat
from feast.types import Bool, Float64, Int64, PrimitiveFeastType, String
from feast.value_type import ValueType

from features.feature_repo import PUBLISHED_VIEW

if TYPE_CHECKING:
    from features.catalog import Feature

ENTITY = "member"
JOIN_KEY = "member_id"
TIMESTAMP_FIELD = "as_of"
SOURCE_NAME = "member_snapshots"

# Snapshots are built weekly. Eight days finds the latest weekly snapshot from any point up to
# the next cutoff plus one day of slack for a late build; older features come back as nulls
# rather than silently stale values.
TTL = timedelta(days=8)

# Feature families each model reads (names of `features.catalog.FAMILIES`).
SERVICES: dict[str, tuple[str, ...]] = {
    "churn_v1": ("rfm", "behaviour", "profile", "lifecycle", "btyd"),
    "activation_v1": ("profile", "behaviour", "lifecycle"),
    "clv_v1": ("rfm", "behaviour", "profile", "lifecycle", "btyd"),
    "nba_v1": ("rfm", "behaviour", "profile", "lifecycle", "segment", "tags", "btyd"),
}

FEAST_TYPES: dict[str, PrimitiveFeastType] = {
    "float": Float64,
    "int": Int64,
    "string": String,
    "bool": Bool,
}


def member_entity() -> Entity:
    """The member entity, joined on `member_id` (a string id from the data contract)."""
    return Entity(
        name=ENTITY,
        join_keys=[JOIN_KEY],
        value_type=ValueType.STRING,
        description="A programme member.",
    )


def snapshot_source(snapshot_glob: str) -> FileSource:
    """The Parquet snapshots written by `features.build`, one file per cutoff."""
    return FileSource(
        name=SOURCE_NAME,
        path=snapshot_glob,
        file_format=ParquetFormat(),
        timestamp_field=TIMESTAMP_FIELD,
        description="Per-member feature snapshots; as_of is the cutoff.",
    )


def feature_view(
    family: str, features: Sequence[Feature], entity: Entity, source: FileSource
) -> FeatureView:
    """One feature view per catalog family; its schema is the family's catalog entries."""
    return FeatureView(
        name=family,
        entities=[entity],
        ttl=TTL,
        schema=[
            Field(name=f.name, dtype=FEAST_TYPES[f.dtype], description=f.description)
            for f in features
        ],
        source=source,
        online=True,
        description=f"Member features of the {family} family.",
    )


def feature_services(views: Mapping[str, FeatureView]) -> list[FeatureService]:
    """One feature service per model, over the families listed in SERVICES."""
    unknown = sorted({f for families in SERVICES.values() for f in families} - set(views))
    if unknown:
        raise ValueError(f"SERVICES names families not in the catalog: {', '.join(unknown)}")
    return [
        FeatureService(name=name, features=[views[f] for f in families])
        for name, families in SERVICES.items()
    ]


def declarations(
    snapshot_glob: str, families: Mapping[str, Sequence[Feature]] | None = None
) -> list[Any]:
    """Every Feast object to apply. `families` defaults to `features.catalog.FAMILIES`."""
    if families is None:
        from features.catalog import FAMILIES

        families = FAMILIES
    entity = member_entity()
    source = snapshot_source(snapshot_glob)
    views = {name: feature_view(name, feats, entity, source) for name, feats in families.items()}
    return [entity, source, *views.values(), *feature_services(views)]


def published_declarations(path: str) -> list[Any]:
    """The view of published score cards (`pipelines.publish`): per member, the score API's
    answer computed in advance (`card`, JSON), the versions and settings it was computed with
    (`models`) and the scores the API's metrics observe (`observed`, JSON). Its timestamp is
    the cutoff of the features the card was computed from; `path` is the Parquet copy."""
    entity = member_entity()
    source = FileSource(
        name=PUBLISHED_VIEW,
        path=path,
        file_format=ParquetFormat(),
        timestamp_field=TIMESTAMP_FIELD,
        description="Score cards published for the score API.",
    )
    view = FeatureView(
        name=PUBLISHED_VIEW,
        entities=[entity],
        ttl=TTL,
        schema=[Field(name=name, dtype=String) for name in ("card", "models", "observed")],
        source=source,
        online=True,
        description="Score API answers computed in advance, per champion versions and cutoff.",
    )
    return [entity, source, view]
