"""The `btyd` family: buy-till-you-die outlook per member as of a cutoff.

Pure. The model inputs come from the member's `rfm` features (already point-in-time: orders
strictly before the cutoff), so the snapshot, training and the score API all derive them with
`btyd_inputs` from the same columns:

- frequency `x` = purchases − 1 (repeat purchases; each purchase order counts, unlike the
  CDNOW convention of merged purchase days);
- `T` = days since the first purchase / 7 and recency `t_x` = (days since the first purchase
  − days since the last one) / 7, both in weeks rounded to whole days (members with the same
  history then share one likelihood term);
- `monetary` = mean amount of the repeat purchases, from the mean and the first amount.

`fit_family` fits a Pareto/NBD + Gamma-Gamma on every member with a purchase as of the cutoff
(`features.btyd.outlook`), i.e. on data before the cutoff only, and `btyd_features` applies it.
Pareto/NBD is preferred because BG/NBD sets P(alive) = 1 for every one-off buyer; when its
likelihood is too flat to converge (dropout rates nearly equal across members: s and β grow
without bound at a fixed ratio) the BG/NBD fit is used instead, and the outlook's `kind` says
which. Members without a purchase get nulls.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from features.btyd.base import ConvergenceError
from features.btyd.outlook import BtydOutlook, fit_outlook, outlook_frame
from features.btyd.summary import DAYS_PER_WEEK, order_summary

JOIN_KEY = "member_id"
KINDS = ("paretonbd", "bgnbd")  # first that converges
INPUT_COLUMNS = ("frequency", "recency_days", "days_since_first_order", "avg_order_value",
                 "first_order_amount")  # fmt: skip
FEATURE_NAMES = (
    "btyd_p_alive",
    "btyd_expected_purchases_90d",
    "btyd_p_no_purchase_90d",
    "btyd_expected_spend_365d",
    "btyd_expected_order_value",
    "btyd_days_to_next_order",
)
SHORT_DAYS = 90  # horizon of the purchase-count features (days)
LONG_DAYS = 365  # horizon of the spend feature (days)


def btyd_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """BTYD summary (frequency, recency, T in weeks; monetary, first_value in currency) of the
    members of `features` (rfm columns `INPUT_COLUMNS`) with at least one purchase, indexed by
    `member_id` (or by the frame's index when it has no such column)."""
    missing = [c for c in INPUT_COLUMNS if c not in features.columns]
    if missing:
        raise ValueError(f"features lack the rfm column(s) {', '.join(missing)}")
    counts = pd.to_numeric(features["frequency"], errors="coerce").astype(float)
    buyers = features.loc[counts.fillna(0).to_numpy() >= 1]
    summary = order_summary(
        counts.loc[buyers.index].to_numpy(),
        buyers["recency_days"].to_numpy(dtype=float),
        buyers["days_since_first_order"].to_numpy(dtype=float),
        buyers["avg_order_value"].to_numpy(dtype=float),
        buyers["first_order_amount"].to_numpy(dtype=float),
    )
    index = pd.Index(buyers.get(JOIN_KEY, buyers.index), name=JOIN_KEY)
    return pd.DataFrame(summary, index=index)


def fit_family(features: pd.DataFrame) -> BtydOutlook | None:
    """The outlook model fitted on every buyer in `features` (one cutoff); None if nobody made
    a repeat purchase or neither transaction model converged (the family is then null)."""
    summary = btyd_inputs(features)
    if summary.empty or not (summary["frequency"] > 0).any():
        return None  # no repeat purchase yet: the purchase rate cannot be estimated
    for kind in KINDS:
        try:
            return fit_outlook(summary, kind)
        except ConvergenceError:
            continue
    return None  # too little history to estimate either model: the family stays null


def btyd_features(features: pd.DataFrame, outlook: BtydOutlook | None) -> pd.DataFrame:
    """The catalog's `btyd` family for every member of `features`, keyed by member_id.

    Columns: btyd_p_alive (P(still a customer) at the cutoff), btyd_expected_purchases_90d and
    btyd_p_no_purchase_90d (the 90 days from the cutoff), btyd_expected_spend_365d (currency),
    btyd_expected_order_value (currency) and btyd_days_to_next_order (median days from the
    cutoff to the next purchase if still a customer). Nulls for members without a purchase or
    when `outlook` is None.
    """
    out = pd.DataFrame({JOIN_KEY: features[JOIN_KEY].to_numpy()})
    names = list(FEATURE_NAMES)
    for name in names:
        out[name] = np.nan
    summary = btyd_inputs(features)
    if outlook is None or summary.empty:
        return out
    short = outlook_frame(outlook, summary, SHORT_DAYS / DAYS_PER_WEEK)
    long = outlook_frame(outlook, summary, LONG_DAYS / DAYS_PER_WEEK)
    values = pd.DataFrame(
        {
            "btyd_p_alive": short["p_alive"],
            "btyd_expected_purchases_90d": short["expected_purchases"],
            "btyd_p_no_purchase_90d": short["p_no_purchase"],
            "btyd_expected_spend_365d": long["expected_spend"],
            "btyd_expected_order_value": short["expected_order_value"],
            "btyd_days_to_next_order": short["median_weeks_to_next"] * DAYS_PER_WEEK,
        }
    )
    rows = out[JOIN_KEY].map(pd.Series(np.arange(len(values)), index=values.index))
    found = rows.notna().to_numpy()
    out.loc[found, names] = values.to_numpy()[rows[found].astype(int).to_numpy()]
    return out


def members_p_alive(outlook: BtydOutlook | None, features: pd.DataFrame) -> np.ndarray:
    """P(alive) at the features' cutoff of every row of `features` (rfm columns
    `INPUT_COLUMNS`; an absent column counts as missing), in row order: `member_outlook`'s
    P(alive) for many members at once. NaN for members without a purchase, or for all when
    `outlook` is None."""
    out = np.full(len(features), np.nan)
    if outlook is None or features.empty:
        return out
    frame = features.reindex(columns=list(INPUT_COLUMNS)).reset_index(drop=True)
    summary = btyd_inputs(frame.apply(pd.to_numeric, errors="coerce").astype(float))
    if not summary.empty:
        found = outlook_frame(outlook, summary, SHORT_DAYS / DAYS_PER_WEEK)
        out[summary.index.to_numpy(dtype=int)] = found["p_alive"].to_numpy(dtype=float)
    return out


def member_outlook(
    outlook: BtydOutlook, features: Mapping[str, Any], as_of: datetime
) -> tuple[float | None, date | None]:
    """P(alive) at `as_of` (the features' cutoff) and the expected next purchase date (the
    median if still a customer) of one member's rfm features; (None, None) without a purchase."""
    rfm = [
        np.array([np.nan if features.get(c) is None else features[c]], float) for c in INPUT_COLUMNS
    ]
    if not rfm[0][0] >= 1:
        return None, None
    summary = order_summary(*rfm)  # arrays, not a frame: this runs for every live request
    p_alive = outlook.transactions.conditional_probability_alive(summary)[0]
    days = float(outlook.transactions.median_weeks_to_next_purchase(summary)[0]) * DAYS_PER_WEEK
    next_day = (pd.Timestamp(as_of) + pd.Timedelta(days=days)).date()
    return float(p_alive), next_day
