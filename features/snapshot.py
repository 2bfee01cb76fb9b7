"""The per-member feature snapshot as of a cutoff: every catalog feature in one frame.

`compute_snapshot` is pure over a DuckDB connection holding views `members`, `orders`,
`events` and `contacts` (canonical columns; `features.build.open_lake` makes them over the
lake, `register_frames` over in-memory frames). It makes one aggregation pass per table and
never reads a clock: the cutoff is the `as_of` argument and only rows strictly before it count
(docs/features.md, "Point in time").

It runs in two steps so that members can be computed in parts (the Spark engine):
`member_features` needs only a member's own rows; `population_features` then adds the
segments and tags, which compare a member with `features.families.population.PopulationStats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

import duckdb
import pandas as pd
from pandas.api.types import pandas_dtype

from features.catalog import FAMILIES, PANDAS_DTYPES, all_features
from features.families.behaviour import compute_behaviour
from features.families.btyd import btyd_features
from features.families.lifecycle import lifecycle_features
from features.families.population import PopulationStats, population_stats
from features.families.profile import compute_profile
from features.families.rfm import order_stats, rfm_features
from features.families.segments import segment_features
from features.families.tags import tag_features
from memberscore.contract import TABLES, TIMESTAMP_DTYPE

JOIN_KEY = "member_id"
AS_OF = "as_of"


def register_frames(
    con: duckdb.DuckDBPyConnection,
    members: pd.DataFrame,
    orders: pd.DataFrame,
    events: pd.DataFrame,
    contacts: pd.DataFrame,
) -> duckdb.DuckDBPyConnection:
    """Expose canonical frames as the views `compute_snapshot` reads; returns `con`."""
    frames = {"members": members, "orders": orders, "events": events, "contacts": contacts}
    for name, frame in frames.items():
        missing = [c for c in TABLES[name].names if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} frame lacks canonical column(s) {', '.join(missing)}")
        con.register(f"_{name}_frame", frame[TABLES[name].names])
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _{name}_frame")
    return con


def conform(frame: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """`member_id`, `as_of` and every catalog feature in catalog order and dtype, by member."""
    features = all_features()
    out = pd.DataFrame({JOIN_KEY: frame[JOIN_KEY].astype("string")})
    out[AS_OF] = pd.Series(as_of, index=out.index).astype(pandas_dtype(TIMESTAMP_DTYPE))
    for f in features:
        out[f.name] = frame[f.name].astype(pandas_dtype(PANDAS_DTYPES[f.dtype]))
    return out.sort_values(JOIN_KEY, ignore_index=True)


MEMBER_FAMILIES = ("rfm", "behaviour", "profile", "lifecycle")
# Not a catalog feature, but a tag reads it: kept in the member frame.
MEMBER_EXTRA = {"events_90d": "Int64"}


def member_columns() -> dict[str, str]:
    """Columns and pandas dtypes of `member_features` output, `member_id` first."""
    columns = {JOIN_KEY: "string"}
    columns |= {f.name: PANDAS_DTYPES[f.dtype] for n in MEMBER_FAMILIES for f in FAMILIES[n]}
    return columns | MEMBER_EXTRA


def conform_members(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with exactly the `member_columns`, in order and dtype (e.g. after a round trip
    through Arrow or Spark, where nullable integers come back as floats)."""
    return pd.DataFrame({c: frame[c].astype(pandas_dtype(d)) for c, d in member_columns().items()})


def member_features(
    con: duckdb.DuckDBPyConnection,
    as_of: pd.Timestamp,
    *,
    tier_thresholds: Sequence[tuple[str, float]],
) -> pd.DataFrame:
    """The features of each member on their own (families `MEMBER_FAMILIES`) as of `as_of`,
    one row per member registered before it; a subset of members gives the same rows."""
    as_of = _utc(as_of)
    orders = order_stats(con, as_of)
    rfm = rfm_features(orders)
    behaviour = compute_behaviour(con, as_of, orders=orders)
    profile = compute_profile(con, as_of, tier_thresholds=tier_thresholds, orders=orders)
    lifecycle = lifecycle_features(orders, behaviour)
    joined = reduce(
        lambda left, right: left.merge(right, on=JOIN_KEY, how="left", validate="1:1"),
        [rfm, behaviour, profile, lifecycle],
    )
    return conform_members(joined)


def population_features(
    members: pd.DataFrame, stats: PopulationStats, as_of: pd.Timestamp
) -> pd.DataFrame:
    """The finished snapshot of `members` (`member_features` output): segments, tags and the
    BTYD outlook from the population `stats`, conformed to the catalog, sorted by member."""
    segments = segment_features(members, stats.quintile_cuts)
    joined = members.merge(segments, on=JOIN_KEY, how="left", validate="1:1")
    outlook = btyd_features(members, stats.btyd)
    joined = joined.merge(outlook, on=JOIN_KEY, how="left", validate="1:1")
    tags = tag_features(joined, spend_cut=stats.vip_spend_cut)
    joined = joined.merge(tags, on=JOIN_KEY, how="left", validate="1:1")
    return conform(joined, _utc(as_of))


def compute_snapshot(
    con: duckdb.DuckDBPyConnection,
    as_of: pd.Timestamp,
    *,
    tier_thresholds: Sequence[tuple[str, float]],
) -> pd.DataFrame:
    """Every catalog feature of every member registered before `as_of` (a UTC timestamp).

    `tier_thresholds` are (tier, growth value needed in currency) ascending, as in settings.
    Returns one row per member, sorted by `member_id`, with `as_of` set to the cutoff.
    """
    members = member_features(con, as_of, tier_thresholds=tier_thresholds)
    return population_features(members, population_stats(members), as_of)


def _utc(as_of: pd.Timestamp) -> pd.Timestamp:
    as_of = pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        raise ValueError(f"as_of must be timezone-aware (UTC), got {as_of}")
    return as_of.tz_convert("UTC")
