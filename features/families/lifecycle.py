"""Lifecycle features: what the stage engine (registered, new, growing, mature, declining,
dormant, churned, won back) reads, derived from `features.families.rfm.order_stats` and the
engagement counts of `features.families.behaviour`. Days are fractional (86 400 s) as of the
cutoff.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from features.catalog import FAMILIES
from features.families.behaviour import compute_behaviour
from features.families.rfm import order_stats

# A purchase after a gap of at least this many days between purchases is a win-back.
WON_BACK_GAP_DAYS = 180.0
# (upper bound in days since the last purchase, inclusive, bucket name), ascending.
RECENCY_BUCKETS: tuple[tuple[float, str], ...] = (
    (30.0, "0_30"),
    (90.0, "31_90"),
    (180.0, "91_180"),
    (365.0, "181_365"),
)
RECENCY_BEYOND = "365_plus"
NO_PURCHASE = "none"


def recency_bucket(recency_days: pd.Series) -> pd.Series:
    """Bucket name of each days-since-last-purchase; "none" where there was no purchase."""
    bounds = np.array([upper for upper, _ in RECENCY_BUCKETS])
    names = np.array([*(name for _, name in RECENCY_BUCKETS), RECENCY_BEYOND], dtype=object)
    days = recency_days.astype("float64").to_numpy()
    bucket = names[np.searchsorted(bounds, np.nan_to_num(days), side="left")]
    return pd.Series(np.where(np.isnan(days), NO_PURCHASE, bucket), index=recency_days.index)


def lifecycle_features(orders: pd.DataFrame, behaviour: pd.DataFrame) -> pd.DataFrame:
    """The catalog's `lifecycle` family from `order_stats` and `compute_behaviour` output
    (which carries `events_90d`, engagement events in the last 90 days)."""
    x = orders.merge(behaviour[["member_id", "events_90d"]], on="member_id", validate="1:1")
    x["has_ordered"] = x["frequency"] > 0
    x["orders_count_all"] = x["frequency"]
    x["days_since_registration"] = np.maximum(x["tenure_days"], 0.0)
    x["days_to_first_order"] = x["tenure_days"] - x["days_since_first_order"]
    x["is_active_90d"] = (x["frequency_90d"] > 0) | (x["events_90d"] > 0)
    x["recency_bucket"] = recency_bucket(x["recency_days"])
    x["won_back"] = (x["last_gap_days"] >= WON_BACK_GAP_DAYS).fillna(False)
    return x[["member_id", *(f.name for f in FAMILIES["lifecycle"])]]


def compute_lifecycle(
    con: duckdb.DuckDBPyConnection,
    as_of: pd.Timestamp,
    *,
    orders: pd.DataFrame | None = None,
    behaviour: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The `lifecycle` family as of `as_of`; pass `order_stats` / `compute_behaviour` output
    when already computed to skip those passes."""
    orders = order_stats(con, as_of) if orders is None else orders
    if behaviour is None:
        behaviour = compute_behaviour(con, as_of, orders=orders)
    return lifecycle_features(orders, behaviour)
