"""The `btyd` family: inputs derived from rfm features, fitted on one cutoff, nulls for
members without a purchase, and the served outlook of one member."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from features.btyd import ConvergenceError, ParetoNBDModel
from features.families.btyd import (
    FEATURE_NAMES,
    btyd_features,
    btyd_inputs,
    fit_family,
    member_outlook,
    members_p_alive,
)


def rfm_rows(members: int = 400, seed: int = 3) -> pd.DataFrame:
    """rfm columns of `members` synthetic members (a tenth never bought)."""
    rng = np.random.default_rng(seed)
    count = rng.poisson(rng.gamma(0.8, 3.0, members))
    age = rng.uniform(30, 400, members)
    last = np.where(count > 1, rng.uniform(0, 1, members) * age, age)
    first = rng.lognormal(3.5, 0.3, members)
    mean = first * rng.lognormal(0.0, 0.2, members)
    return rfm_frame(count, last, age, mean, first)


def rfm_frame(
    count: np.ndarray, last: np.ndarray, age: np.ndarray, mean: np.ndarray, first: np.ndarray
) -> pd.DataFrame:
    """rfm columns from per-member purchase counts, days since the last and the first
    purchase, mean and first amounts (nulls where the member never bought)."""
    bought = count >= 1
    return pd.DataFrame(
        {
            "member_id": [f"m{i:03d}" for i in range(len(count))],
            "frequency": count,
            "recency_days": np.where(bought, last, np.nan),
            "days_since_first_order": np.where(bought, age, np.nan),
            "avg_order_value": np.where(bought, mean, np.nan),
            "first_order_amount": np.where(bought, first, np.nan),
        }
    )


def test_inputs_follow_the_btyd_conventions() -> None:
    """Given purchases 3 (first 10, mean 20), first 70 days and last 14 days ago, when the
    inputs are derived, then x = 2 repeats, T = 10 weeks, t_x = 8 weeks, repeat mean 25."""
    frame = pd.DataFrame(
        {
            "member_id": ["a", "b"],
            "frequency": [3, 0],
            "recency_days": [14.2, np.nan],
            "days_since_first_order": [69.8, np.nan],
            "avg_order_value": [20.0, np.nan],
            "first_order_amount": [10.0, np.nan],
        }
    )
    summary = btyd_inputs(frame)
    assert list(summary.index) == ["a"], "members without a purchase have no BTYD history"
    row = summary.loc["a"]
    assert (row["frequency"], row["T"], row["recency"]) == (2.0, 10.0, 8.0)
    assert row["monetary"] == pytest.approx(25.0), "repeat mean = (3 × 20 − 10) / 2"


def test_inputs_name_a_missing_column() -> None:
    with pytest.raises(ValueError, match="first_order_amount"):
        btyd_inputs(rfm_rows().drop(columns="first_order_amount"))


def test_family_is_null_without_purchase_and_ordered_by_history() -> None:
    """Given a fit on one cutoff, every buyer gets probabilities in [0, 1] and non-negative
    counts; non-buyers get nulls; a recent frequent buyer outranks an old one-off buyer."""
    rows = rfm_rows()
    out = btyd_features(rows, fit_family(rows))
    assert list(out.columns) == ["member_id", *FEATURE_NAMES]
    bought = rows["frequency"].to_numpy() >= 1
    assert out.loc[~bought, list(FEATURE_NAMES)].isna().all().all()
    values = out.loc[bought]
    assert values[list(FEATURE_NAMES)].notna().all().all()
    assert values["btyd_p_alive"].between(0, 1).all()
    assert values["btyd_p_no_purchase_90d"].between(0, 1).all()
    assert (values["btyd_expected_purchases_90d"] >= 0).all()
    pair = pd.DataFrame(
        {
            "member_id": ["loyal", "lapsed"],
            "frequency": [12, 1],
            "recency_days": [3.0, 300.0],
            "days_since_first_order": [300.0, 300.0],
            "avg_order_value": [30.0, 30.0],
            "first_order_amount": [30.0, 30.0],
        }
    )
    both = btyd_features(pair, fit_family(rows)).set_index("member_id")
    assert (
        both.loc["loyal", "btyd_expected_purchases_90d"]
        > both.loc["lapsed", "btyd_expected_purchases_90d"]
    ), "a frequent recent buyer is expected to buy more than a one-off buyer of long ago"
    assert both.loc["loyal", "btyd_p_alive"] > both.loc["lapsed", "btyd_p_alive"]


def test_no_repeat_purchase_gives_no_model_and_null_features() -> None:
    rows = rfm_rows().assign(frequency=lambda f: f["frequency"].clip(upper=1))
    assert fit_family(rows) is None
    assert btyd_features(rows, None)[list(FEATURE_NAMES)].isna().all().all()


def test_member_outlook_matches_the_family_of_the_same_cutoff() -> None:
    """The served outlook of one member equals the snapshot family computed with the same fit:
    one feature logic for the snapshot and the API."""
    rows = rfm_rows()
    outlook = fit_family(rows)
    family = btyd_features(rows, outlook).set_index("member_id")
    buyer = rows.loc[rows["frequency"] >= 2].iloc[0]
    as_of = datetime(2024, 3, 1, tzinfo=UTC)
    p_alive, next_date = member_outlook(outlook, buyer.to_dict(), as_of)
    assert p_alive == pytest.approx(family.loc[buyer["member_id"], "btyd_p_alive"])
    days = family.loc[buyer["member_id"], "btyd_days_to_next_order"]
    assert next_date == (pd.Timestamp(as_of) + pd.Timedelta(days=days)).date()
    assert isinstance(next_date, date) and next_date >= as_of.date()
    never = {"member_id": "x", "frequency": 0}
    assert member_outlook(outlook, never, as_of) == (None, None)


def one_dropout_rate_rows(members: int = 200, seed: int = 1) -> pd.DataFrame:
    """rfm columns of members whose purchase rates vary but who all share one dropout rate,
    observed 280 days: Pareto/NBD's maximum likelihood then lies at s, β → ∞."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(2.0, 1 / 70.0, members)  # purchases per day
    end = np.minimum(rng.exponential(350.0, members), 280.0)  # one dropout rate for all
    days = np.cumsum(rng.exponential(1 / rate[:, None], (members, 60)), axis=1)
    bought = np.where(days < end[:, None], days, np.nan)
    count = np.sum(~np.isnan(bought), axis=1)
    last = 280.0 - np.nanmax(bought, axis=1, initial=0)
    amount = np.full(members, 30.0)
    return rfm_frame(count, last, 280.0 - days[:, 0], amount, amount)


def test_pareto_nbd_at_the_edge_of_its_parameters_falls_back_to_bgnbd() -> None:
    """Given one dropout rate shared by all members, Pareto/NBD's fit runs off to infinite
    s and β where its likelihood is not finite: the family says so by using BG/NBD, and every
    buyer gets finite values."""
    rows = one_dropout_rate_rows()
    with pytest.raises(ConvergenceError, match="edge of the parameter space"):
        ParetoNBDModel().fit(btyd_inputs(rows))
    outlook = fit_family(rows)
    assert outlook is not None and outlook.kind == "bgnbd"
    values = btyd_features(rows, outlook).loc[rows["frequency"].to_numpy() >= 1]
    assert np.isfinite(values[list(FEATURE_NAMES)].to_numpy(dtype=float)).all()


def test_members_p_alive_is_member_outlook_for_many_members() -> None:
    """P(alive) of many members at once equals the one-member outlook of each, in row order;
    NaN for members without a purchase and for everyone without a model."""
    outlook = fit_family(rfm_rows())
    rows = rfm_rows().iloc[:60]
    as_of = datetime(2024, 3, 1, tzinfo=UTC)

    many = members_p_alive(outlook, rows.iloc[::-1])

    one = [
        member_outlook(outlook, row.to_dict(), as_of)[0] for _, row in rows.iloc[::-1].iterrows()
    ]
    want = np.array([np.nan if p is None else p for p in one])
    np.testing.assert_allclose(many, want, equal_nan=True)
    assert np.isnan(many).any() and not np.isnan(many).all(), "buyers and never-buyers"
    assert np.isnan(members_p_alive(None, rows)).all()
    assert np.isnan(members_p_alive(outlook, rows[["member_id", "frequency"]])).all(), (
        "absent rfm columns are missing values"
    )
