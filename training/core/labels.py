"""Labels for churn, activation and spend/CLV at a cutoff (pure pandas, no I/O).

A cutoff is an instant (a date means 00:00 UTC of that day). Features describe history strictly
before it; a label describes the window [cutoff, cutoff + horizon). `observed_until` is the
exclusive end of the data: a cutoff is labelable only when cutoff + horizon <= observed_until.
Only purchase orders (`is_return` false) count as orders; returns are refunds with a positive
amount and only lower net spend. docs/labels.md states the definitions.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

from memberscore.errors import MemberscoreError

MEMBER_ID = "member_id"
CUTOFF = "cutoff"
DAYS_PER_MONTH = 30.4375
ORDER_COLUMNS = ("member_id", "ordered_at", "amount", "is_return")
MEMBER_COLUMNS = ("member_id", "registered_at")


class UnlabelableCutoff(MemberscoreError):
    """A cutoff whose label window is not fully inside the observed data."""


def as_cutoff(value: date | datetime | str | pd.Timestamp) -> pd.Timestamp:
    """A cutoff as a UTC timestamp; dates and naive values are read as 00:00 UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def observed_until(orders: pd.DataFrame) -> pd.Timestamp:
    """Exclusive end of the data: 00:00 UTC of the day after the last order."""
    require_columns(orders, ("ordered_at",), "orders")
    if orders.empty:
        raise UnlabelableCutoff("no orders: nothing can be labelled")
    return as_cutoff(orders["ordered_at"].max()).floor("D") + pd.Timedelta(days=1)


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    """Raise ValueError naming the columns `frame` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)}")


def check_labelable(cutoff: pd.Timestamp, horizon_days: int, end: pd.Timestamp) -> None:
    """Raise UnlabelableCutoff unless [cutoff, cutoff + horizon) lies inside the data."""
    if horizon_days <= 0:
        raise ValueError(f"horizon must be a positive number of days, got {horizon_days}")
    window_end = cutoff + pd.Timedelta(days=horizon_days)
    if window_end > end:
        latest = (end - pd.Timedelta(days=horizon_days)).date()
        raise UnlabelableCutoff(
            f"cutoff {cutoff.date()} with a {horizon_days}-day horizon needs data until "
            f"{window_end.date()}, but the data ends at {end.date()} (exclusive); the latest "
            f"labelable cutoff for this horizon is {latest}"
        )


def _purchases(orders: pd.DataFrame) -> pd.DataFrame:
    """Purchase orders only (returns dropped)."""
    return orders.loc[~orders["is_return"].astype(bool)]


def _in_window(orders: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """Orders placed in [start, start + days)."""
    at = orders["ordered_at"]
    return orders.loc[(at >= start) & (at < start + pd.Timedelta(days=days))]


def _buyers_before(orders: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Index:
    """Ids of members with at least one purchase order strictly before `cutoff`, sorted."""
    buys = _purchases(orders)
    return pd.Index(buys.loc[buys["ordered_at"] < cutoff, MEMBER_ID].unique()).sort_values()


def _frame(ids: pd.Index, cutoff: pd.Timestamp, **columns: np.ndarray) -> pd.DataFrame:
    """A label frame: member_id, cutoff and the given label columns."""
    frame = pd.DataFrame({MEMBER_ID: ids.astype(str), CUTOFF: cutoff, **columns})
    return frame.reset_index(drop=True)


def churn_labels(
    orders: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: int, end: pd.Timestamp
) -> pd.DataFrame:
    """`churned` = 1 for members with a purchase before `cutoff` and none in the horizon.

    Population: members with >= 1 purchase order strictly before the cutoff. Horizon in days.
    """
    require_columns(orders, ORDER_COLUMNS, "orders")
    cutoff = as_cutoff(cutoff)
    check_labelable(cutoff, horizon_days, end)
    population = _buyers_before(orders, cutoff)
    future = _in_window(_purchases(orders), cutoff, horizon_days)[MEMBER_ID].unique()
    churned = (~population.isin(future)).astype(np.int8)
    return _frame(population, cutoff, churned=churned)


def activation_labels(
    members: pd.DataFrame,
    orders: pd.DataFrame,
    cutoff: pd.Timestamp,
    horizon_days: int,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """`activated` = 1 for members who place their first purchase order within the horizon.

    Population: members registered strictly before the cutoff with no purchase order before it.
    """
    require_columns(members, MEMBER_COLUMNS, "members")
    require_columns(orders, ORDER_COLUMNS, "orders")
    cutoff = as_cutoff(cutoff)
    check_labelable(cutoff, horizon_days, end)
    registered = pd.Index(members.loc[members["registered_at"] < cutoff, MEMBER_ID].unique())
    population = registered.difference(_buyers_before(orders, cutoff)).sort_values()
    future = _in_window(_purchases(orders), cutoff, horizon_days)[MEMBER_ID].unique()
    return _frame(population, cutoff, activated=population.isin(future).astype(np.int8))


def clv_labels(
    orders: pd.DataFrame,
    cutoff: pd.Timestamp,
    horizon_days: int,
    end: pd.Timestamp,
    monthly_discount_rate: float,
) -> pd.DataFrame:
    """Net spend in the horizon and its present value at the cutoff (dataset currency).

    Population: members with >= 1 purchase order strictly before the cutoff. `spend` is
    purchases minus refunds in [cutoff, cutoff + horizon) and may be negative when earlier
    purchases are refunded; `clv` discounts each order by (1 + r)^(days / 30.4375), days since
    the cutoff; `orders` counts the member's purchase orders in the window and `purchased` = 1
    when there is any.
    """
    require_columns(orders, ORDER_COLUMNS, "orders")
    cutoff = as_cutoff(cutoff)
    check_labelable(cutoff, horizon_days, end)
    population = _buyers_before(orders, cutoff)
    window = _in_window(orders, cutoff, horizon_days)
    window = window.loc[window[MEMBER_ID].isin(population)]
    sign = np.where(window["is_return"].astype(bool), -1.0, 1.0)
    signed = window["amount"].to_numpy(dtype=float) * sign
    days = (window["ordered_at"] - cutoff).dt.total_seconds().to_numpy() / 86_400
    discounted = signed / (1.0 + monthly_discount_rate) ** (days / DAYS_PER_MONTH)
    sums = (
        pd.DataFrame({MEMBER_ID: window[MEMBER_ID].to_numpy(), "spend": signed, "clv": discounted})
        .groupby(MEMBER_ID)[["spend", "clv"]]
        .sum()
    )
    sums = sums.reindex(population, fill_value=0.0)
    counts = _purchases(window)[MEMBER_ID].value_counts().reindex(population, fill_value=0)
    return _frame(
        population,
        cutoff,
        spend=sums["spend"].to_numpy(),
        clv=sums["clv"].to_numpy(),
        purchased=(counts.to_numpy() > 0).astype(np.int8),
        orders=counts.to_numpy(dtype=np.int64),
    )
