"""Tier-upgrade timing: the fitted spend distribution, the expected date and the probability of
reaching the next tier within the tier period, with spend leaving the rolling window."""

from __future__ import annotations

import math

import numpy as np
import pytest

from decisions.upgrade import (
    SpendForecast,
    TierState,
    spend_survival,
    tail_scale,
    upgrade_days,
    upgrade_probability,
    upgrade_timing,
)

H = 365.0
# An exponential spend of mean 100 over H: its p10 / p50 / p90.
EXP = tuple(-100 * math.log(1 - q) for q in (0.1, 0.5, 0.9))


def forecast(n: int, mean: float = 100.0, quantiles: tuple[float, ...] = EXP) -> SpendForecast:
    return SpendForecast(*(np.full(n, v) for v in (mean, *quantiles)), horizon_days=H)


def state(distance: list[float], d30=0.0, d90=0.0, d365=0.0) -> TierState:
    n = len(distance)
    return TierState(
        np.array(distance, dtype=float), np.full(n, d30), np.full(n, d90), np.full(n, d365)
    )


def test_the_fitted_spend_distribution_keeps_the_forecast_quantiles() -> None:
    """P(S >= p10, p50, p90) = 0.9, 0.5, 0.1, and an exponential forecast is reproduced
    exactly, tail included."""
    x = np.array([0.0, *EXP, 400.0])
    survival = spend_survival(forecast(len(x)), x)
    assert survival == pytest.approx([1.0, 0.9, 0.5, 0.1, math.exp(-4.0)])
    assert tail_scale(forecast(1)) == pytest.approx([100.0]), "exponential: scale = mean"


def test_a_repeated_quantile_is_a_point_mass_and_a_flat_top_takes_the_mean() -> None:
    """p10 = p50 = 0: a 50 % chance of no spend; p50 = p90: the tail scale keeps the mean."""
    zero = forecast(2, mean=60.0, quantiles=(0.0, 0.0, 150.0))
    assert spend_survival(zero, np.array([1e-9, 150.0])) == pytest.approx([0.5, 0.1])
    flat = forecast(1, mean=30.0, quantiles=(0.0, 0.0, 0.0))
    assert tail_scale(flat) == pytest.approx([300.0]), "0.1 x scale = the mean of 30"
    grid = np.linspace(1e-6, 5000.0, 200_001)
    mean = np.trapezoid(spend_survival(forecast(len(grid), 30.0, (0.0, 0.0, 0.0)), grid), grid)
    assert mean == pytest.approx(30.0, rel=1e-3), "the integral of the survival is the mean"


def test_without_spend_leaving_the_window_the_probability_is_the_forecasts() -> None:
    """Nothing leaves the window and the period is the horizon: reaching a distance d is
    S(H) >= d, so d = p50 is an even chance, and the date is d over the expected daily rate."""
    tiers = state([EXP[1], EXP[2], 50.0])
    timing = upgrade_timing(tiers, forecast(3), 365)
    assert timing["next_tier_probability"] == pytest.approx([0.5, 0.1, math.exp(-0.5)])
    assert timing["next_tier_days"][2] == pytest.approx(50.0 / (100.0 / H))
    assert np.isnan(timing["next_tier_days"][1]), "p90 = 230 > the expected 100: no date"


def test_spend_leaving_the_window_lowers_the_chance_and_delays_the_date() -> None:
    """A member holding 300 of growth value from old purchases must replace them: the same
    distance is harder to close than for a member whose growth value is all recent."""
    recent = state([50.0], d30=300.0, d90=300.0, d365=300.0)
    old = state([50.0], d30=0.0, d90=0.0, d365=300.0)
    f = forecast(1, mean=400.0, quantiles=(120.0, 330.0, 800.0))
    assert upgrade_probability(old, f, 365)[0] < upgrade_probability(recent, f, 365)[0]
    assert upgrade_days(old, f, 365)[0] > upgrade_days(recent, f, 365)[0]
    # old spend leaves over days 0-275 at 300/275 a day, faster than 400/365 comes in, so the
    # expected growth value first falls; the least rate that gets there is at day 365:
    # (50 + 300) / 365 a day, i.e. 350 over the horizon
    assert upgrade_probability(old, f, 365)[0] == pytest.approx(
        spend_survival(f, np.array([350.0]))[0]
    )


def test_the_probability_is_the_least_rate_that_reaches_the_tier() -> None:
    """Brute force: under the steady-rate model the member reaches the tier when R t - D(t) >=
    d for some t <= T; the chance of that equals the closed form, also when refunds (a
    negative band) leave the window."""
    f = forecast(1, mean=250.0, quantiles=(40.0, 200.0, 520.0))
    t = np.linspace(0.01, 200.0, 20_000)
    for d30, d90, d365 in ((20.0, 80.0, 400.0), (-40.0, 60.0, 500.0), (0.0, 0.0, 0.0)):
        tiers = state([120.0], d30, d90, d365)
        dropped = np.interp(
            t, [0, 275, 335, 365], [0, d365 - d90, d365 - d30, d365]
        )  # D(t): spread evenly inside each band
        needed = np.min((120.0 + dropped) / t) * H
        expected = spend_survival(f, np.array([needed]))[0]
        assert upgrade_probability(tiers, f, 200)[0] == pytest.approx(expected, rel=1e-3)


def test_a_refund_leaving_the_window_brings_the_tier_closer() -> None:
    refund = state([100.0], d30=0.0, d90=0.0, d365=-80.0)  # net -80 older than 90 days
    none = state([100.0])
    f = forecast(1)
    assert upgrade_probability(refund, f, 365)[0] > upgrade_probability(none, f, 365)[0]
    assert upgrade_days(refund, f, 365)[0] < upgrade_days(none, f, 365)[0]


def test_a_shorter_period_gives_a_smaller_chance() -> None:
    tiers, f = state([80.0, 80.0]), forecast(2)
    short, full = upgrade_probability(tiers, f, 90), upgrade_probability(tiers, f, 365)
    assert short[0] < full[0]
    assert short[0] == pytest.approx(spend_survival(f, np.array([80.0 * H / 90]))[0])


def test_top_tier_missing_forecast_and_a_reached_tier() -> None:
    """Top tier (no distance) and no forecast: NaN; a distance already covered: day 0, 1."""
    f = SpendForecast(
        np.array([100.0, np.nan, 100.0]),
        np.array([10.0, np.nan, 10.0]),
        np.array([70.0, np.nan, 70.0]),
        np.array([230.0, np.nan, 230.0]),
        horizon_days=H,
    )
    timing = upgrade_timing(state([np.nan, 50.0, 0.0]), f, 365)
    assert np.isnan(timing["next_tier_days"][:2]).all()
    assert np.isnan(timing["next_tier_probability"][:2]).all()
    assert (timing["next_tier_days"][2], timing["next_tier_probability"][2]) == (0.0, 1.0)


def test_the_chance_falls_with_the_distance_and_rises_with_the_spend() -> None:
    distances = np.linspace(10.0, 600.0, 30)
    p = upgrade_probability(state(list(distances), 10.0, 40.0, 200.0), forecast(30), 365)
    assert np.all(np.diff(p) <= 0) and np.all((p >= 0) & (p <= 1))
    more = forecast(30, mean=200.0, quantiles=tuple(2 * q for q in EXP))
    assert np.all(upgrade_probability(state(list(distances)), more, 365) >= p)


def test_a_period_beyond_the_growth_window_is_refused() -> None:
    with pytest.raises(ValueError, match="tier_period_days"):
        upgrade_timing(state([10.0]), forecast(1), 400)


def test_the_probability_matches_simulated_members_when_nothing_leaves_the_window() -> None:
    """Model behaviour: members whose orders are Poisson with a gamma-distributed rate and
    whose order values are gamma; given the exact p10 / p50 / p90 and mean of their spend over
    the horizon, the chance of covering a distance within it is the simulated share (below
    p50 with p10 = 0 the share with no spend at all is only known to be at least 10 %)."""
    rng = np.random.default_rng(11)
    rate = rng.gamma(2.0, 4.0 / 2.0, 400_000)  # 4 orders a year on average
    orders = rng.poisson(rate)
    spend = np.where(orders > 0, rng.gamma(np.maximum(orders, 1) * 2.0, 60.0 / 2.0), 0.0)
    f = forecast(1, float(spend.mean()), tuple(np.quantile(spend, [0.1, 0.5, 0.9])))
    for distance in (200.0, 400.0, 700.0, 1000.0):  # from about p50 up: the reachable range
        simulated = float((spend >= distance).mean())
        modelled = upgrade_probability(state([distance]), f, 365)[0]
        assert modelled == pytest.approx(simulated, abs=0.02), f"distance {distance}"
