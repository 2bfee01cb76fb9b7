"""Tier-upgrade timing: when a member's growth value is expected to reach the next tier, and the
chance that it does so within the tier period.

Pure and vectorised: arrays in (one value per member, NaN when missing), arrays out. Money is in
the dataset currency; times are days after the snapshot cutoff C.

The growth value G is the net spend of the rolling 365 days before a moment (the tier rule of
`features.families.profile.tier_of`). t days after C it is

    G(t) = G(0) + S(t) - D(t)

with S(t) the member's net spend in (C, C + t] and D(t) the spend of [C - 365, C - 365 + t),
which has left the window by then. The member reaches the next tier once G(t) >= the tier's
threshold, i.e. once S(t) - D(t) >= d, the distance to the next tier (`distance_to_next_tier`).

D(t) is known from the trailing windows: the net spend older than 90 days (monetary_365d -
monetary_90d) leaves the window over the next 275 days, the spend 30-90 days old over days
275-335, the last 30 days' over days 335-365. Inside each band the spend is taken as spread
evenly over time (only the band totals are known), so D(t) is piecewise linear.

S(t) comes from the spend forecast over the spend model's horizon H: expected spend
(`spend_mean`) and the calibrated p10 / p50 / p90. The member is taken to spend at a steady rate
R per day that is not known, with S(H) = R H distributed as the forecast says:

- the survival function P(S(H) >= x) is log-linear between the points (0, 1), (p10, 0.9),
  (p50, 0.5) and (p90, 0.1), and beyond p90 continues the p50-p90 piece (an exponential tail of
  scale (p90 - p50) / ln 5; exact for an exponential spend). A repeated quantile is a point
  mass, so p10 = 0 is a 10 % chance of no spend at all; where p50 = p90 (e.g. a 90 % chance of
  no spend) the tail takes the scale that makes the mean `spend_mean`. On simulated members
  (gamma-mixed Poisson orders, gamma order values) this tail was closer to the simulated one
  than a tail fitted to the mean, which the interval's boosters need not agree with;
- S(t) = R t (the fluid model). Then the next tier is reached within the period T exactly when
  R >= r* = min over 0 < t <= T of (d + D(t)) / t; with D piecewise linear the minimum is at one
  of the band ends or at T. The probability is P(S(H) >= r* H).

The expected date is the first day the expected growth value reaches the threshold:
spend_mean / H * t - D(t) >= d, solved exactly on the pieces of D; NaN when that does not happen
within the period (not reachable at the expected rate).

Accounted for: spend leaving the rolling window (so the distance can grow before it shrinks),
refunds in the window (negative band totals come back), the forecast's full uncertainty (the
calibrated interval, not a Poisson count alone), a period (at most the 365-day window)
shorter or longer than H.
Not accounted for: when within a band the old spend falls (spread evenly), the lumpiness of
orders inside the period (a steady rate; with no spend leaving the window and T = H the
probability is exact whatever the timing, since S only grows), a rate that changes over the
period (seasonality, the member lapsing part-way), refunds of future orders beyond what the
net-spend forecast holds, and skipping a tier (reaching a higher one counts as reaching it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GROWTH_DAYS = 365.0  # the rolling window of the growth value (days)
WINDOWS_DAYS = (90.0, 30.0)  # trailing net-spend windows below 365 days, longest first
LEVELS = (1.0, 0.9, 0.5, 0.1)  # P(S(H) >= x) at x = 0, p10, p50, p90


@dataclass(frozen=True)
class TierState:
    """Where each member stands at the cutoff: `distance` to the next tier (currency; NaN at
    the top tier) and the net spend of the trailing 30, 90 and 365 days (currency; the 365-day
    one is the growth value). A missing window counts as nothing leaving the window from it."""

    distance: np.ndarray
    spend_30d: np.ndarray
    spend_90d: np.ndarray
    spend_365d: np.ndarray


@dataclass(frozen=True)
class SpendForecast:
    """Net spend over the next `horizon_days` days per member: expected value `mean` and the
    `p10` / `p50` / `p90` interval (currency; NaN where the member has no forecast)."""

    mean: np.ndarray
    p10: np.ndarray
    p50: np.ndarray
    p90: np.ndarray
    horizon_days: float


def dropout_knots(state: TierState, period_days: float) -> tuple[np.ndarray, np.ndarray]:
    """(times, dropped): the ends of the spend bands leaving the window within the period
    (days, shape (k,), ascending, the last one `period_days`, at most 365) and D at each
    (currency, shape (n, k)), the spend of the window that has left it by then."""
    old = _zero(state.spend_365d) - _zero(state.spend_90d)
    mid = _zero(state.spend_90d) - _zero(state.spend_30d)
    starts = np.array([0.0, *(GROWTH_DAYS - w for w in WINDOWS_DAYS), GROWTH_DAYS])
    levels = np.column_stack([np.zeros_like(old), old, old + mid, _zero(state.spend_365d)])
    inside = starts[starts < period_days]
    times = np.r_[inside[1:], period_days]
    dropped = np.column_stack([_interpolate(starts, levels, t) for t in times])
    return times, dropped


def _interpolate(times: np.ndarray, levels: np.ndarray, t: float) -> np.ndarray:
    """Row-wise piecewise-linear value of `levels` (n, k) at times `times` (k,) at time t; the
    last level beyond the last time."""
    k = int(np.searchsorted(times, t, side="right")) - 1
    if k >= len(times) - 1:
        return levels[:, -1]
    share = (t - times[k]) / (times[k + 1] - times[k])
    return levels[:, k] + share * (levels[:, k + 1] - levels[:, k])


def _zero(values: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)


def tail_scale(forecast: SpendForecast) -> np.ndarray:
    """Scale (currency) of the exponential tail of S(H) beyond p90: that of the p50-p90 piece,
    (p90 - p50) / ln 5; where p50 = p90, the scale that makes the distribution's mean
    `forecast.mean` (0 when the interval alone implies a larger one, NaN without a mean)."""
    xs, levels = _knots(forecast)
    body = np.zeros(len(forecast.mean))
    for k in range(len(LEVELS) - 1):
        body += _piece_mean(xs[k], xs[k + 1], levels[k], levels[k + 1])
    with np.errstate(invalid="ignore"):
        matched = np.maximum((np.asarray(forecast.mean, dtype=float) - body) / LEVELS[-1], 0.0)
    piece = (xs[-1] - xs[-2]) / np.log(levels[-2] / levels[-1])
    return np.where(piece > 0, piece, matched)


def _knots(forecast: SpendForecast) -> tuple[list[np.ndarray], tuple[float, ...]]:
    """The x (currency) of each survival level: 0, p10, p50, p90, sorted per member."""
    interval = np.sort(np.column_stack([forecast.p10, forecast.p50, forecast.p90]), axis=1)
    interval = np.clip(interval, 0.0, None)
    return [np.zeros(len(interval)), *interval.T], LEVELS


def _piece_mean(a: np.ndarray, b: np.ndarray, sa: float, sb: float) -> np.ndarray:
    """Integral of the survival function over [a, b] where it falls log-linearly from sa to
    sb: (sa - sb) (b - a) / ln(sa / sb)."""
    return (sa - sb) * (b - a) / np.log(sa / sb)


def spend_survival(forecast: SpendForecast, amount: np.ndarray) -> np.ndarray:
    """P(S(H) >= amount) per member under the distribution fitted to the forecast (module
    docstring); 1 for an amount <= 0, NaN without a forecast."""
    x = np.asarray(amount, dtype=float)
    xs, levels = _knots(forecast)
    scale = tail_scale(forecast)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        beyond = x - xs[-1]
        tail = np.where(scale > 0, levels[-1] * np.exp(-beyond / scale), 0.0)
        out = np.where(beyond > 0, tail, np.nan)
        for k in range(len(levels) - 1):  # the pieces are disjoint; a zero-width one is an atom
            a, b = xs[k], xs[k + 1]
            share = (x - a) / (b - a)
            inside = (x > a) & (x <= b)
            out = np.where(inside, levels[k] * (levels[k + 1] / levels[k]) ** share, out)
        out = np.where(x <= 0, 1.0, out)
    missing = np.isnan(x) | np.isnan(scale)
    return np.where(missing, np.nan, out)


def upgrade_days(state: TierState, forecast: SpendForecast, period_days: float) -> np.ndarray:
    """Days after the cutoff until the expected growth value reaches the next tier (spend at
    the expected rate spend_mean / H, the window's old spend leaving it); 0 where the distance
    is not positive; NaN where that is not within `period_days`, at the top tier and without
    an expected spend."""
    times, dropped = dropout_knots(state, period_days)
    rate = np.asarray(forecast.mean, dtype=float) / forecast.horizon_days
    d = np.asarray(state.distance, dtype=float)
    t = np.r_[0.0, times]
    gained = rate[:, None] * t[None, :] - np.column_stack([np.zeros(len(d)), dropped])
    with np.errstate(invalid="ignore"):
        reached = gained >= d[:, None]
    first = np.argmax(reached, axis=1)
    rows = np.arange(len(d))
    before = np.maximum(first - 1, 0)
    g0, g1 = gained[rows, before], gained[rows, first]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(g1 > g0, (d - g0) / (g1 - g0), 0.0)
    days = np.where(first == 0, 0.0, t[before] + share * (t[first] - t[before]))
    days = np.where(d <= 0, 0.0, np.where(reached.any(axis=1), days, np.nan))
    return np.where(np.isnan(rate), np.nan, days)


def upgrade_probability(
    state: TierState, forecast: SpendForecast, period_days: float
) -> np.ndarray:
    """P(the growth value reaches the next tier within `period_days` days): the chance the
    member's spend rate is at least the least rate r* that gets there (module docstring); 1
    where the distance is not positive, NaN at the top tier and without a forecast."""
    times, dropped = dropout_knots(state, period_days)
    d = np.asarray(state.distance, dtype=float)
    needed = np.min((d[:, None] + dropped) / times[None, :], axis=1)
    probability = spend_survival(forecast, needed * forecast.horizon_days)
    probability = np.where(d <= 0, 1.0, probability)
    return np.where(np.isnan(d) | np.isnan(forecast.p90), np.nan, probability)


def upgrade_timing(
    state: TierState, forecast: SpendForecast, period_days: float
) -> dict[str, np.ndarray]:
    """`next_tier_days` (`upgrade_days`) and `next_tier_probability` (`upgrade_probability`)
    of every member."""
    if not 0 < period_days <= GROWTH_DAYS or forecast.horizon_days <= 0:
        raise ValueError(
            f"the tier period must be 1-{GROWTH_DAYS:.0f} days (got {period_days}) and the spend "
            f"horizon positive (got {forecast.horizon_days} days): set tier_period_days"
        )
    return {
        "next_tier_days": upgrade_days(state, forecast, period_days),
        "next_tier_probability": upgrade_probability(state, forecast, period_days),
    }
