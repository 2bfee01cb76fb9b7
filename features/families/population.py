"""Population statistics: the few numbers a member's features are compared against.

Three families depend on the other members of the snapshot, not on the member alone: the RFM
quintile scores (`features.families.segments`), the lapsed-VIP spend cut
(`features.families.tags`) and the BTYD outlook (`features.families.btyd`, a model fitted on
every buyer). Reducing the population to these numbers lets a snapshot be computed in parts (the
Spark engine computes members partition by partition) and still give every member the values of
the whole snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from features.families import btyd
from features.families.segments import quintile_cuts, score_inputs
from features.families.tags import vip_spend_cut

# The columns `population_stats` reads: all a caller needs to collect from the population.
INPUT_COLUMNS = tuple(dict.fromkeys(("recency_days", "frequency", "monetary", *btyd.INPUT_COLUMNS)))

if TYPE_CHECKING:
    from features.btyd.outlook import BtydOutlook


@dataclass(frozen=True)
class PopulationStats:
    """Quintile cuts of each RFM score ("r" on −recency days, "f" on purchases, "m" on net
    spend in currency) among buyers, the top-decile net spend of buyers (NaN if none) and the
    BTYD outlook model fitted on the buyers (None if none made a repeat purchase)."""

    quintile_cuts: dict[str, tuple[float, ...]]
    vip_spend_cut: float
    btyd: BtydOutlook | None = None


def population_stats(frame: pd.DataFrame) -> PopulationStats:
    """The statistics of the members in `frame` (columns `INPUT_COLUMNS`; non-buyers may be
    left out, they count in neither statistic)."""
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"population frame lacks column(s) {', '.join(missing)}")
    cuts = {key: quintile_cuts(values) for key, values in score_inputs(frame).items()}
    return PopulationStats(
        quintile_cuts=cuts, vip_spend_cut=vip_spend_cut(frame), btyd=btyd.fit_family(frame)
    )
