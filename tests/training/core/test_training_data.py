"""TrainingData: feature rows per cutoff, labels at any horizon, BTYD priors fitted per cutoff
for the buyer tasks, their forecasts and offsets; clv labels carry order counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from training.core import dataset, labels
from training.core.labels import UnlabelableCutoff, as_cutoff, observed_until
from training.core.metrics import count_report
from training.core.tasks import TASKS
from training.models.prior import naive_forecast, offsets_of

DAY = pd.Timedelta(days=1)
EARLY = as_cutoff("2023-06-01")  # five months into the programme: season unknown
LATE = as_cutoff("2024-01-15")  # a year after the first order: season known
CUTOFFS = (EARLY, LATE)
H = 30  # days; LATE + 30 d is inside the data (it ends 2024-02-25)


def btyd_rfm(
    members: pd.DataFrame, orders: pd.DataFrame, cutoffs: Sequence[pd.Timestamp]
) -> pd.DataFrame:
    """Test-only rfm columns the BTYD prior reads (frequency, recency_days,
    days_since_first_order, avg_order_value, first_order_amount, in days and currency) and
    tenure, keyed by (member_id, event_timestamp), from purchases strictly before each cutoff."""
    parts = []
    for cutoff in cutoffs:
        past = orders.loc[(orders["ordered_at"] < cutoff) & ~orders["is_return"]]
        agg = (
            past.sort_values("ordered_at")
            .groupby("member_id")
            .agg(
                first=("ordered_at", "min"),
                last=("ordered_at", "max"),
                frequency=("amount", "size"),
                avg_order_value=("amount", "mean"),
                first_order_amount=("amount", "first"),
            )
        )
        frame = members.loc[members["registered_at"] < cutoff].set_index("member_id").join(agg)
        parts.append(
            pd.DataFrame(
                {
                    "member_id": frame.index,
                    "event_timestamp": cutoff,
                    "frequency": frame["frequency"].fillna(0).to_numpy(),
                    "recency_days": ((cutoff - frame["last"]) / DAY).to_numpy(),
                    "days_since_first_order": ((cutoff - frame["first"]) / DAY).to_numpy(),
                    "avg_order_value": frame["avg_order_value"].to_numpy(),
                    "first_order_amount": frame["first_order_amount"].to_numpy(),
                    "tenure_days": ((cutoff - frame["registered_at"]) / DAY).to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def build(task: str, members, orders, cutoffs=CUTOFFS, horizon: int = H) -> dataset.TrainingData:
    """TrainingData of `task` the way the training job builds it: labelled entity rows joined
    with point-in-time features."""
    entities = dataset.entity_frame(
        TASKS[task], members, orders, cutoffs, horizon, observed_until(orders), 0.01
    )
    frame = dataset.join_features(entities, btyd_rfm(members, orders, cutoffs))
    return dataset.training_data(TASKS[task], members, orders, frame, 0.01)


@pytest.fixture(scope="module")
def churn(programme) -> dataset.TrainingData:
    return build("churn", *programme)


@pytest.fixture(scope="module")
def clv(programme) -> dataset.TrainingData:
    return build("clv", *programme, cutoffs=(LATE,))


def test_features_keep_keys_and_features_and_drop_the_labels(churn) -> None:
    """The label the rows were built with is not a feature (labels come per horizon)."""
    assert "churned" not in churn.features.columns
    assert churn.feature_names == [
        "frequency",
        "recency_days",
        "days_since_first_order",
        "avg_order_value",
        "first_order_amount",
        "tenure_days",
    ]
    assert churn.cutoffs == list(CUTOFFS)


def test_rows_carry_the_labels_of_any_horizon(churn, programme) -> None:
    """Given rows at a cutoff, when asked over 30 and 90 days, then the members are the same
    (the population does not depend on the horizon) and the labels are those of
    `churn_labels` over each horizon."""
    _, orders = programme
    end = observed_until(orders)

    short = churn.rows([EARLY], 30)
    long = churn.rows([EARLY], 90)

    assert short["member_id"].tolist() == long["member_id"].tolist()
    for rows, days in ((short, 30), (long, 90)):
        expected = labels.churn_labels(orders, EARLY, days, end).set_index("member_id")
        got = rows.set_index("member_id")["churned"]
        assert got.equals(expected.loc[got.index, "churned"]), f"labels over {days} d differ"
    assert (long["churned"] <= short["churned"]).all(), "no purchase in 90 d ⇒ none in 30 d"
    assert (long["churned"] < short["churned"]).any(), "the horizon changes some labels"


def test_rows_come_in_cutoff_order_and_past_the_data_are_unlabelable(churn) -> None:
    rows = churn.rows([LATE, EARLY], H)
    assert rows["cutoff"].is_monotonic_increasing
    assert set(rows["cutoff"]) == set(CUTOFFS)
    with pytest.raises(UnlabelableCutoff, match="2024-01-15 with a 90-day horizon"):
        churn.rows([LATE], 90)


def test_a_prior_is_fitted_per_cutoff_on_that_cutoffs_rows(
    churn, programme, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given rows of two cutoffs, `fit_family` is called once per cutoff with exactly that
    cutoff's rows (its features use data before it), for churn and clv; never for
    activation, whose members never bought."""
    frame = churn.features
    seen: list[pd.DataFrame] = []

    def fake_fit(rows: pd.DataFrame) -> int:
        seen.append(rows)
        return len(seen)  # stands for the outlook of the n-th fit

    monkeypatch.setattr(dataset, "fit_family", fake_fit)
    members, orders = programme
    for task in ("churn", "clv"):
        seen.clear()
        data = dataset.training_data(TASKS[task], members, orders, frame, 0.01)
        assert data.priors == {EARLY: 1, LATE: 2}, f"{task}: one prior per cutoff, in order"
        for cutoff, rows in zip(CUTOFFS, seen, strict=True):
            expected = frame.loc[frame["cutoff"] == cutoff]
            pd.testing.assert_frame_equal(rows, expected, obj=f"{task} rows at {cutoff:%F}")
    seen.clear()
    activation = dataset.training_data(TASKS["activation"], members, orders, frame, 0.01)
    assert activation.priors == {} and seen == []


def test_the_fitted_priors_are_real_and_differ_between_cutoffs(churn, clv) -> None:
    """The churn and clv populations are the same buyers, so their priors at a cutoff are
    the same fit; an earlier cutoff has another one."""
    assert churn.priors[LATE] is not None and churn.priors[EARLY] is not None
    assert clv.priors[LATE].params() == churn.priors[LATE].params()
    assert churn.priors[EARLY].params() != churn.priors[LATE].params()


def test_activation_has_no_prior_forecasts_or_offsets(programme) -> None:
    activation = build("activation", *programme, cutoffs=(EARLY,))
    assert activation.priors == {}
    assert activation.prior(EARLY, H) is None
    rows = activation.rows([EARLY], H)
    assert activation.forecasts(rows, H) is None
    assert activation.offsets(rows, H) is None


def test_the_prior_window_is_the_season_effective_length(churn) -> None:
    """Before a year of orders the window is its own length; after, the season's."""
    assert not churn.seasons[EARLY].known
    assert churn.prior(EARLY, H).horizon_days == H
    assert churn.seasons[LATE].known
    expected = churn.seasons[LATE].effective_days(LATE, H)
    assert churn.prior(LATE, H).horizon_days == pytest.approx(expected)
    assert expected != pytest.approx(H), (
        "the test needs a season unlike a flat one (here the launch weeks a year earlier)"
    )


def test_forecasts_and_offsets_follow_each_rows_own_cutoff(churn) -> None:
    """Given rows of two cutoffs in shuffled order, when forecast, then each row gets the BTYD
    forecast of its own cutoff's prior and the naive baseline, on the rows' positions, and the
    offsets are `offsets_of` the BTYD forecast."""
    rows = churn.rows(CUTOFFS, H).sample(frac=1.0, random_state=3)

    found = churn.forecasts(rows, H)
    offsets = churn.offsets(rows, H)

    assert found is not None and offsets is not None
    for cutoff in CUTOFFS:
        at = (rows["cutoff"] == cutoff).to_numpy()
        prior = churn.prior(cutoff, H)
        expected = prior.forecast(rows.loc[at])
        got = found["btyd"].loc[at].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
        naive = found["baseline"].loc[at].reset_index(drop=True)
        pd.testing.assert_frame_equal(naive, naive_forecast(rows.loc[at], H))
    assert list(found["btyd"].index) == list(range(len(rows)))
    pd.testing.assert_frame_equal(offsets, offsets_of(found["btyd"]))


def test_forecasts_are_on_the_positions_of_rows_with_a_repeated_index(churn) -> None:
    """Given rows of two cutoffs concatenated without a new index (labels 0.. twice), the
    forecasts still have one row per row, as the docstring promises."""
    rows = pd.concat([churn.rows([EARLY], H), churn.rows([LATE], H)])

    found = churn.forecasts(rows, H)

    assert len(found["btyd"]) == len(rows), f"{len(found['btyd'])} forecasts, {len(rows)} rows"


def test_btyd_forecast_ranks_buyers_in_the_window(clv) -> None:
    """Behaviour: members the BTYD forecast expects to buy more do buy more (rank correlation
    of expected and actual orders above 0.3)."""
    rows = clv.rows([LATE], H)
    expected = clv.forecasts(rows, H)["btyd"]["expected_purchases"]
    rho = pd.Series(expected.to_numpy()).corr(rows["orders"].astype(float), method="spearman")
    assert rho > 0.3, f"BTYD ranks future orders poorly: spearman {rho:.2f}"


def test_forecasts_without_a_repeat_purchase_raise_not_enough_history() -> None:
    """Given a cutoff where every buyer bought once, no prior can be fitted, and asking for
    offsets says so."""
    t0 = as_cutoff("2024-01-01")
    members = pd.DataFrame(
        {"member_id": ["a", "b", "c"], "registered_at": [t0] * 3, "region": ["n"] * 3}
    )
    orders = pd.DataFrame(
        {
            "member_id": ["a", "b", "c", "a", "b"],
            "ordered_at": [t0 + DAY, t0 + 2 * DAY, t0 + 3 * DAY, t0 + 40 * DAY, t0 + 50 * DAY],
            "amount": [10.0, 20.0, 30.0, 15.0, 25.0],
            "is_return": False,
        }
    )
    cutoff = t0 + 10 * DAY
    data = build("churn", members, orders, cutoffs=(cutoff,))
    assert data.priors == {cutoff: None}
    with pytest.raises(dataset.NotEnoughHistory, match="no BTYD model could be fitted"):
        data.offsets(data.rows([cutoff], H), H)


def test_clv_labels_count_purchase_orders_in_the_window() -> None:
    """Given purchases and a return in the window, `orders` counts purchase orders only,
    `purchased` = orders > 0, and members outside the population are not labelled."""
    t0 = as_cutoff("2024-03-01")
    orders = pd.DataFrame(
        {
            "member_id": ["a", "a", "a", "a", "b", "b", "c", "d"],
            "ordered_at": [
                t0 - 5 * DAY,
                t0 + DAY,
                t0 + 2 * DAY,
                t0 + 3 * DAY,
                t0 - 9 * DAY,
                t0 + 4 * DAY,
                t0 - DAY,
                t0 + 2 * DAY,
            ],
            "amount": [10.0, 20.0, 30.0, 5.0, 40.0, 40.0, 7.0, 99.0],
            "is_return": [False, False, False, True, False, True, False, False],
        }
    )

    got = labels.clv_labels(orders, t0, 30, t0 + 60 * DAY, 0.0).set_index("member_id")

    assert list(got.index) == ["a", "b", "c"], "d first bought after the cutoff"
    assert got["orders"].tolist() == [2, 0, 0], "the returns of a and b are not orders"
    assert got["purchased"].tolist() == [1, 0, 0]
    assert got["spend"].tolist() == [45.0, -40.0, 0.0]
    assert got["orders"].dtype == np.int64


def test_count_report_measures_purchase_counts() -> None:
    """Given actual orders 0, 1, 2, 3 and predictions 1, 1, 2, 6 (errors 1, 0, 0, 3): MAE 1,
    RMSE √2.5, Pearson 8 / √(5 · 17) and 4 orders too many on 6, by hand."""
    got = count_report(np.array([0, 1, 2, 3]), np.array([1.0, 1.0, 2.0, 6.0]))
    assert got["orders_mae"] == pytest.approx(1.0)
    assert got["orders_rmse"] == pytest.approx(np.sqrt(2.5))
    assert got["orders_pearson"] == pytest.approx(8 / np.sqrt(85))
    assert got["orders_bias_pct"] == pytest.approx(100 * 4 / 6)
    flat = count_report(np.zeros(3), np.array([0.1, 0.2, 0.3]))
    assert np.isnan(flat["orders_pearson"]), "no correlation with a constant"
    assert np.isnan(flat["orders_bias_pct"]), "no bias relative to zero orders"
    with pytest.raises(ValueError, match="one length"):
        count_report(np.zeros(2), np.zeros(3))
