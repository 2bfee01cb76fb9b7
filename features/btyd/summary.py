"""Per-customer RFM summaries and holdout targets from a transaction log (pure, no I/O).

Conventions (those of the CDNOW benchmark, Fader, Hardie & Lee 2005, and `lifetimes`):
purchases of one customer on the same calendar day are merged into one purchase day (values
summed); the first purchase day is the customer's birth and is not a repeat purchase.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary")
DAYS_PER_WEEK = 7.0


def _require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise a ValueError naming the first column of `columns` that `frame` lacks."""
    for column in columns:
        if column not in frame.columns:
            raise ValueError(
                f"transactions lack the column {column!r}; present: {list(frame.columns)}"
            )


def purchase_days(
    transactions: pd.DataFrame, *, customer_col: str, time_col: str, value_col: str
) -> pd.DataFrame:
    """Merge same-day purchases: one row per (customer, calendar day), value summed.

    Returns columns `customer`, `day` (midnight timestamps) and `value`, sorted by customer, day.
    """
    _require_columns(transactions, [customer_col, time_col, value_col])
    days = pd.to_datetime(transactions[time_col]).dt.normalize()
    merged = (
        pd.DataFrame(
            {
                "customer": transactions[customer_col].to_numpy(),
                "day": days.to_numpy(),
                "value": transactions[value_col].to_numpy(dtype=float),
            }
        )
        .groupby(["customer", "day"], sort=True)["value"]
        .sum()
        .reset_index()
    )
    return merged


def rfm_summary(
    transactions: pd.DataFrame,
    *,
    customer_col: str,
    time_col: str,
    value_col: str,
    observation_end: str | pd.Timestamp,
    time_unit_days: float = 7.0,
    first_date: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Frequency, recency, T and monetary value per customer as of `observation_end`.

    `observation_end` is the as-of date: the last calendar day of the calibration period,
    inclusive (purchases on that day count, later ones are ignored). `first_date`, if given,
    drops purchases before it (the customer is then born at the first purchase on or after it).

    Returns one row per customer (index = customer id, sorted) with, in units of
    `time_unit_days` days (weeks by default):
    - `frequency`: number of repeat purchase days (purchase days minus one);
    - `recency`: time from the first to the last purchase day;
    - `T`: time from the first purchase day to `observation_end`;
    - `monetary`: mean value of the repeat purchase days (first excluded), 0 if there are none.
    """
    if time_unit_days <= 0:
        raise ValueError(f"time_unit_days must be positive, got {time_unit_days}")
    end = pd.Timestamp(observation_end).normalize()
    days = purchase_days(
        transactions, customer_col=customer_col, time_col=time_col, value_col=value_col
    )
    keep = days["day"] <= end
    if first_date is not None:
        keep &= days["day"] >= pd.Timestamp(first_date).normalize()
    days = days.loc[keep]
    if days.empty:
        raise ValueError(f"no purchase on or before observation_end={end.date()}")
    grouped = days.groupby("customer", sort=True)
    first = grouped["day"].min()
    last = grouped["day"].max()
    count = grouped["day"].size()
    first_value = grouped["value"].first()  # rows are sorted by day within a customer
    repeat_value = grouped["value"].sum() - first_value
    frequency = (count - 1).astype(float)
    summary = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (last - first).dt.days / time_unit_days,
            "T": (end - first).dt.days / time_unit_days,
            "monetary": np.where(frequency > 0, repeat_value / frequency.clip(lower=1.0), 0.0),
        }
    )
    summary.index.name = customer_col
    return summary


def holdout_summary(
    transactions: pd.DataFrame,
    *,
    customer_col: str,
    time_col: str,
    value_col: str,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    customers: pd.Index,
) -> pd.DataFrame:
    """Purchase-day count and total value per customer between `start` and `end`, both inclusive.

    Returns a frame indexed by `customers` (the calibration customers, in their order) with
    columns `holdout_count` (purchase days, same-day purchases merged) and `holdout_value`
    (currency of `value_col`); customers without a purchase in the window get zeros.
    """
    lo, hi = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if hi < lo:
        raise ValueError(f"holdout end {hi.date()} is before its start {lo.date()}")
    days = purchase_days(
        transactions, customer_col=customer_col, time_col=time_col, value_col=value_col
    )
    window = days.loc[(days["day"] >= lo) & (days["day"] <= hi)]
    grouped = window.groupby("customer")["value"]
    result = pd.DataFrame(
        {"holdout_count": grouped.size().astype(float), "holdout_value": grouped.sum()}
    )
    result = result.reindex(customers, fill_value=0.0)
    result.index.name = customer_col
    return result


def order_summary(
    orders: np.ndarray,
    days_since_last: np.ndarray,
    days_since_first: np.ndarray,
    avg_order_value: np.ndarray,
    first_order_amount: np.ndarray,
) -> dict[str, np.ndarray]:
    """BTYD summary columns (frequency, recency, T in weeks; monetary, first_value in currency)
    of members with at least one order, from equal-length float arrays of their order counts,
    days since the last and the first order (as of the cutoff), mean order value and first
    order amount (the order of the rfm features `features.families.btyd.INPUT_COLUMNS`).

    Each order counts (frequency = orders − 1), days are rounded to whole days (members with
    the same history share one likelihood term), and monetary is the mean of the repeat orders,
    from the mean and the first amount (0 without a repeat order). Missing values stay NaN.
    """
    age_days, last_days = np.round(days_since_first), np.round(days_since_last)
    x = orders - 1.0
    repeat_total = avg_order_value * orders - first_order_amount
    monetary = np.where(x > 0, np.maximum(repeat_total, 0.0) / np.maximum(x, 1.0), 0.0)
    recency = np.where(x > 0, np.clip(age_days - last_days, 0.0, age_days), 0.0)
    return {
        "frequency": x,
        "recency": recency / DAYS_PER_WEEK,
        "T": age_days / DAYS_PER_WEEK,
        "monetary": monetary,
        "first_value": first_order_amount,
    }
