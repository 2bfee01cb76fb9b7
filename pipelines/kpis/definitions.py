"""What the KPIs count with: the windows and thresholds (`Definitions`), the reporting months,
the member statuses and the RFM segment names (docs/kpis.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.families.segments import NO_PURCHASE, SEGMENT_CELLS

DAY = 86_400  # seconds
STATUSES = ("no_purchase", "active", "dormant", "churned")
NO_PURCHASE_STATUS, ACTIVE, DORMANT, CHURNED = range(4)
SEGMENTS = (*SEGMENT_CELLS, NO_PURCHASE)


@dataclass(frozen=True)
class Definitions:
    """The windows and thresholds of the KPIs (days; tier values in currency)."""

    activation_days: tuple[int, ...] = (7, 30, 90)
    repurchase_days: int = 90
    dormant_days: int = 180
    churned_days: int = 365
    tier_thresholds: tuple[tuple[str, float], ...] = (
        ("basic", 0.0),
        ("silver", 500.0),
        ("gold", 2000.0),
        ("platinum", 5000.0),
    )

    def __post_init__(self) -> None:
        values = [value for _, value in self.tier_thresholds]
        if not values or np.any(np.diff(values) <= 0):
            raise ValueError(
                f"tier_thresholds must name tiers in strictly ascending order of value, got "
                f"{list(self.tier_thresholds)}"
            )
        if not 0 < self.dormant_days < self.churned_days:
            raise ValueError(
                f"dormant_days ({self.dormant_days}) must be positive and below churned_days "
                f"({self.churned_days})"
            )

    @property
    def tiers(self) -> tuple[str, ...]:
        """Tier names, lowest first."""
        return tuple(name for name, _ in self.tier_thresholds)


@dataclass(frozen=True)
class Month:
    """One reporting period: [start, end), `end` the next month's start or the cutoff."""

    label: str  # YYYY-MM
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def complete(self) -> bool:
        """True when the period is the whole calendar month."""
        return self.end == self.start + pd.offsets.MonthBegin(1)


def months(first: pd.Timestamp, cutoff: pd.Timestamp) -> list[Month]:
    """Calendar months (UTC) from the one holding `first` to the one holding the instant just
    before `cutoff`; the last ends at `cutoff`."""
    first, cutoff = utc(first), utc(cutoff)
    if first >= cutoff:
        return []
    start = first.normalize().replace(day=1)
    out = []
    while start < cutoff:
        following = start + pd.offsets.MonthBegin(1)
        out.append(Month(f"{start:%Y-%m}", start, min(following, cutoff)))
        start = following
    return out


def utc(at: pd.Timestamp) -> pd.Timestamp:
    at = pd.Timestamp(at)
    if at.tzinfo is None:
        raise ValueError(f"cutoff must be timezone-aware (UTC), got {at}")
    return at.tz_convert("UTC")
