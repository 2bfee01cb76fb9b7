"""Each member's status, tier and RFM segment at an instant, vectorised over `Inputs`.

Only rows before the instant count. Status follows the lifecycle stage thresholds (no purchase,
active, dormant, churned), the tier `features.families.profile.tier_of` (growth value = net
spend over the 365 days before the instant) and the segment `features.families.segments`
(R and F quintile scores among the buyers: 1 + floor(5 × share strictly worse)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.families.segments import SEGMENT_CELLS
from pipelines.kpis.definitions import (
    ACTIVE,
    CHURNED,
    DAY,
    DORMANT,
    NO_PURCHASE_STATUS,
    SEGMENTS,
    Definitions,
)
from pipelines.kpis.inputs import Inputs

NO_SEGMENT = len(SEGMENTS) - 1  # index of no_purchase
_SEGMENT_OF_CELL = np.full(56, NO_SEGMENT, dtype=np.int64)
for _index, _cells in enumerate(SEGMENT_CELLS.values()):
    _SEGMENT_OF_CELL[[int(cell) for cell in _cells]] = _index


@dataclass(frozen=True)
class State:
    """Per member of `Inputs` at one instant; meaningful where `registered`."""

    registered: np.ndarray  # bool: registered before the instant
    status: np.ndarray  # index into STATUSES
    tier: np.ndarray  # tier rank, 0 = lowest
    segment: np.ndarray  # index into SEGMENTS


def state_of(inputs: Inputs, at: float, definitions: Definitions) -> State:
    """The state of every member at `at` (epoch seconds)."""
    n = inputs.size
    registered = inputs.registered_s < at
    before = inputs.p_time < at  # a prefix of each member's purchases (sorted by time)
    count = np.bincount(inputs.p_member[before], minlength=n)
    bought = count > 0
    last = np.full(n, np.nan)
    last[bought] = inputs.p_time[inputs.p_start[:-1][bought] + count[bought] - 1]
    recency = at - last
    churned, dormant = definitions.churned_days * DAY, definitions.dormant_days * DAY
    status = np.select(
        [~bought, recency >= churned, recency >= dormant],
        [NO_PURCHASE_STATUS, CHURNED, DORMANT],
        default=ACTIVE,
    )
    window = (inputs.o_time >= at - 365 * DAY) & (inputs.o_time < at)
    growth = np.bincount(inputs.o_member[window], weights=inputs.o_net[window], minlength=n)
    # Sums of cents that reach a threshold exactly must not fall a float rounding short of it
    # (which summation order decides): compare at a millionth of the currency unit.
    growth = np.round(growth, 6)
    values = np.array([value for _, value in definitions.tier_thresholds], dtype=np.float64)
    tier = np.maximum(np.searchsorted(values, growth, side="right") - 1, 0)
    buyers = registered & bought
    segment = np.full(n, NO_SEGMENT, dtype=np.int64)
    r, f = _score(last[buyers]), _score(count[buyers].astype(np.float64))
    segment[buyers] = _SEGMENT_OF_CELL[10 * r + f]
    return State(registered, status.astype(np.int64), tier.astype(np.int64), segment)


def _score(values: np.ndarray) -> np.ndarray:
    """1 + floor(5 × share of `values` strictly below each); ties share a score."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    below = np.searchsorted(np.sort(values), values, side="left")
    return 1 + (5 * below) // len(values)
