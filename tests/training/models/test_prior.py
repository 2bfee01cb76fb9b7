"""The BTYD prior: forecasts and offsets of rfm rows, the naive baseline, the saved document."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from features.btyd.outlook import outlook_frame, outlook_from_params
from features.families.btyd import INPUT_COLUMNS, btyd_inputs
from training.models.prior import (
    EPS,
    FALLBACK,
    OFFSETS,
    BtydPrior,
    from_document,
    naive_forecast,
    offsets_of,
)

# Published CDNOW fits (Fader, Hardie & Lee 2005; Fader & Hardie's Gamma-Gamma note): a fixed,
# realistic outlook, so these tests fit nothing.
PARETO = {"tx_r": 0.553, "tx_alpha": 10.578, "tx_s": 0.606, "tx_beta": 11.669}
GAMMA_GAMMA = {"gg_p": 6.25, "gg_q": 3.74, "gg_v": 15.44}
DAYS = 91.0


@pytest.fixture
def prior() -> BtydPrior:
    """A Pareto/NBD + Gamma-Gamma prior over 13 weeks."""
    return BtydPrior(outlook_from_params("paretonbd", PARETO | GAMMA_GAMMA), DAYS)


def rfm_rows() -> pd.DataFrame:
    """Six members' rfm columns: four buyers (one a one-off buyer) and two without a purchase
    (frequency 0, and frequency missing), on a non-default index."""
    nan = np.nan
    return pd.DataFrame(
        {
            "member_id": ["a", "b", "c", "d", "e", "f"],
            "frequency": [5.0, 0.0, 1.0, 12.0, nan, 2.0],
            "recency_days": [3.0, nan, 40.0, 1.0, nan, 200.0],
            "days_since_first_order": [150.0, nan, 40.0, 300.0, nan, 260.0],
            "avg_order_value": [30.0, nan, 25.0, 18.0, nan, 60.0],
            "first_order_amount": [20.0, nan, 25.0, 15.0, nan, 80.0],
            "region": ["north", "south", "east", "north", "south", "east"],
        },
        index=[17, 3, 99, 5, 42, 8],
    )


BUYERS = [0, 2, 3, 5]  # positions of the members with a purchase
NON_BUYERS = [1, 4]


def test_offsets_are_logit_and_log_of_the_btyd_outlook_for_buyers(prior: BtydPrior) -> None:
    """Given rfm rows, when the offsets are computed, then for every buyer they equal
    logit P(no purchase), log E[purchases] and log E[spend] of `outlook_frame` over the
    prior's window, on the positions of the rows."""
    rows = rfm_rows()
    summary = btyd_inputs(rows)  # indexed by member_id
    expected = outlook_frame(prior.outlook, summary, DAYS / 7.0)

    got = prior.offsets(rows)

    assert list(got.columns) == list(OFFSETS)
    assert list(got.index) == list(range(len(rows))), "offsets are on row positions"
    buyers = got.iloc[BUYERS]
    ids = rows["member_id"].iloc[BUYERS]
    np.testing.assert_allclose(
        buyers["no_purchase_logit"], logit(expected.loc[ids, "p_no_purchase"]), rtol=1e-12
    )
    np.testing.assert_allclose(
        buyers["orders_log"], np.log(expected.loc[ids, "expected_purchases"]), rtol=1e-12
    )
    np.testing.assert_allclose(
        buyers["spend_log"], np.log(expected.loc[ids, "expected_spend"]), rtol=1e-12
    )


def test_members_without_a_purchase_get_the_fallback_offsets(prior: BtydPrior) -> None:
    """Given members with frequency 0 or missing, their forecast is `FALLBACK` and their
    offsets logit(0.99), log(EPS), log(EPS) — whatever their neighbours are."""
    rows = rfm_rows()

    forecast = prior.forecast(rows)
    got = prior.offsets(rows)

    for column, value in FALLBACK.items():
        assert (forecast[column].iloc[NON_BUYERS] == value).all(), f"{column} is not FALLBACK"
    fallback = [logit(FALLBACK["p_no_purchase"]), np.log(EPS), np.log(EPS)]
    np.testing.assert_allclose(got.iloc[NON_BUYERS].to_numpy(), [fallback, fallback])
    assert (got.iloc[BUYERS]["orders_log"] > np.log(EPS) + 1).all(), "buyers differ from it"


def test_buyers_with_missing_rfm_values_get_finite_offsets(prior: BtydPrior) -> None:
    """Given buyers whose purchase timing is unknown (days since the last or first order
    missing) or whose order values are unknown (mean or first amount missing), when the offsets
    are computed, then every offset is finite: unknown timing gets the `FALLBACK` outlook,
    unknown value the forecast purchases at the population's (Gamma-Gamma) order value."""
    nan = np.nan
    rows = pd.DataFrame(
        {
            "frequency": [3.0, 3.0, 3.0, 3.0, 3.0],
            "recency_days": [nan, 10.0, 10.0, 10.0, 10.0],
            "days_since_first_order": [100.0, nan, 100.0, 100.0, 100.0],
            "avg_order_value": [30.0, 30.0, nan, 30.0, 30.0],
            "first_order_amount": [20.0, 20.0, 20.0, nan, 20.0],
        }
    )
    known = prior.forecast(rows.iloc[[4]]).iloc[0]
    population_value = GAMMA_GAMMA["gg_p"] * GAMMA_GAMMA["gg_v"] / (GAMMA_GAMMA["gg_q"] - 1)

    forecast = prior.forecast(rows)
    got = prior.offsets(rows)

    assert np.isfinite(got.to_numpy()).all(), f"NaN offsets:\n{got}"
    for column, value in FALLBACK.items():
        assert (forecast[column].iloc[:2] == value).all(), f"unknown timing: {column} not FALLBACK"
    for position in (2, 3):
        row = forecast.iloc[position]
        assert row["expected_purchases"] == pytest.approx(known["expected_purchases"])
        assert row["expected_spend"] == pytest.approx(
            known["expected_purchases"] * population_value
        ), "unknown order values are priced at the population mean"


def test_a_frame_without_any_buyer_is_all_fallback(prior: BtydPrior) -> None:
    rows = rfm_rows().iloc[NON_BUYERS]
    forecast = prior.forecast(rows)
    assert forecast.to_dict("list") == {k: [v, v] for k, v in FALLBACK.items()}


def test_offsets_matrix_equals_offsets_of_the_same_rows(prior: BtydPrior) -> None:
    """Given the rows encoded as a float matrix in another column order (the serving path),
    the offsets equal those of the frame."""
    rows = rfm_rows()
    names = ["region_code", *reversed(INPUT_COLUMNS)]
    matrix = np.column_stack(
        [np.arange(len(rows), dtype=float), *(rows[c].to_numpy(float) for c in names[1:])]
    )

    got = prior.offsets_matrix(matrix, names)

    pd.testing.assert_frame_equal(got, prior.offsets(rows), check_exact=False, rtol=1e-12)


def test_offsets_matrix_names_the_missing_rfm_column(prior: BtydPrior) -> None:
    names = [c for c in INPUT_COLUMNS if c != "first_order_amount"]
    with pytest.raises(ValueError, match="first_order_amount"):
        prior.offsets_matrix(np.ones((2, len(names))), names)


def test_a_longer_window_forecasts_more_and_lowers_p_no_purchase(prior: BtydPrior) -> None:
    """Direction: doubling the window raises expected purchases and spend and lowers
    P(no purchase) for every buyer."""
    rows = rfm_rows()
    longer = BtydPrior(prior.outlook, 2 * DAYS).offsets(rows).iloc[BUYERS]
    shorter = prior.offsets(rows).iloc[BUYERS]
    assert (longer["orders_log"] > shorter["orders_log"]).all()
    assert (longer["spend_log"] > shorter["spend_log"]).all()
    assert (longer["no_purchase_logit"] < shorter["no_purchase_logit"]).all()


def test_offsets_of_clips_certainties_instead_of_returning_infinities() -> None:
    """P(no purchase) of 0 or 1 and zero expectations give finite offsets (EPS clipping)."""
    forecast = pd.DataFrame(
        {
            "p_no_purchase": [0.0, 1.0, 0.5],
            "expected_purchases": [0.0, 2.0, 1.0],
            "expected_spend": [0.0, 50.0, np.e],
        },
        index=[7, 8, 9],
    )
    got = offsets_of(forecast)
    assert np.isfinite(got.to_numpy()).all()
    assert list(got.index) == [7, 8, 9], "offsets_of keeps the forecast's index"
    assert got.loc[9].tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert got.loc[7, "no_purchase_logit"] == pytest.approx(logit(EPS))
    assert got.loc[8, "no_purchase_logit"] == pytest.approx(logit(1 - EPS))


def test_document_round_trips_through_json(prior: BtydPrior) -> None:
    """Given a prior saved as JSON (model.json), when rebuilt, then kind, window, parameters
    and offsets are the same."""
    document = json.loads(json.dumps(prior.document()))

    rebuilt = from_document(document)

    assert rebuilt.outlook.kind == "paretonbd"
    assert rebuilt.horizon_days == DAYS
    assert rebuilt.outlook.params() == prior.outlook.params()
    pd.testing.assert_frame_equal(rebuilt.offsets(rfm_rows()), prior.offsets(rfm_rows()))


def test_document_round_trips_a_prior_without_gamma_gamma() -> None:
    """A BG/NBD prior without a spend model keeps its own-value fallback after the trip."""
    bare = BtydPrior(
        outlook_from_params(
            "bgnbd", {"tx_r": 0.243, "tx_alpha": 4.414, "tx_a": 0.793, "tx_b": 2.426}
        ),
        30.0,
    )
    rebuilt = from_document(json.loads(json.dumps(bare.document())))
    assert rebuilt.outlook.spend is None
    assert rebuilt.outlook.kind == "bgnbd"
    pd.testing.assert_frame_equal(rebuilt.forecast(rfm_rows()), bare.forecast(rfm_rows()))


def test_naive_forecast_is_a_poisson_process_at_the_members_own_rate() -> None:
    """Given 5 orders over 100 days at 20 each, the rate is 4 repeats / 100 days: over 50 days
    2 purchases, P(none) = e^-2, spend 40. A one-off buyer and a non-buyer have rate 0; a
    member of less than a week counts a week of tenure."""
    features = pd.DataFrame(
        {
            "frequency": [5, 1, np.nan, 3],
            "days_since_first_order": [100.0, 30.0, np.nan, 2.0],
            "avg_order_value": [20.0, 45.0, np.nan, 10.0],
        },
        index=["x", "y", "z", "w"],
    )

    got = naive_forecast(features, 50.0)

    assert list(got.index) == [0, 1, 2, 3], "on the positions of the rows"
    assert got.loc[0].tolist() == pytest.approx([np.exp(-2.0), 2.0, 40.0])
    assert got.loc[1].tolist() == [1.0, 0.0, 0.0], "one purchase: no repeat rate"
    assert got.loc[2].tolist() == [1.0, 0.0, 0.0], "never bought"
    assert got.loc[3, "expected_purchases"] == pytest.approx(2 / 7 * 50), "tenure floor 7 d"
