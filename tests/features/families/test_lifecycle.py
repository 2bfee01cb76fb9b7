"""Lifecycle features: what the stage engine reads, including the won-back signal."""

from __future__ import annotations

import pandas as pd

from features.families.lifecycle import compute_lifecycle, recency_bucket
from tests.features.lake import AS_OF, connect, day


def test_won_back_after_a_long_gap() -> None:
    # Given orders 400 and 190 days before and 10 days before the cutoff (gaps 210 and 180)
    con = connect(
        [{"member_id": "back", "registered_at": day("2023-01-01")}, {"member_id": "new"}],
        [
            {"member_id": "back", "ordered_at": day("2023-04-28")},  # 400 d
            {"member_id": "back", "ordered_at": day("2023-11-24")},  # 190 d
            {"member_id": "back", "ordered_at": day("2024-05-22")},  # 10 d
        ],
    )
    # When computing the lifecycle family
    out = compute_lifecycle(con, AS_OF).set_index("member_id")
    back, new = out.loc["back"], out.loc["new"]
    # Then
    assert back["last_gap_days"] == 180.0 and back["max_gap_days"] == 210.0
    assert back["won_back"], "the last order came after a 180-day gap"
    assert back["has_ordered"] and back["orders_count_all"] == 3
    assert back["days_to_first_order"] == 117.0, "registered 2023-01-01, first order 04-28"
    assert back["is_active_90d"] and back["recency_bucket"] == "0_30"
    assert back["frequency_prev_90d"] == 0, "nothing 90 to 180 days ago"
    assert not new["has_ordered"] and not new["won_back"] and not new["is_active_90d"]
    assert new["recency_bucket"] == "none" and pd.isna(new["days_to_first_order"])
    assert new["days_since_registration"] == 152.0


def test_recency_bucket_edges() -> None:
    days = pd.Series([0.0, 30.0, 30.5, 90.0, 180.0, 365.0, 366.0, None])
    expected = ["0_30", "0_30", "31_90", "31_90", "91_180", "181_365", "365_plus", "none"]
    assert recency_bucket(days).tolist() == expected, "upper bounds are inclusive"
