"""Season: how busy the calendar window of a forecast was a year earlier (pure pandas).

A BTYD forecast assumes a constant purchase rate, so a window that holds a peak season is
forecast like any other. When the orders before a cutoff cover a full year, the weekly purchase
orders per buyer of that year (per member who had made a first purchase by that week, so a
programme's launch, when buyers are still joining, is not a low season) give a profile: each
week's rate relative to the year's average, with the year's trend removed (a growing or
shrinking programme is not a season). A forecast window then
lasts `effective_days` — its length in average-rate days (a 30-day window worth 1.5 × the
average rate lasts 45) — and the BTYD offsets are computed over that. With less than a year
of history the profile is flat (the forecast knows nothing of the season, and says so: `known`
is False).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

WEEKS = 52
YEAR_DAYS = 7 * WEEKS
SMOOTH_WEEKS = 3  # centred moving average over this many weeks (circular)


@dataclass(frozen=True)
class Season:
    """Weekly purchase rates relative to the average over the year before `start + 364 days`;
    week k covers days [start + 7k, start + 7k + 7) of that year and, a year on, of every
    later one."""

    start: pd.Timestamp
    rates: tuple[float, ...] = ()

    @property
    def known(self) -> bool:
        """True when a full year of orders shaped the profile."""
        return len(self.rates) == WEEKS

    def effective_days(self, cutoff: pd.Timestamp, days: float) -> float:
        """The window [cutoff, cutoff + days) in average-rate days (`days` when unknown)."""
        if not self.known or days <= 0:
            return float(days)
        offsets = np.arange(int(np.ceil(days)))
        day_of_year = ((cutoff - self.start).days + offsets) % YEAR_DAYS
        weights = np.minimum(days - offsets, 1.0)  # a fractional last day counts pro rata
        return float(np.sum(np.asarray(self.rates)[day_of_year // 7] * weights))


def season(orders: pd.DataFrame, cutoff: pd.Timestamp) -> Season:
    """The season profile from the purchase orders placed in the year before `cutoff`."""
    start = cutoff - pd.Timedelta(days=YEAR_DAYS)
    buys = orders.loc[~orders["is_return"].astype(bool), "ordered_at"]
    if buys.empty or buys.min() > start:
        return Season(start)
    recent = orders.loc[buys.index].loc[(buys >= start) & (buys < cutoff)]
    week = _week(recent["ordered_at"], start)
    counts = np.bincount(week, minlength=WEEKS).astype(float)
    first = orders.loc[buys.index].groupby("member_id")["ordered_at"].min()
    joined = np.bincount(_week(first.loc[first < cutoff], start), minlength=WEEKS)
    buyers = np.cumsum(joined).astype(float)  # members with a first purchase by each week
    per_buyer = (counts + 1.0) / np.maximum(buyers, 1.0)  # +1: a week without orders
    return Season(start, tuple(float(r) for r in relative_rates(per_buyer)))


def _week(stamps: pd.Series, start: pd.Timestamp) -> np.ndarray:
    """Week of the profile year (0–51) of each timestamp; earlier ones count in week 0."""
    return ((stamps - start).dt.days // 7).clip(0, WEEKS - 1).to_numpy(dtype=int)


def relative_rates(counts: np.ndarray) -> np.ndarray:
    """Detrended, smoothed weekly rates divided by their mean (mean 1)."""
    logs = np.log(counts)
    week = np.arange(len(counts))
    slope, intercept = np.polyfit(week, logs, 1)
    detrended = np.exp(logs - slope * week - intercept)
    half = SMOOTH_WEEKS // 2
    padded = np.concatenate([detrended[-half:], detrended, detrended[:half]])
    smooth = np.convolve(padded, np.ones(SMOOTH_WEEKS) / SMOOTH_WEEKS, mode="valid")
    return smooth / smooth.mean()
