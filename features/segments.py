"""RFM segments: R, F and M quintile scores among buyers and the named segment of each member.

Scores are computed within the snapshot population (members registered before the cutoff with
at least one purchase): score = 1 + floor(5 × share of buyers with a strictly worse value), so
tied values share a score and the result does not depend on row order or member ids. "Worse"
means longer since the last purchase (R), fewer purchases (F), lower net spend (M); 5 is best.
The named segment follows the standard R × F grid (docs/features.md); members without a
purchase are "no_purchase".
"""

from __future__ import annotations

import pandas as pd

NO_PURCHASE = "no_purchase"

# Segment → its cells of the standard R × F grid, written "RF" (R score then F score). Every
# one of the 25 cells appears exactly once (tests check it).
SEGMENT_CELLS: dict[str, tuple[str, ...]] = {
    "champions": ("54", "55"),
    "loyal": ("34", "35", "44", "45"),
    "potential_loyalist": ("42", "43", "52", "53"),
    "new": ("51",),
    "promising": ("41",),
    "need_attention": ("33",),
    "about_to_sleep": ("31", "32"),
    "at_risk": ("13", "14", "23", "24"),
    "cant_lose": ("15", "25"),
    "hibernating": ("12", "21", "22"),
    "lost": ("11",),
}


def quintile_score(values: pd.Series) -> pd.Series:
    """1-5 per value: 1 + floor(5 × share of values strictly below it); ties share a score.

    Missing values get a missing score and do not count in the shares.
    """
    present = values.dropna().astype("float64")
    below = present.rank(method="min") - 1
    score = 1 + (5 * below) // max(len(present), 1)
    return score.astype("Int64").reindex(values.index)


def segment_of(r: pd.Series, f: pd.Series) -> pd.Series:
    """Named segment of each (R, F) score pair; "no_purchase" where a score is missing."""
    lookup = {int(cell): name for name, cells in SEGMENT_CELLS.items() for cell in cells}
    keys = 10 * r.fillna(0).astype("int64") + f.fillna(0).astype("int64")
    return keys.map(lookup).fillna(NO_PURCHASE).astype(object)


def segment_features(rfm: pd.DataFrame) -> pd.DataFrame:
    """r/f/m scores, rfm_cell and segment from `recency_days`, `frequency`, `monetary`."""
    buyer = rfm["frequency"] > 0
    out = rfm[["member_id"]].copy()
    out["r_score"] = quintile_score(-rfm["recency_days"].where(buyer))
    out["f_score"] = quintile_score(rfm["frequency"].where(buyer))
    out["m_score"] = quintile_score(rfm["monetary"].where(buyer))
    cell = out["r_score"].astype("string") + out["f_score"].astype("string")
    out["rfm_cell"] = cell + out["m_score"].astype("string")
    out["segment"] = segment_of(out["r_score"], out["f_score"])
    return out
