"""RFM segments: R, F and M quintile scores among buyers and the named segment of each member.

Scores are computed within the snapshot population (members registered before the cutoff with
at least one purchase): score = 1 + floor(5 × share of buyers with a strictly worse value), so
tied values share a score and the result does not depend on row order or member ids. "Worse"
means longer since the last purchase (R), fewer purchases (F), lower net spend (M); 5 is best.
The named segment follows the standard R × F grid (docs/features.md); members without a
purchase are "no_purchase".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
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


def quintile_cuts(values: pd.Series) -> tuple[float, ...]:
    """The four values a quintile score compares against; () when no value is present.

    With the n present values sorted, cut k (1-4) is the ceil(k × n / 5)-th smallest: a value
    has at least ceil(k × n / 5) values strictly below it exactly when it exceeds that cut, so
    `quintile_score(values, quintile_cuts(values))` = 1 + floor(5 × share strictly below).
    """
    present = np.sort(values.dropna().astype("float64").to_numpy())
    n = len(present)
    return tuple(float(present[-(-k * n // 5) - 1]) for k in range(1, 5)) if n else ()


def quintile_score(values: pd.Series, cuts: tuple[float, ...] | None = None) -> pd.Series:
    """1-5 per value: 1 + floor(5 × share of values strictly below it); ties share a score.

    The shares are among `values` themselves, or among the population whose `quintile_cuts`
    are given (so a part of a population can be scored against the whole). Missing values get
    a missing score and do not count in the shares.
    """
    cuts = quintile_cuts(values) if cuts is None else cuts
    present = values.dropna().astype("float64").to_numpy()
    score = 1 + (present[:, None] > np.asarray(cuts, dtype="float64")[None, :]).sum(axis=1)
    return pd.Series(score, index=values.dropna().index).astype("Int64").reindex(values.index)


def segment_of(r: pd.Series, f: pd.Series) -> pd.Series:
    """Named segment of each (R, F) score pair; "no_purchase" where a score is missing."""
    lookup = {int(cell): name for name, cells in SEGMENT_CELLS.items() for cell in cells}
    keys = 10 * r.fillna(0).astype("int64") + f.fillna(0).astype("int64")
    return keys.map(lookup).fillna(NO_PURCHASE).astype(object)


def score_inputs(rfm: pd.DataFrame) -> dict[str, pd.Series]:
    """The value each score ranks, null for non-buyers: "r" (−recency), "f" and "m"."""
    buyer = (rfm["frequency"] > 0).fillna(False).astype(bool)
    return {
        "r": -rfm["recency_days"].astype("float64").where(buyer),
        "f": rfm["frequency"].astype("float64").where(buyer),
        "m": rfm["monetary"].astype("float64").where(buyer),
    }


def segment_features(
    rfm: pd.DataFrame, cuts: Mapping[str, tuple[float, ...]] | None = None
) -> pd.DataFrame:
    """r/f/m scores, rfm_cell and segment from `recency_days`, `frequency`, `monetary`.

    Scores rank the buyers of `rfm`, or the population whose `quintile_cuts` of each
    `score_inputs` key ("r", "f", "m") are given.
    """
    inputs = score_inputs(rfm)
    out = rfm[["member_id"]].copy()
    for key, values in inputs.items():
        out[f"{key}_score"] = quintile_score(values, None if cuts is None else cuts[key])
    cell = out["r_score"].astype("string") + out["f_score"].astype("string")
    out["rfm_cell"] = cell + out["m_score"].astype("string")
    out["segment"] = segment_of(out["r_score"], out["f_score"])
    return out
