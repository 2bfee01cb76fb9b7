"""The KPI tables on the hand-made programme of `tiny_lake`: every figure against its value
worked out by hand, point in time, and the empty lake."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from memberscore.errors import ContractError
from pipelines.kpis.definitions import months
from pipelines.kpis.inputs import read_inputs
from pipelines.kpis.tables import cohort_kpis, count_columns, monthly_kpis, state_at
from tests.features.lake import connect
from tests.pipelines.kpis.tiny_lake import AS_OF, DEFINITIONS, MEMBERS, ORDERS

NAN = math.nan
# Every count and sum of the all-members rows, by month (worked out in tiny_lake's terms).
COLUMNS = [*count_columns(DEFINITIONS), "purchase_amount", "spend"]
EXPECTED_COUNTS = {
    # members, new, no purchase, active, dormant, churned, activation base/activated 7 d and
    # 30 d, repurchase base/repurchased, churn base/churned, win-back base/won back,
    # upgrades, downgrades, buyers, orders, purchase amount, spend
    "2024-01": [2, 2, 1, 1, 0, 0, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 130.0, 130.0],
    "2024-02": [3, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 200.0, 170.0],
    "2024-03": [4, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 2, 1, 1, 0, 1, 0, 1, 1, 400.0, 400.0],
    "2024-04": [5, 1, 1, 2, 1, 1, 1, 0, 1, 1, 1, 0, 2, 0, 2, 1, 1, 1, 2, 2, 170.0, -80.0],
}
RATES = [
    "activation_rate_7d",
    "activation_rate_30d",
    "repurchase_rate_30d",
    "churn_rate",
    "win_back_rate",
    "average_order_value",
    "orders_per_active_member",
]
EXPECTED_RATES = {
    "2024-01": [0.5, 1.0, NAN, NAN, NAN, 65.0, 2.0],
    "2024-02": [0.0, 0.0, 1.0, 0.0, NAN, 200.0, 1.0],
    "2024-03": [1.0, 0.0, 0.0, 0.5, 0.0, 400.0, 1.0],
    "2024-04": [0.0, 1.0, 0.0, 0.0, 0.5, 85.0, 1.0],
}


@pytest.fixture(scope="module")
def monthly() -> pd.DataFrame:
    """Given the tiny programme, when its KPIs are computed as of 2024-04-15."""
    return monthly_kpis(read_inputs(connect(MEMBERS, ORDERS), AS_OF), DEFINITIONS)


def _row(monthly: pd.DataFrame, month: str, dimension: str, group: str) -> pd.Series:
    rows = monthly[
        (monthly["month"] == month)
        & (monthly["dimension"] == dimension)
        & (monthly["group"] == group)
    ]
    assert len(rows) == 1, f"expected one {dimension}={group} row in {month}, got {len(rows)}"
    return rows.iloc[0]


def _same(actual: object, expected: float) -> bool:
    if math.isnan(expected):
        return bool(pd.isna(actual))
    return actual == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("month", list(EXPECTED_COUNTS))
def test_every_count_of_all_members_matches_the_hand_worked_value(
    monthly: pd.DataFrame, month: str
) -> None:
    row = _row(monthly, month, "all", "all")
    wrong = {
        c: (row[c], e) for c, e in zip(COLUMNS, EXPECTED_COUNTS[month], strict=True) if row[c] != e
    }
    assert not wrong, f"{month}: (got, expected) per column {wrong}"


@pytest.mark.parametrize("month", list(EXPECTED_RATES))
def test_every_rate_of_all_members_matches_the_hand_worked_value(
    monthly: pd.DataFrame, month: str
) -> None:
    row = _row(monthly, month, "all", "all")
    expected = dict(zip(RATES, EXPECTED_RATES[month], strict=True))
    wrong = {c: (row[c], e) for c, e in expected.items() if not _same(row[c], e)}
    assert not wrong, f"{month}: (got, expected) per rate {wrong}"


def test_months_are_calendar_months_and_the_last_ends_at_the_cutoff(
    monthly: pd.DataFrame,
) -> None:
    rows = monthly[monthly["dimension"] == "all"]
    assert list(rows["month"]) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert list(rows["complete"]) == [True, True, True, False], "April is cut at 04-15"
    assert rows["period_end"].iloc[-1] == AS_OF
    assert rows["period_start"].iloc[1] == pd.Timestamp("2024-02-01", tz="UTC")


# (month, dimension, group) → the figures that differ from zero, all others being zero.
GROUP_ROWS = {
    ("2024-03", "tier", "basic"): {
        "members": 2,
        "new_registrations": 1,
        "no_purchase": 1,
        "active": 1,
        "activation_base_7d": 1,
        "activated_7d": 1,
        "activation_base_30d": 1,
        "tier_upgrades": 1,
        "buyers": 1,
        "orders": 1,
        "purchase_amount": 400.0,
        "spend": 400.0,
    },
    ("2024-03", "tier", "silver"): {
        "members": 2,
        "dormant": 1,
        "churned": 1,
        "repurchase_base_30d": 1,
        "churn_base": 2,
        "churned_in_month": 1,
        "win_back_base": 1,
    },
    ("2024-03", "segment", "at_risk"): {
        "members": 1,
        "churned": 1,
        "churn_base": 1,
        "churned_in_month": 1,
        "win_back_base": 1,
    },
    ("2024-03", "segment", "about_to_sleep"): {
        "members": 1,
        "dormant": 1,
        "repurchase_base_30d": 1,
        "churn_base": 1,
    },
    ("2024-04", "segment", "hibernating"): {
        "members": 1,
        "active": 1,
        "churn_base": 1,
        "win_back_base": 1,
        "won_back": 1,
        "tier_upgrades": 1,
        "buyers": 1,
        "orders": 1,
        "purchase_amount": 150.0,
        "spend": 150.0,
    },
    ("2024-04", "segment", "promising"): {
        "members": 1,
        "dormant": 1,
        "activation_base_30d": 1,
        "activated_30d": 1,
        "repurchase_base_30d": 1,
        "churn_base": 1,
        "tier_downgrades": 1,
        "spend": -250.0,
    },
    ("2024-04", "segment", "no_purchase"): {
        "members": 2,
        "new_registrations": 1,
        "no_purchase": 1,
        "active": 1,
        "activation_base_7d": 1,
        "buyers": 1,
        "orders": 1,
        "purchase_amount": 20.0,
        "spend": 20.0,
    },
    ("2024-04", "acquisition_channel", "web"): {
        "members": 3,
        "new_registrations": 1,
        "no_purchase": 1,
        "active": 1,
        "churned": 1,
        "activation_base_7d": 1,
        "win_back_base": 1,
        "buyers": 1,
        "orders": 1,
        "purchase_amount": 20.0,
        "spend": 20.0,
    },
    ("2024-04", "acquisition_channel", "store"): {
        "members": 2,
        "active": 1,
        "dormant": 1,
        "activation_base_30d": 1,
        "activated_30d": 1,
        "repurchase_base_30d": 1,
        "churn_base": 2,
        "win_back_base": 1,
        "won_back": 1,
        "tier_upgrades": 1,
        "tier_downgrades": 1,
        "buyers": 1,
        "orders": 1,
        "purchase_amount": 150.0,
        "spend": -100.0,
    },
}


@pytest.mark.parametrize("key", list(GROUP_ROWS), ids=lambda k: "-".join(k))
def test_groups_hold_the_members_by_channel_and_by_tier_and_segment_at_the_month_start(
    monthly: pd.DataFrame, key: tuple[str, str, str]
) -> None:
    row = _row(monthly, *key)
    expected = {c: GROUP_ROWS[key].get(c, 0) for c in COLUMNS}
    wrong = {c: (row[c], e) for c, e in expected.items() if row[c] != pytest.approx(e)}
    assert not wrong, f"{key}: (got, expected) {wrong}"


def test_activation_and_repurchase_rates_are_left_out_by_tier_and_segment(
    monthly: pd.DataFrame,
) -> None:
    store = _row(monthly, "2024-04", "acquisition_channel", "store")
    assert store["activation_rate_30d"] == 1.0 and pd.isna(store["activation_rate_7d"])
    by_entry = monthly[monthly["dimension"].isin(["tier", "segment"])]
    rates = ["activation_rate_7d", "activation_rate_30d", "repurchase_rate_30d"]
    assert by_entry[rates].isna().all().all()
    assert by_entry["churn_rate"].notna().any(), "churn rates are kept by tier and segment"


def test_groups_of_a_dimension_add_up_to_all_members(monthly: pd.DataFrame) -> None:
    sums = monthly.groupby(["month", "dimension"])[COLUMNS].sum()
    for dimension in ("acquisition_channel", "tier", "segment"):
        pd.testing.assert_frame_equal(
            sums.xs(dimension, level="dimension"),
            sums.xs("all", level="dimension"),
            obj=f"sums over {dimension}",
        )


def test_member_states_follow_the_stage_thresholds_tiers_and_rfm_segments() -> None:
    at = pd.Timestamp("2024-04-01", tz="UTC")
    states = state_at(read_inputs(connect(MEMBERS, ORDERS), at), at, DEFINITIONS)
    assert states.to_dict("records") == [
        {"member_id": "m1", "status": "churned", "segment": "at_risk", "tier": "silver"},
        {"member_id": "m2", "status": "dormant", "segment": "hibernating", "tier": "silver"},
        {"member_id": "m3", "status": "no_purchase", "segment": "no_purchase", "tier": "basic"},
        {"member_id": "m4", "status": "active", "segment": "promising", "tier": "gold"},
    ]


def test_a_growth_value_of_cents_equal_to_a_threshold_reaches_the_tier() -> None:
    # Given purchases summing to exactly 100.00 (silver), whose float sum is 99.99999999999999
    amounts = [1.86, 45.58, 15.72, 7.46, 29.38]
    orders = [
        {"member_id": "m1", "ordered_at": f"2024-01-0{i + 2}T00:00:00Z", "amount": a}
        for i, a in enumerate(amounts)
    ]
    at = pd.Timestamp("2024-02-01", tz="UTC")
    states = state_at(read_inputs(connect(MEMBERS[:1], orders), at), at, DEFINITIONS)
    assert states["tier"].tolist() == ["silver"]


def test_a_month_only_reads_rows_before_its_end() -> None:
    # Given the KPIs as of 2024-04-15, and as of 2024-03-01 on a lake without the later rows
    full = monthly_kpis(read_inputs(connect(MEMBERS, ORDERS), AS_OF), DEFINITIONS)
    end = pd.Timestamp("2024-03-01", tz="UTC")
    early_orders = [o for o in ORDERS if pd.Timestamp(str(o["ordered_at"])) < end]
    early_members = [m for m in MEMBERS if pd.Timestamp(m["registered_at"]) < end]
    early = monthly_kpis(read_inputs(connect(early_members, early_orders), end), DEFINITIONS)
    # Then January and February are the same to the last figure
    before = full[full["month"] < "2024-03"].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, early.reset_index(drop=True))
    # And a cutoff inside March gives a partial March but the same February
    mid_march = pd.Timestamp("2024-03-10", tz="UTC")
    mid = monthly_kpis(read_inputs(connect(MEMBERS, ORDERS), mid_march), DEFINITIONS)
    pd.testing.assert_frame_equal(
        mid[mid["month"] < "2024-03"].reset_index(drop=True), early.reset_index(drop=True)
    )
    assert not mid[mid["month"] == "2024-03"]["complete"].any()


def test_cohort_tables_give_retention_and_cumulative_spend_per_member() -> None:
    cohorts = cohort_kpis(read_inputs(connect(MEMBERS, ORDERS), AS_OF))
    got = cohorts.set_index(["cohort", "months_since_registration"])
    expected = {
        # (cohort, months since): members, buyers, retention, spend/member, cumulative
        ("2024-01", 0): (2, 1, 0.5, 65.0, 65.0),
        ("2024-01", 1): (2, 1, 0.5, 85.0, 150.0),
        ("2024-01", 2): (2, 0, 0.0, 0.0, 150.0),
        ("2024-02", 0): (1, 0, 0.0, 0.0, 0.0),
        ("2024-02", 1): (1, 0, 0.0, 0.0, 0.0),
        ("2024-03", 0): (1, 1, 1.0, 400.0, 400.0),
    }
    assert list(got.index) == list(expected), "complete months only: April is left out"
    columns = ["members", "buyers", "retention", "spend_per_member", "cumulative_spend_per_member"]
    for key, values in expected.items():
        assert tuple(got.loc[key, columns]) == pytest.approx(values), key


def test_an_empty_lake_gives_empty_tables() -> None:
    inputs = read_inputs(connect([]), AS_OF)
    monthly = monthly_kpis(inputs, DEFINITIONS)
    assert monthly.empty and "churn_rate" in monthly.columns
    assert cohort_kpis(inputs).empty


def test_a_member_id_twice_is_refused_by_name() -> None:
    twice = [*MEMBERS, {**MEMBERS[1], "registered_at": "2024-01-11T00:00:00Z"}]
    with pytest.raises(ContractError, match="member_id 'm2' more than once"):
        read_inputs(connect(twice, ORDERS), AS_OF)


def test_months_of_a_cutoff_on_a_month_start_end_with_the_whole_previous_month() -> None:
    got = months(pd.Timestamp("2024-01-31T23:00", tz="UTC"), pd.Timestamp("2024-03-01", tz="UTC"))
    assert [(m.label, m.complete) for m in got] == [("2024-01", True), ("2024-02", True)]
