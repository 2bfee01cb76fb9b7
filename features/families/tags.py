"""Member tags: static and behavioural labels for targeting and for people reading a profile.

Each tag is a boolean column `tag_<name>` plus its name in the comma-separated `tags` column
(hyphenated, sorted). Thresholds are the module constants below (docs/features.md). A tag whose
inputs are missing (e.g. no purchase, so no shares) does not hold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DISCOUNT_SEEKER_SHARE = 0.20  # discount / (amount + discount) over all purchases
CHANNEL_FIRST_SHARE = 0.60  # share of purchases in one channel
LAPSED_VIP_SPEND_QUANTILE = 0.90  # top decile of all-time net spend among buyers
LAPSED_VIP_OVERDUE_DAYS = 30.0  # days past the member's own mean purchase gap
NEW_MEMBER_DAYS = 30.0  # days since registration
HIGH_RETURN_RATE = 0.30  # refund rows / purchases
HIGH_RETURN_MIN_PURCHASES = 3  # so one refunded first order does not make a "high returner"
POINTS_HOARDER_BALANCE = 1_000.0  # points
POINTS_HOARDER_REDEEMED_SHARE = 0.10  # redeemed / earned at most
EMAIL_ENGAGED_OPEN_RATE = 0.30  # email opens / emails sent over 90 days
DORMANT_BROWSER_EVENTS_30D = 3  # engagement events in the last 30 days, at least
DORMANT_BROWSER_RECENCY_DAYS = 90.0  # and no purchase for more than this (or never)


def _at_least(values: pd.Series, threshold: float) -> pd.Series:
    return (values.astype("float64") >= threshold).fillna(False).astype(bool)


def vip_spend_cut(x: pd.DataFrame) -> float:
    """All-time net spend (currency) at the top-decile boundary among buyers; NaN if none."""
    buyer = (x["frequency"] > 0).fillna(False).astype(bool)
    return float(x.loc[buyer, "monetary"].astype("float64").quantile(LAPSED_VIP_SPEND_QUANTILE))


def tag_flags(x: pd.DataFrame, spend_cut: float | None = None) -> pd.DataFrame:
    """One boolean column per tag (`tag_discount_seeker`, ...), from the joined snapshot.

    `spend_cut` is the population's `vip_spend_cut` when `x` is only part of it.
    """
    buyer = x["frequency"] > 0
    spend_cut = vip_spend_cut(x) if spend_cut is None else spend_cut
    vip = (x["next_tier"].isna() | (buyer & (x["monetary"] >= spend_cut))).astype(bool)
    earned = x["points_earned"].astype("float64")
    recency = x["recency_days"].astype("float64")
    flags = {
        "discount_seeker": _at_least(x["discount_share"], DISCOUNT_SEEKER_SHARE),
        "store_first": _at_least(x["store_share"], CHANNEL_FIRST_SHARE),
        "online_first": _at_least(x["online_share"], CHANNEL_FIRST_SHARE),
        "app_first": _at_least(x["app_share"], CHANNEL_FIRST_SHARE),
        "lapsed_vip": vip & _at_least(x["days_overdue"], LAPSED_VIP_OVERDUE_DAYS),
        "new_member": ~_at_least(x["tenure_days"], NEW_MEMBER_DAYS),
        "high_returner": _at_least(x["return_rate"], HIGH_RETURN_RATE)
        & (x["frequency"] >= HIGH_RETURN_MIN_PURCHASES),
        "points_hoarder": _at_least(x["points_balance"], POINTS_HOARDER_BALANCE)
        & (x["points_redeemed"] <= POINTS_HOARDER_REDEEMED_SHARE * earned),
        "email_engaged": _at_least(x["email_open_rate_90d"], EMAIL_ENGAGED_OPEN_RATE),
        "dormant_browser": (x["events_30d"] >= DORMANT_BROWSER_EVENTS_30D)
        & ~(recency <= DORMANT_BROWSER_RECENCY_DAYS),
    }
    return pd.DataFrame({f"tag_{k}": v.astype(bool).to_numpy() for k, v in flags.items()})


def tag_text(flags: pd.DataFrame) -> pd.Series:
    """The names of the tags that hold, hyphenated, sorted, comma-separated ("" if none)."""
    names = sorted(flags.columns, key=lambda c: c.removeprefix("tag_"))
    text = pd.Series("", index=flags.index, dtype=object)
    for column in names:
        name = column.removeprefix("tag_").replace("_", "-")
        on = flags[column].to_numpy(dtype=bool)
        joined = np.where(text == "", name, text + "," + name)
        text = pd.Series(np.where(on, joined, text), index=flags.index, dtype=object)
    return text


def tag_features(x: pd.DataFrame, spend_cut: float | None = None) -> pd.DataFrame:
    """The catalog's `tags` family: `member_id`, `tags` and the `tag_*` booleans."""
    flags = tag_flags(x.reset_index(drop=True), spend_cut)
    out = pd.concat([x[["member_id"]].reset_index(drop=True), flags], axis=1)
    out.insert(1, "tags", tag_text(flags))
    return out
