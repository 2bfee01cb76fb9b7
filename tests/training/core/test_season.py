"""Season profiles: flat without a year of orders, detrended, and the effective length of a
forecast window."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from training.core.season import WEEKS, YEAR_DAYS, Season, relative_rates, season

START = pd.Timestamp("2022-01-03", tz="UTC")  # a Monday; week k of the data starts 7k days on
FLAT = 30  # purchase orders per week outside the peak
PEAK = 150  # orders in the peak week


def weekly_orders(
    counts: Sequence[float], start: pd.Timestamp = START, members: Sequence[int] | None = None
) -> pd.DataFrame:
    """Purchase orders: counts[k] spread evenly over the week starting `start` + 7k days, by
    the first `members[k]` members taking turns (when None, a pool of `max(counts)` members
    taking turns across weeks, so all have bought within the first weeks)."""
    pool = int(max(counts)) if len(counts) else 1
    rows = []
    for k, n in enumerate(int(c) for c in counts):
        for j in range(n):
            member = j % members[k] if members is not None else len(rows) % pool
            at = start + pd.Timedelta(days=7 * k) + pd.Timedelta(hours=168 * j / n)
            rows.append((at, f"m{member}"))
    times, ids = zip(*rows, strict=True) if rows else ((), ())
    return pd.DataFrame(
        {"member_id": list(ids), "ordered_at": pd.DatetimeIndex(times), "is_return": False}
    )


def at_week(k: int) -> pd.Timestamp:
    return START + pd.Timedelta(days=7 * k)


@pytest.fixture(scope="module")
def peaked() -> tuple[pd.DataFrame, pd.Timestamp]:
    """Two years of a flat programme with one peak week a year (weeks 47 and 99) and the
    cutoff at week 90: the coming peak is 9 weeks away."""
    counts = np.full(2 * WEEKS, float(FLAT))
    counts[[47, 47 + WEEKS]] = PEAK
    return weekly_orders(counts), at_week(90)


def test_less_than_a_year_of_orders_gives_a_flat_unknown_profile() -> None:
    """Given 51 weeks of orders, the profile is unknown and a window lasts its own length."""
    orders = weekly_orders(np.full(51, float(FLAT)))
    cutoff = at_week(51)

    profile = season(orders, cutoff)

    assert not profile.known, "51 weeks of orders cannot shape a yearly profile"
    assert profile.rates == ()
    assert profile.effective_days(cutoff, 30.5) == 30.5
    assert not season(orders.iloc[:0], cutoff).known, "no orders at all: unknown"


def test_a_full_year_of_orders_is_known_and_has_mean_one() -> None:
    """Given exactly 52 weeks of orders before the cutoff, the profile is known, 52 weekly
    rates averaging 1."""
    profile = season(weekly_orders(np.full(WEEKS, float(FLAT))), at_week(WEEKS))
    assert profile.known
    assert len(profile.rates) == WEEKS
    assert np.mean(profile.rates) == pytest.approx(1.0)
    assert profile.start == at_week(WEEKS) - pd.Timedelta(days=YEAR_DAYS)


def test_returns_are_not_purchases() -> None:
    """A year of returns before a few months of purchases does not make the season known."""
    returns = weekly_orders(np.full(WEEKS, float(FLAT))).assign(is_return=True)
    buys = weekly_orders(np.full(20, float(FLAT)), at_week(WEEKS))
    assert not season(pd.concat([returns, buys]), at_week(WEEKS + 20)).known


def test_a_steadily_growing_programme_without_season_has_rates_near_one() -> None:
    """Given weekly orders growing 2 % a week for 60 weeks, the trend is removed: every
    weekly rate is within 2 % of 1 and a month lasts about a month."""
    cutoff = at_week(60)
    orders = weekly_orders(np.round(20 * 1.02 ** np.arange(60)))

    profile = season(orders, cutoff)

    assert profile.known
    assert np.allclose(profile.rates, 1.0, atol=0.02), f"rates {min(profile.rates):.3f}.."
    assert profile.effective_days(cutoff, 30) == pytest.approx(30, rel=0.02)


def test_detrending_keeps_a_peak_in_a_growing_programme() -> None:
    """relative_rates: a fivefold week on top of exponential growth stays the highest rate
    (smoothed over its neighbours), and the rates average 1."""
    counts = 20 * 1.03 ** np.arange(WEEKS)
    counts[30] *= 5
    rates = relative_rates(counts)
    assert int(np.argmax(rates)) in (29, 30, 31)
    assert rates[30] > 2.0
    assert rates.mean() == pytest.approx(1.0)


def test_a_window_holding_the_peak_week_lasts_longer_than_its_length(peaked) -> None:
    """Given a peak week 9 weeks ahead (a year earlier), a 10-week window holding it lasts
    more than 70 average-rate days; a 4-week window before it, less than 28."""
    orders, cutoff = peaked
    profile = season(orders, cutoff)
    assert profile.known

    holding = profile.effective_days(cutoff, 70)
    before = profile.effective_days(cutoff, 28)

    assert holding > 70 + 5, f"the peak week should add days, got {holding:.1f}"
    assert before < 28, f"quiet weeks are below the average rate, got {before:.1f}"


def test_a_full_year_window_lasts_a_year(peaked) -> None:
    """Rates average 1, so 364 days last 364 average-rate days from any cutoff (and two
    years two), with or without a peak."""
    orders, cutoff = peaked
    profile = season(orders, cutoff)
    for offset in (0, 3, 200):
        start = cutoff + pd.Timedelta(days=offset)
        assert profile.effective_days(start, YEAR_DAYS) == pytest.approx(YEAR_DAYS)
        assert profile.effective_days(start, 2 * YEAR_DAYS) == pytest.approx(2 * YEAR_DAYS)


def test_effective_days_counts_a_fractional_last_day_pro_rata() -> None:
    """With rates of 2 for the first week, 2.5 days last 5; zero days last 0."""
    profile = Season(START, (2.0,) + (1.0,) * (WEEKS - 1))
    cutoff = START + pd.Timedelta(days=YEAR_DAYS)  # a year on: week 0 again
    assert profile.effective_days(cutoff, 2.5) == pytest.approx(5.0)
    assert profile.effective_days(cutoff + pd.Timedelta(days=7), 2.5) == pytest.approx(2.5)
    assert profile.effective_days(cutoff, 0) == 0.0


def test_orders_after_the_cutoff_do_not_change_the_profile(peaked) -> None:
    """Point in time: the profile at a cutoff reads the year before it only."""
    orders, cutoff = peaked
    before = orders.loc[orders["ordered_at"] < cutoff]
    assert season(before, cutoff) == season(orders, cutoff)


def test_a_programme_ramping_up_at_launch_has_no_season_a_year_on() -> None:
    """Given 10 members joining each week over the first 8 weeks and each buying once a week
    ever since (80 orders a week from week 8 on: no season at all), when the profile is taken
    at the first anniversary, then a 28-day window lasts about 28 days (per-buyer rates)."""
    joined = np.minimum(np.arange(WEEKS) + 1, 8) * 10
    cutoff = at_week(WEEKS)

    profile = season(weekly_orders(joined, members=joined), cutoff)

    assert profile.known
    assert profile.effective_days(cutoff, 28) == pytest.approx(28, rel=0.1)
