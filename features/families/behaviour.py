"""Behaviour features: logins, views, carts, contact responses, coupons, points, activity.

One pass over `events` and one over `contacts` (DuckDB, GROUP BY member_id), plus an ASOF join
of the last 30 days' cart adds to the next purchase for the abandonment rate. Order-based
inputs (coupon redemptions, last order) come from `features.families.rfm.order_stats`.

Point in time: events with `occurred_at < as_of`; contacts with `sent_at < as_of`, and a
contact counts as answered only if `responded_at < as_of`. Days are fractional (86 400 s).
Engagement events are every event type except `tier_change`, which the programme emits itself.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from features.catalog import FAMILIES
from features.families.rfm import MONEY, order_stats, query, window_params

CART_WINDOW_DAYS = 30
CART_CONVERSION_DAYS = 1.0
SYSTEM_EVENTS = ("tier_change",)

# Points are summed exactly (as DECIMAL, `rfm.MONEY`), like money: the same on every build.
_EVENTS_SQL = """
SELECT CAST(member_id AS VARCHAR) AS member_id,
    count(*) FILTER (event_type = 'login' AND occurred_at >= $d30) AS logins_30d,
    count(*) FILTER (event_type = 'login' AND occurred_at >= $d90) AS logins_90d,
    count(*) FILTER (event_type = 'product_view' AND occurred_at >= $d30) AS product_views_30d,
    count(*) FILTER (event_type = 'product_view' AND occurred_at >= $d90) AS product_views_90d,
    count(*) FILTER (event_type = 'add_to_cart' AND occurred_at >= $d30) AS cart_adds_30d,
    count(*) FILTER (event_type = 'add_to_cart' AND occurred_at >= $d90) AS cart_adds_90d,
    count(*) FILTER (event_type = 'email_open' AND occurred_at >= $d90) AS email_opens_90d,
    count(*) FILTER (event_type = 'email_click' AND occurred_at >= $d90) AS email_clicks_90d,
    count(*) FILTER (event_type = 'sms_click' AND occurred_at >= $d90) AS sms_clicks_90d,
    count(*) FILTER (event_type = 'coupon_claim' AND occurred_at >= $d90) AS coupon_claims_90d,
    count(*) FILTER (event_type = 'service_contact' AND occurred_at >= $d90)
        AS service_contacts_90d,
    CAST(coalesce(sum(value) FILTER (event_type = 'points_earned'), 0) AS DOUBLE)
        AS points_earned,
    CAST(coalesce(sum(abs(value)) FILTER (event_type = 'points_redeemed'), 0) AS DOUBLE)
        AS points_redeemed,
    count(*) FILTER (engaged AND occurred_at >= $d30) AS events_30d,
    count(*) FILTER (engaged AND occurred_at >= $d60 AND occurred_at < $d30) AS events_prev_30d,
    count(*) FILTER (engaged AND occurred_at >= $d90) AS events_90d,
    ($c - epoch(max(occurred_at) FILTER (event_type = 'login'))) / 86400.0
        AS days_since_last_login,
    ($c - epoch(max(occurred_at) FILTER (engaged))) / 86400.0 AS days_since_last_event
FROM (
    SELECT member_id, occurred_at, event_type, CAST(value AS {exact}) AS value,
        event_type NOT IN ({system}) AS engaged
    FROM events WHERE occurred_at < $as_of
)
GROUP BY member_id
"""

_CONTACTS_SQL = """
SELECT CAST(member_id AS VARCHAR) AS member_id,
    count(*) FILTER (sent_at >= $d30) AS contacts_30d,
    count(*) FILTER (sent_at >= $d90) AS contacts_90d,
    count(*) FILTER (sent_at >= $d90 AND channel = 'email') AS emails_sent_90d,
    count(*) FILTER (sent_at >= $d90 AND channel = 'sms') AS sms_sent_90d,
    count(*) FILTER (sent_at >= $d90 AND responded_at < $as_of) AS responded_90d
FROM contacts WHERE sent_at < $as_of
GROUP BY member_id
"""

# The first purchase at or after each cart add (ASOF); abandoned when none follows within a day.
_CART_SQL = """
SELECT CAST(c.member_id AS VARCHAR) AS member_id,
    count(*) AS cart_adds,
    count(*) FILTER (p.ordered_at IS NULL OR
        epoch(p.ordered_at) - epoch(c.occurred_at) > $conversion_seconds) AS abandoned
FROM (SELECT member_id, occurred_at FROM events
      WHERE event_type = 'add_to_cart' AND occurred_at >= $d30 AND occurred_at < $as_of) c
ASOF LEFT JOIN (SELECT member_id, ordered_at FROM orders
      WHERE NOT is_return AND ordered_at >= $d30 AND ordered_at < $as_of) p
    ON c.member_id = p.member_id AND p.ordered_at >= c.occurred_at
GROUP BY c.member_id
"""


def _query(con: duckdb.DuckDBPyConnection, sql: str, as_of: pd.Timestamp) -> pd.DataFrame:
    params = window_params(as_of, (30, 60, 90))
    params["conversion_seconds"] = CART_CONVERSION_DAYS * 86_400.0
    return query(con, sql, params)


def event_stats(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per-member event, contact and cart counts as of `as_of` (members with any of them)."""
    system = ", ".join(f"'{e}'" for e in SYSTEM_EVENTS)
    events = _query(con, _EVENTS_SQL.format(system=system, exact=MONEY), as_of)
    contacts = _query(con, _CONTACTS_SQL, as_of)
    carts = _query(con, _CART_SQL, as_of)
    return events.merge(contacts, on="member_id", how="outer").merge(
        carts, on="member_id", how="outer"
    )


def _rate(part: pd.Series, whole: pd.Series, cap: float | None = None) -> pd.Series:
    """part / whole as float (optionally capped), null where whole is 0."""
    whole = whole.astype("float64")
    rate = part.astype("float64") / whole.where(whole > 0)
    return rate.clip(upper=cap) if cap is not None else rate


def behaviour_features(orders: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """The catalog's `behaviour` family from `order_stats` (the population) and `event_stats`."""
    x = orders[["member_id", "coupon_redemptions_90d", "days_since_last_order_row"]].merge(
        stats, on="member_id", how="left", validate="1:1"
    )
    days = ["days_since_last_login", "days_since_last_event", "days_since_last_order_row"]
    counts = [c for c in stats.columns if c != "member_id" and c not in days]
    x[counts] = x[counts].fillna(0)
    whole = [c for c in counts if not c.startswith("points_")]
    x[whole] = x[whole].astype("int64")
    x["cart_abandon_rate_30d"] = _rate(x["abandoned"], x["cart_adds"])
    x["email_open_rate_90d"] = _rate(x["email_opens_90d"], x["emails_sent_90d"], cap=1.0)
    x["email_click_rate_90d"] = _rate(x["email_clicks_90d"], x["emails_sent_90d"], cap=1.0)
    x["sms_click_rate_90d"] = _rate(x["sms_clicks_90d"], x["sms_sent_90d"], cap=1.0)
    x["contact_response_rate_90d"] = _rate(x["responded_90d"], x["contacts_90d"])
    x["points_balance"] = x["points_earned"] - x["points_redeemed"]
    x["days_since_last_activity"] = x[["days_since_last_event", "days_since_last_order_row"]].min(
        axis=1
    )
    x["activity_trend"] = np.log1p(x["events_30d"]) - np.log1p(x["events_prev_30d"])
    names = [f.name for f in FAMILIES["behaviour"]]
    return x[["member_id", *names, "events_90d"]]


def compute_behaviour(
    con: duckdb.DuckDBPyConnection,
    as_of: pd.Timestamp,
    *,
    orders: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The `behaviour` family as of `as_of` (plus `events_90d`, engagement events in 90 days).

    `orders` is `features.families.rfm.order_stats(con, as_of)` when the caller already has it.
    """
    orders = order_stats(con, as_of) if orders is None else orders
    return behaviour_features(orders, event_stats(con, as_of))
