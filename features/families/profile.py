"""Profile features: who the member is, their consents, and the tier they hold at the cutoff.

The tier is re-derived from the growth value (net spend over the 365 days before the cutoff,
currency) and the thresholds passed in, never read from `members.tier`: that column is the tier
at export time and would leak the future into past snapshots. A growth value below the lowest
threshold (e.g. net refunds) still holds the lowest tier.

Age is the cutoff's year minus `birth_year` (years; the birthday itself is unknown).

Consent flags are the members row's (given at registration) unless the member changed them: then
the latest consent change (the `consents` table) with `changed_at` at or before the cutoff sets
both flags. A change after the cutoff never reaches an earlier snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from features.catalog import FAMILIES
from features.families.rfm import order_stats, query, window_params

# (lowest age in the band, band name), ascending; members younger than the first are "under_18".
AGE_BANDS: tuple[tuple[int, str], ...] = (
    (18, "18_24"),
    (25, "25_34"),
    (35, "35_44"),
    (45, "45_54"),
    (55, "55_64"),
    (65, "65_plus"),
)
UNKNOWN = "unknown"

_MEMBERS_SQL = """
SELECT CAST(member_id AS VARCHAR) AS member_id,
    CAST(acquisition_channel AS VARCHAR) AS acquisition_channel,
    CAST(region AS VARCHAR) AS region,
    coalesce(CAST(gender AS VARCHAR), 'unknown') AS gender,
    CAST(birth_year AS BIGINT) AS birth_year,
    consent_marketing, consent_personalization,
    coalesce(is_derived, false) AS is_derived
FROM members WHERE registered_at < $as_of
"""
_CONSENTS_SQL = """
SELECT CAST(member_id AS VARCHAR) AS member_id, changed_at, change_id,
    consent_marketing, consent_personalization
FROM consents WHERE changed_at <= $as_of
"""
CONSENT_FLAGS = ("consent_marketing", "consent_personalization")


def age_band(age_years: pd.Series) -> pd.Series:
    """Band name of each age in years; "unknown" where the age is missing."""
    lows = np.array([low for low, _ in AGE_BANDS])
    names = np.array(["under_18", *(name for _, name in AGE_BANDS)], dtype=object)
    ages = age_years.astype("float64").to_numpy()
    band = names[np.searchsorted(lows, np.nan_to_num(ages, nan=0.0), side="right")]
    return pd.Series(np.where(np.isnan(ages), UNKNOWN, band), index=age_years.index, dtype=object)


def tier_of(growth_value: pd.Series, thresholds: Sequence[tuple[str, float]]) -> pd.DataFrame:
    """tier, tier_rank, next_tier and distance_to_next_tier (currency) of each growth value.

    `thresholds` are (tier name, growth value needed) in ascending order of the value.
    """
    if not thresholds:
        raise ValueError("tier_thresholds must name at least one tier")
    names = np.array([name for name, _ in thresholds], dtype=object)
    needed = np.array([value for _, value in thresholds], dtype="float64")
    if np.any(np.diff(needed) <= 0):
        raise ValueError(f"tier_thresholds must ascend strictly by value, got {list(thresholds)}")
    value = growth_value.astype("float64").to_numpy()
    rank = np.maximum(np.searchsorted(needed, value, side="right") - 1, 0)
    top = rank == len(names) - 1
    above = np.minimum(rank + 1, len(names) - 1)
    return pd.DataFrame(
        {
            "tier": names[rank],
            "tier_rank": rank.astype("int64"),
            "next_tier": np.where(top, None, names[above]),
            "distance_to_next_tier": np.where(top, np.nan, needed[above] - value),
        },
        index=growth_value.index,
    )


def consent_as_of(
    members: pd.DataFrame, changes: pd.DataFrame | None, as_of: pd.Timestamp
) -> pd.DataFrame:
    """`members` with the consent flags of each member's latest change (member_id,
    changed_at, change_id and the flags) at or before `as_of`; members without one keep theirs."""
    if changes is None or changes.empty:
        return members
    changes = changes[pd.to_datetime(changes["changed_at"], utc=True) <= as_of]
    latest = (
        changes.sort_values(["changed_at", "change_id"])
        .drop_duplicates("member_id", keep="last")
        .set_index("member_id")
    )
    out = members.copy()
    at = out["member_id"].map(latest["consent_marketing"]).notna().to_numpy()
    for flag in CONSENT_FLAGS:
        changed = out.loc[at, "member_id"].map(latest[flag]).astype(bool)
        out[flag] = out[flag].astype("boolean")
        out.loc[at, flag] = changed.to_numpy()
    return out


def profile_features(
    members: pd.DataFrame,
    orders: pd.DataFrame,
    as_of: pd.Timestamp,
    tier_thresholds: Sequence[tuple[str, float]],
    consents: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The catalog's `profile` family from member rows and `order_stats` (the population);
    `consents` are consent changes (`consent_as_of`), None when there are none."""
    members = consent_as_of(members, consents, as_of)
    x = orders[["member_id", "monetary_365d"]].merge(
        members, on="member_id", how="left", validate="1:1"
    )
    x["age_years"] = (as_of.year - x["birth_year"]).astype("Int64")
    x["age_band"] = age_band(x["age_years"])
    x["growth_value"] = x["monetary_365d"].astype("float64")
    x = pd.concat([x, tier_of(x["growth_value"], tier_thresholds)], axis=1)
    return x[["member_id", *(f.name for f in FAMILIES["profile"])]]


def compute_profile(
    con: duckdb.DuckDBPyConnection,
    as_of: pd.Timestamp,
    *,
    tier_thresholds: Sequence[tuple[str, float]],
    orders: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The `profile` family as of `as_of`; `orders` is `order_stats(con, as_of)` if at hand.
    Consent changes are read from the `consents` relation when `con` has one."""
    orders = order_stats(con, as_of) if orders is None else orders
    members = query(con, _MEMBERS_SQL, window_params(as_of, ()))
    consents = None
    if _has_relation(con, "consents"):
        consents = query(con, _CONSENTS_SQL, window_params(as_of, ()))
    return profile_features(members, orders, as_of, tier_thresholds, consents)


def _has_relation(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchone()
    return bool(found and found[0])
