"""RFM features: hand-checked recency, windows, gaps, overdue, discounts, returns, channels."""

from __future__ import annotations

import statistics
from decimal import Decimal
from itertools import pairwise

import duckdb
import pandas as pd
import pytest

from features.families.rfm import compute_rfm
from tests.features.lake import AS_OF, connect, day


def rfm_of(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return compute_rfm(con, AS_OF).set_index("member_id")


def test_recency_frequency_monetary_windows_and_means() -> None:
    # Given a purchase 200, 60 and 10 days before the cutoff and a refund 5 days before it
    con = connect(
        [{"member_id": "a"}],
        [
            {"member_id": "a", "ordered_at": day("2023-11-14"), "amount": 100.0},  # 200 d
            {"member_id": "a", "ordered_at": day("2024-04-02"), "amount": 40.0},  # 60 d
            {"member_id": "a", "ordered_at": day("2024-05-22"), "amount": 20.0},  # 10 d
            {"member_id": "a", "ordered_at": day("2024-05-27"), "amount": 15.0, "is_return": True},
        ],
    )
    # When computing the rfm family
    a = rfm_of(con).loc["a"]
    # Then counts exclude the refund and net spend subtracts it within each window
    assert a["recency_days"] == 10.0, "last purchase 10 days before; a refund is not a purchase"
    assert (a["frequency_30d"], a["frequency_90d"], a["frequency_365d"], a["frequency"]) == (
        1,
        2,
        3,
        3,
    ), "purchases per 30/90/365-day window and all time"
    assert a["monetary_30d"] == 20.0 - 15.0, "net spend in 30 days: purchase minus refund"
    assert a["monetary_90d"] == 45.0 and a["monetary"] == 145.0, "net spend 90 d / all time"
    assert a["avg_order_value_90d"] == 30.0, "mean purchase amount (40 + 20) / 2 in 90 days"
    assert a["avg_order_value_30d"] == 20.0, "one purchase of 20 in 30 days"
    assert a["first_order_amount"] == 100.0 and a["days_since_first_order"] == 200.0
    assert a["tenure_days"] == 152.0, "registered 2024-01-01, 152 days before 2024-06-01"


def test_gaps_and_days_overdue() -> None:
    # Given purchases 100, 60 and 40 days before the cutoff (gaps 40 and 20 days)
    con = connect(
        [{"member_id": "a"}, {"member_id": "b"}],
        [
            {"member_id": "a", "ordered_at": day("2024-02-22")},
            {"member_id": "a", "ordered_at": day("2024-04-02")},
            {"member_id": "a", "ordered_at": day("2024-04-22")},
            {"member_id": "b", "ordered_at": day("2024-04-22")},
        ],
    )
    rfm = rfm_of(con)
    a, b = rfm.loc["a"], rfm.loc["b"]
    # Then the mean gap is 30 days, the sample std sqrt(200), and overdue = 40 - 30
    assert a["mean_gap_days"] == 30.0, "mean of gaps 40 and 20 days"
    assert a["std_gap_days"] == pytest.approx(200**0.5), "sample std of 40 and 20 days"
    assert a["days_overdue"] == 10.0, "40 days since the last order minus the 30-day rhythm"
    assert pd.isna(b["mean_gap_days"]) and pd.isna(b["days_overdue"]), "one order: no rhythm"


def test_discount_share_return_rate_and_channel_mix() -> None:
    # Given 3 purchases (2 in store, 1 in the app) with discounts and one refund
    con = connect(
        [{"member_id": "a"}, {"member_id": "none"}],
        [
            {
                "member_id": "a",
                "ordered_at": day("2024-05-01"),
                "amount": 80.0,
                "discount": 20.0,
                "channel": "store",
            },
            {"member_id": "a", "ordered_at": day("2024-05-02"), "amount": 50.0, "channel": "store"},
            {"member_id": "a", "ordered_at": day("2024-05-03"), "amount": 50.0, "channel": "app"},
            {
                "member_id": "a",
                "ordered_at": day("2024-05-04"),
                "amount": 50.0,
                "channel": "online",
                "is_return": True,
            },
        ],
    )
    rfm = rfm_of(con)
    a, none = rfm.loc["a"], rfm.loc["none"]
    # Then the shares count purchases only
    assert a["discount_share"] == pytest.approx(20 / 200), "20 discount over 180 paid + 20"
    assert a["return_rate"] == pytest.approx(1 / 3), "one refund per three purchases"
    assert a["store_share"] == pytest.approx(2 / 3) and a["app_share"] == pytest.approx(1 / 3)
    assert a["online_share"] == 0.0, "the refund in the online channel is not a purchase"
    # And a member without orders has zero counts and null rates
    assert none["frequency"] == 0 and none["monetary"] == 0.0
    assert none[["recency_days", "discount_share", "return_rate", "store_share"]].isna().all()


def test_money_sums_are_exact_whatever_order_the_rows_are_added_in() -> None:
    """Given amounts whose double sum depends on the order they are added in, then the net
    spend and the mean order value are the exact decimal results (as doubles),
    and the mean and spread of the gaps are those of the exact gaps in microseconds: DuckDB
    aggregates in parallel, in no fixed order, and the features must not change between two
    builds of the same lake."""
    amounts = [0.1, 0.7, 0.2, 123.45, 0.3, 1e-3, 0.07, 9.99, 0.6, 0.11]
    assert sum(amounts) != sum(reversed(amounts)), "the double sum depends on the order"
    start = pd.Timestamp("2024-01-03 01:02:03.000007", tz="UTC")
    times = [start + pd.Timedelta(days=11.3 * i + 0.01 * i * i) for i in range(len(amounts))]
    orders = [
        {"member_id": "a", "ordered_at": t.isoformat(), "amount": x, "discount": 0.0}
        for t, x in zip(times, amounts, strict=True)
    ]
    a = rfm_of(connect([{"member_id": "a"}], orders)).loc["a"]

    exact = sum(Decimal(str(x)) for x in amounts)
    assert a["monetary"] == float(exact) and a["monetary_365d"] == float(exact)
    assert a["avg_order_value"] == float(exact / len(amounts))
    gaps = [(later - earlier) / pd.Timedelta(microseconds=1) for earlier, later in pairwise(times)]
    day_us = 86_400e6
    assert a["mean_gap_days"] == sum(gaps) / len(gaps) / day_us
    assert a["std_gap_days"] == pytest.approx(statistics.stdev(gaps) / day_us, rel=1e-12)
