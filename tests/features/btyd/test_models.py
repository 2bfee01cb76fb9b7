"""BTYD models: RFM conventions, published CDNOW parameters, hand-checked likelihoods,
behaviour (direction) and agreement with simulation from the model itself."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from sklearn.exceptions import NotFittedError

from features.btyd import (
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    holdout_summary,
    rfm_summary,
)
from features.btyd.base import Histories

CDNOW_DIR = Path(os.environ.get("MEMBERSCORE_CDNOW_DIR", "/work/shared/data/cdnow"))
SAMPLE = CDNOW_DIR / "CDNOW_sample.txt"
BG_PAPER = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO_PAPER = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
GG_PAPER = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.fixture(scope="module")
def cdnow_sample() -> pd.DataFrame:
    """Calibration summary (weeks, as of 1997-09-30) of the 2,357-customer CDNOW sample."""
    if not SAMPLE.exists():
        pytest.skip(f"CDNOW sample not found at {SAMPLE}; set MEMBERSCORE_CDNOW_DIR")
    raw = pd.read_csv(
        SAMPLE,
        sep=r"\s+",
        header=None,
        names=["id", "sid", "date", "cds", "dollars"],
        dtype={"date": str},
    )
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return rfm_summary(
        raw,
        customer_col="id",
        time_col="date",
        value_col="dollars",
        observation_end="1997-09-30",
    )


def _tiny_transactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member": ["a", "a", "a", "a", "b", "c", "c"],
            "ts": pd.to_datetime(
                [
                    "1997-01-01 09:00",
                    "1997-01-01 17:00",
                    "1997-01-15 00:00",
                    "1997-01-29 00:00",
                    "1997-01-08 00:00",
                    "1997-01-22 00:00",
                    "1997-03-01 00:00",
                ]
            ),
            "amount": [10.0, 5.0, 20.0, 40.0, 7.0, 3.0, 99.0],
        }
    )


def _summary(x: list[float], t_x: list[float], age: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": age})


# --- RFM summary ---------------------------------------------------------------------------


def test_rfm_summary_merges_same_day_and_excludes_first_purchase_from_monetary() -> None:
    # Given purchases of "a" twice on day 0, then weeks 2 and 4; "c" buys after the cutoff
    tx = _tiny_transactions()
    # When summarised as of 1997-02-12 (6 weeks after 1997-01-01)
    s = rfm_summary(
        tx,
        customer_col="member",
        time_col="ts",
        value_col="amount",
        observation_end="1997-02-12",
    )
    # Then the same-day purchases count once and monetary is the mean of the repeat days
    assert s.loc["a"].tolist() == [2.0, 4.0, 6.0, 30.0], "a: 2 repeats, last at w4, T=6, $30"
    assert s.loc["b"].tolist() == [0.0, 0.0, 5.0, 0.0], "b: no repeat, monetary 0"
    assert s.loc["c"].tolist() == [0.0, 0.0, 3.0, 0.0], "c: purchase after the cutoff ignored"


def test_rfm_summary_names_the_missing_column() -> None:
    tx = _tiny_transactions().drop(columns="amount")
    with pytest.raises(ValueError, match="'amount'"):
        rfm_summary(
            tx,
            customer_col="member",
            time_col="ts",
            value_col="amount",
            observation_end="1997-02-12",
        )


def test_holdout_summary_counts_purchase_days_in_inclusive_window() -> None:
    tx = _tiny_transactions()
    out = holdout_summary(
        tx,
        customer_col="member",
        time_col="ts",
        value_col="amount",
        start="1997-01-01",
        end="1997-01-15",
        customers=pd.Index(["a", "b", "z"]),
    )
    assert out["holdout_count"].tolist() == [2.0, 1.0, 0.0], "same day merged, both ends in"
    assert out["holdout_value"].tolist() == [35.0, 7.0, 0.0]


# --- Published CDNOW parameters (Fader, Hardie & Lee 2005; Fader & Hardie notes) ---------


def test_bgnbd_identical_to_hardie_paper(cdnow_sample: pd.DataFrame) -> None:
    model = BetaGeoModel().fit(cdnow_sample)
    fitted = {k: round(v, 3) for k, v in model.params_.items()}
    assert fitted == BG_PAPER, f"BG/NBD MLE {model.params_} differs from the paper"
    assert round(model.log_likelihood_, 1) == -9582.4
    assert round(model.log_likelihood(cdnow_sample, BG_PAPER), 1) == -9582.4


def test_paretonbd_identical_to_hardie_paper(cdnow_sample: pd.DataFrame) -> None:
    model = ParetoNBDModel().fit(cdnow_sample)
    fitted = {k: round(v, 3) for k, v in model.params_.items()}
    assert fitted == PARETO_PAPER, f"Pareto/NBD MLE {model.params_} differs from the paper"
    assert round(model.log_likelihood_, 1) == -9595.0
    assert round(model.log_likelihood(cdnow_sample, PARETO_PAPER), 1) == -9595.0


def test_gammagamma_identical_to_hardie_paper(cdnow_sample: pd.DataFrame) -> None:
    model = GammaGammaModel().fit(cdnow_sample)
    fitted = {k: round(v, 2) for k, v in model.params_.items()}
    assert fitted == GG_PAPER, f"Gamma-Gamma MLE {model.params_} differs from the paper"
    assert model.n_customers_ == 946, "fitted on the 946 repeat customers only"
    assert round(model.log_likelihood_, 1) == -4055.9
    assert round(model.log_likelihood(cdnow_sample, GG_PAPER), 1) == -4055.9


# --- Likelihoods checked by hand / by direct integration ----------------------------------


def test_bgnbd_likelihood_matches_hand_computation() -> None:
    r, alpha, a, b = 0.25, 4.0, 0.8, 2.5
    model = BetaGeoModel()
    got = np.exp(
        model._loglik_rows(
            np.array([r, alpha, a, b]),
            Histories.from_arrays(
                np.array([0.0, 2.0]), np.array([0.0, 10.0]), np.array([30.0, 30.0])
            ),
        )
    )
    zero = (alpha / (alpha + 30.0)) ** r
    beta_ratio = math.exp(
        math.lgamma(a + b) + math.lgamma(b + 2) - math.lgamma(b) - math.lgamma(a + b + 2)
    )
    two = (
        math.gamma(r + 2)
        * alpha**r
        / math.gamma(r)
        * beta_ratio
        * ((alpha + 30) ** -(r + 2) + a / (b + 1) * (alpha + 10) ** -(r + 2))
    )
    np.testing.assert_allclose(got, [zero, two], rtol=1e-12)


@pytest.mark.parametrize("alpha, beta", [(3.0, 6.0), (8.0, 2.0)], ids=["beta>alpha", "alpha>beta"])
def test_paretonbd_likelihood_matches_direct_integration(alpha: float, beta: float) -> None:
    # Given λ ~ Gamma(r, α), μ ~ Gamma(s, β): integrate the individual-level likelihood
    r, s, x, t_x, age = 1.4, 1.2, 3.0, 12.0, 30.0

    log_norm = r * math.log(alpha) + s * math.log(beta) - math.lgamma(r) - math.lgamma(s)

    def integrand(mu: float, lam: float) -> float:
        rate = lam + mu
        indiv = lam**x * (
            math.exp(-rate * age) + mu / rate * (math.exp(-rate * t_x) - math.exp(-rate * age))
        )
        log_prior = log_norm + (r - 1) * math.log(lam) + (s - 1) * math.log(mu)
        return indiv * math.exp(log_prior - alpha * lam - beta * mu)

    expected, _ = integrate.dblquad(integrand, 0, 10, 0, 10, epsabs=1e-14, epsrel=1e-9)
    got = ParetoNBDModel()._loglik_rows(
        np.array([r, alpha, s, beta]),
        Histories.from_arrays(np.array([x]), np.array([t_x]), np.array([age])),
    )
    np.testing.assert_allclose(np.exp(got), [expected], rtol=1e-6)


def test_gammagamma_likelihood_matches_direct_integration() -> None:
    p, q, v, x, m = 6.0, 3.5, 15.0, 3.0, 22.0
    # mean of x Gamma(p, ν) values is Gamma(p x, ν x); ν ~ Gamma(q, v)
    expected, _ = integrate.quad(
        lambda nu: (
            stats.gamma.pdf(m, p * x, scale=1 / (nu * x)) * stats.gamma.pdf(nu, q, scale=1 / v)
        ),
        0,
        np.inf,
    )
    got = GammaGammaModel().log_likelihood(
        pd.DataFrame({"frequency": [x], "monetary": [m]}), {"p": p, "q": q, "v": v}
    )
    assert math.exp(got) == pytest.approx(expected, rel=1e-8)


# --- Behaviour ------------------------------------------------------------------------------


def _fixed(model_cls: type, params: dict[str, float]) -> BetaGeoModel | ParetoNBDModel:
    model = model_cls()
    model.params_ = params
    return model


def test_bgnbd_zero_repeat_customers_are_alive() -> None:
    model = _fixed(BetaGeoModel, BG_PAPER)
    p_alive = model.conditional_probability_alive(_summary([0, 0, 3], [0, 0, 5], [1, 38, 38]))
    np.testing.assert_array_equal(p_alive[:2], [1.0, 1.0])
    assert p_alive[2] < 1.0, "a repeat buyer silent for 33 weeks may have dropped out"


@pytest.mark.parametrize(
    "model_cls, params", [(BetaGeoModel, BG_PAPER), (ParetoNBDModel, PARETO_PAPER)]
)
def test_expected_purchases_rise_with_frequency_and_fall_with_silence(
    model_cls: type, params: dict[str, float]
) -> None:
    model = _fixed(model_cls, params)
    by_freq = model.conditional_expected_purchases(_summary([1, 3, 6], [30, 30, 30], [38] * 3), 39)
    by_recency = model.conditional_expected_purchases(
        _summary([3, 3, 3], [35, 20, 5], [38] * 3), 39
    )
    assert np.all(np.diff(by_freq) > 0), f"more purchases, more expected: {by_freq}"
    assert np.all(np.diff(by_recency) < 0), f"longer silence, fewer expected: {by_recency}"


def test_median_wait_is_where_no_purchase_probability_halves() -> None:
    model = _fixed(BetaGeoModel, BG_PAPER)
    summary = _summary([0, 0], [0, 0], [5, 30])
    medians = model.median_weeks_to_next_purchase(summary)
    for i, w in enumerate(medians):
        row = summary.iloc[[i]]
        assert model.probability_no_purchase(row, float(w))[0] == pytest.approx(0.5, abs=1e-12)


def test_clv_without_discount_is_expected_spend_over_horizon() -> None:
    bg = _fixed(BetaGeoModel, BG_PAPER)
    gg = GammaGammaModel()
    gg.params_ = GG_PAPER
    summary = _summary([0, 2], [0, 20], [30, 30]).assign(monetary=[0.0, 30.0])
    clv = gg.customer_lifetime_value(bg, summary, months=6, monthly_discount_rate=0.0)
    horizon = 6 * 365.25 / 12 / 7
    expected = gg.predict_frame(summary, horizon, transaction_model=bg)["expected_spend"]
    np.testing.assert_allclose(clv, expected.to_numpy(), rtol=1e-10)
    discounted = gg.customer_lifetime_value(bg, summary, months=6, monthly_discount_rate=0.05)
    assert np.all(discounted < clv), "discounting lowers the value"


def test_unfitted_model_says_so() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        BetaGeoModel().conditional_probability_alive(_summary([0], [0], [3]))


def test_model_input_names_the_missing_column() -> None:
    with pytest.raises(ValueError, match="'recency'"):
        BetaGeoModel().fit(pd.DataFrame({"frequency": [1.0], "T": [3.0]}))


# --- Agreement with simulation from the model ----------------------------------------------


def _simulate_bgnbd(
    params: dict[str, float], age: np.ndarray, horizon: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """Histories to T and the no-purchase indicator over (T, T + horizon] under BG/NBD."""
    lam = rng.gamma(params["r"], 1 / params["alpha"], age.size)
    p = rng.beta(params["a"], params["b"], age.size)
    lifetime_purchases = rng.geometric(p)  # repeat purchases up to and including the dropout
    count = rng.poisson(lam * age)  # purchases in [0, T] had the customer never dropped out
    alive = count < lifetime_purchases
    x = np.minimum(count, lifetime_purchases)
    # the x-th of `count` uniform arrival times on [0, T] is T · Beta(x, count − x + 1)
    t_x = np.where(x > 0, age * rng.beta(np.maximum(x, 1), count - x + 1), 0.0)
    # alive at T: dropout comes only after a purchase, so the next arrival is a purchase
    no_purchase = ~alive | (rng.exponential(1 / lam) > horizon)
    return _summary(x, t_x, age), no_purchase


def _simulate_paretonbd(
    params: dict[str, float], age: np.ndarray, horizon: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """Histories to T and the no-purchase indicator over (T, T + horizon] under Pareto/NBD."""
    lam = rng.gamma(params["r"], 1 / params["alpha"], age.size)
    mu = rng.gamma(params["s"], 1 / params["beta"], age.size)
    death = rng.exponential(1 / mu)
    active = np.minimum(death, age)
    x = rng.poisson(lam * active)
    t_x = np.where(x > 0, active * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    alive = death > age
    next_purchase = rng.exponential(1 / lam)
    no_purchase = ~alive | (next_purchase > np.minimum(death - age, horizon))
    return _summary(x, t_x, age), no_purchase


@pytest.mark.parametrize(
    "model_cls, params, simulate",
    [
        (BetaGeoModel, BG_PAPER, _simulate_bgnbd),
        (ParetoNBDModel, PARETO_PAPER, _simulate_paretonbd),
    ],
    ids=["bgnbd", "paretonbd"],
)
def test_no_purchase_probability_agrees_with_simulation(
    model_cls: type, params: dict[str, float], simulate: object
) -> None:
    # Given 300k customers simulated from the published parameters, observed for 1..39 weeks
    rng = np.random.default_rng(20051)
    age = rng.uniform(1.0, 39.0, 300_000)
    summary, no_purchase = simulate(params, age, 39.0, rng)  # type: ignore[operator]
    # When the model scores each simulated history
    predicted = _fixed(model_cls, params).probability_no_purchase(summary, 39.0)
    # Then its mean matches the simulated rate, zero-repeat customers included
    zero = summary["frequency"].to_numpy() == 0
    for name, mask in [("zero-repeat", zero), ("repeat", ~zero)]:
        model_rate, sim_rate = predicted[mask].mean(), no_purchase[mask].mean()
        assert model_rate == pytest.approx(sim_rate, abs=0.004), (
            f"{name}: model {model_rate:.4f} vs simulated {sim_rate:.4f}"
        )
