"""RFM features: recency, frequency, monetary, purchase rhythm, discounts, returns, channels.

`order_stats` makes the single pass over `orders` (DuckDB, GROUP BY member_id) that every
order-based feature of the snapshot reads: RFM here, coupon redemptions and last activity in
`behaviour`, growth value in `profile`, gaps in `lifecycle`. `rfm_features` maps it to the
catalog's `rfm` family.

Point in time: only orders with `ordered_at < as_of` and members with `registered_at < as_of`.
Days are fractional (86 400 s); money is in the dataset currency. A purchase is an order row
with `is_return = false`; a return row is a refund of its (positive) `amount`.
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd

from features.catalog import FAMILIES

WINDOWS_DAYS = (30, 90, 365)
SECONDS_PER_DAY = 86_400.0
CHANNELS = ("online", "store", "app")


def window_params(as_of: pd.Timestamp, days: tuple[int, ...]) -> dict[str, object]:
    """Query parameters: `as_of`, its epoch seconds `c`, and `d<N>` = as_of − N days each."""
    if as_of.tzinfo is None:
        raise ValueError(f"as_of must be timezone-aware (UTC), got {as_of}")
    as_of = as_of.tz_convert("UTC")
    params: dict[str, object] = {"as_of": as_of, "c": as_of.timestamp()}
    params.update({f"d{d}": as_of - pd.Timedelta(days=d) for d in days})
    return params


def query(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pd.DataFrame:
    """Run `sql` with the named parameters it uses (DuckDB refuses unused ones) as a frame."""
    used = {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}
    return con.execute(sql, used).df()


def population(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp) -> pd.DataFrame:
    """Members registered strictly before `as_of`: `member_id` and `tenure_days`, sorted."""
    sql = """
        SELECT CAST(member_id AS VARCHAR) AS member_id,
               ($c - epoch(registered_at)) / 86400.0 AS tenure_days
        FROM members WHERE registered_at < $as_of ORDER BY member_id
    """
    return query(con, sql, window_params(as_of, ()))


def _window_columns() -> str:
    parts = []
    for d in WINDOWS_DAYS:
        parts += [
            f"count(*) FILTER (NOT is_return AND ordered_at >= $d{d}) AS frequency_{d}d",
            f"CAST(coalesce(sum(net) FILTER (ordered_at >= $d{d}), 0) AS DOUBLE) AS monetary_{d}d",
            f"CAST(avg(amount) FILTER (NOT is_return AND ordered_at >= $d{d}) AS DOUBLE) "
            f"AS avg_order_value_{d}d",
        ]
    parts += [
        f"count(*) FILTER (NOT is_return AND channel = '{ch}') AS {ch}_purchases" for ch in CHANNELS
    ]
    return ",\n".join(parts)


# Money is summed and averaged as DECIMAL (exact, micro-units of the currency) and order gaps as
# integer microseconds: DuckDB aggregates in parallel, and a sum of doubles taken in another
# order differs in its last bits, which moved LightGBM's bins and the demo's metrics from one
# run to the next. Exact sums give the same features on every run.
MONEY = "DECIMAL(38, 6)"

_ORDER_STATS_SQL = """
WITH o AS (
    SELECT member_id, order_id, ordered_at, channel, is_return,
           CAST(amount AS {money}) AS amount, CAST(discount AS {money}) AS discount,
           coupon_id IS NOT NULL AS has_coupon,
           CAST(CASE WHEN is_return THEN -amount ELSE amount END AS {money}) AS net,
           CASE WHEN NOT is_return THEN epoch_us(ordered_at) - epoch_us(lag(ordered_at) OVER (
               PARTITION BY member_id, is_return ORDER BY ordered_at, order_id))
           END AS gap_us
    FROM orders WHERE ordered_at < $as_of
), agg AS (
    SELECT CAST(member_id AS VARCHAR) AS member_id,
        count(*) FILTER (NOT is_return) AS frequency,
        CAST(coalesce(sum(net), 0) AS DOUBLE) AS monetary,
        CAST(avg(amount) FILTER (NOT is_return) AS DOUBLE) AS avg_order_value,
        {windows},
        count(*) FILTER (NOT is_return AND ordered_at >= $d180 AND ordered_at < $d90)
            AS frequency_prev_90d,
        count(*) FILTER (NOT is_return AND has_coupon AND ordered_at >= $d90)
            AS coupon_redemptions_90d,
        count(*) FILTER (is_return) AS returns,
        CAST(sum(amount) FILTER (NOT is_return) AS DOUBLE) AS purchase_amount,
        CAST(sum(discount) FILTER (NOT is_return) AS DOUBLE) AS purchase_discount,
        ($c - epoch(max(ordered_at) FILTER (NOT is_return))) / 86400.0 AS recency_days,
        ($c - epoch(min(ordered_at) FILTER (NOT is_return))) / 86400.0 AS days_since_first_order,
        ($c - epoch(max(ordered_at))) / 86400.0 AS days_since_last_order_row,
        CAST(arg_min(amount, (ordered_at, order_id)) FILTER (NOT is_return) AS DOUBLE)
            AS first_order_amount,
        CAST(sum(gap_us) AS DOUBLE) / count(gap_us) / 86400e6 AS mean_gap_days,
        sqrt(CAST(count(gap_us) * sum(CAST(gap_us AS HUGEINT) * gap_us) - sum(gap_us) * sum(gap_us)
            AS DOUBLE) / (count(gap_us) * (count(gap_us) - 1))) / 86400e6 AS std_gap_days,
        max(gap_us) / 86400e6 AS max_gap_days,
        arg_max(gap_us, (ordered_at, order_id)) FILTER (gap_us IS NOT NULL) / 86400e6
            AS last_gap_days
    FROM o GROUP BY member_id
)
SELECT agg.* FROM agg SEMI JOIN members m
    ON agg.member_id = CAST(m.member_id AS VARCHAR) AND m.registered_at < $as_of
"""


def order_stats(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per-member order aggregates as of `as_of`, one row per member registered before it.

    Columns: the catalog's frequency/monetary/avg_order_value columns, recency_days,
    days_since_first_order, first_order_amount, mean/std/max/last gap (days), returns (count),
    purchase_amount and purchase_discount (currency), <channel>_purchases, frequency_prev_90d,
    coupon_redemptions_90d, days_since_last_order_row (any order row, days) and tenure_days.
    Members without orders have zero counts and sums and nulls elsewhere.
    """
    params = window_params(as_of, (*WINDOWS_DAYS, 180))
    sql = _ORDER_STATS_SQL.format(windows=_window_columns(), money=MONEY)
    stats = query(con, sql, params)
    frame = population(con, as_of).merge(stats, on="member_id", how="left", validate="1:1")
    counts = [c for c in stats.columns if c.startswith("frequency") or c.endswith("_purchases")]
    counts += ["returns", "coupon_redemptions_90d"]
    zero = [*counts, "monetary", *(f"monetary_{d}d" for d in WINDOWS_DAYS)]
    frame[zero] = frame[zero].fillna(0)
    frame[counts] = frame[counts].astype("int64")
    return frame


def _share(part: pd.Series, whole: pd.Series) -> pd.Series:
    """part / whole as float, null where whole is 0 or null."""
    whole = whole.astype("float64")
    return (part.astype("float64") / whole.where(whole > 0)).astype("float64")


def rfm_features(stats: pd.DataFrame) -> pd.DataFrame:
    """The catalog's `rfm` family from `order_stats` output, keyed by member_id."""
    out = stats[["member_id"]].copy()
    direct = [f.name for f in FAMILIES["rfm"] if f.name in stats.columns]
    out[direct] = stats[direct]
    out["days_overdue"] = stats["recency_days"] - stats["mean_gap_days"]
    gross = stats["purchase_amount"] + stats["purchase_discount"]
    out["discount_share"] = _share(stats["purchase_discount"], gross)
    out["return_rate"] = _share(stats["returns"], stats["frequency"])
    for channel in CHANNELS:
        out[f"{channel}_share"] = _share(stats[f"{channel}_purchases"], stats["frequency"])
    # Floating error must not turn "same instant" into a tiny negative duration.
    days = ["recency_days", "days_since_first_order", "tenure_days"]
    out[days] = np.maximum(out[days], 0.0)
    return out[["member_id", *(f.name for f in FAMILIES["rfm"])]]


def compute_rfm(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp) -> pd.DataFrame:
    """The `rfm` family as of `as_of` for every member registered before it."""
    return rfm_features(order_stats(con, as_of))
