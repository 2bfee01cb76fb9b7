"""Profile features: tier re-derived from trailing spend (never members.tier), age bands."""

from __future__ import annotations

import pandas as pd

from features.families.profile import age_band, compute_profile
from tests.features.lake import AS_OF, connect, day

THRESHOLDS = (("basic", 0.0), ("silver", 500.0), ("gold", 2000.0), ("platinum", 5000.0))


def test_tier_and_distance_come_from_net_spend_of_the_trailing_year() -> None:
    # Given spend 400 days ago (outside the year), 600 in the year and a refund of 200
    con = connect(
        [{"member_id": "a", "tier": "platinum"}, {"member_id": "top"}, {"member_id": "none"}],
        [
            {"member_id": "a", "ordered_at": day("2023-04-28"), "amount": 9000.0},
            {"member_id": "a", "ordered_at": day("2024-03-01"), "amount": 600.0},
            {"member_id": "a", "ordered_at": day("2024-03-05"), "amount": 200.0, "is_return": True},
            {"member_id": "top", "ordered_at": day("2024-05-01"), "amount": 6000.0},
        ],
    )
    # When computing the profile family
    out = compute_profile(con, AS_OF, tier_thresholds=THRESHOLDS).set_index("member_id")
    a, top, none = out.loc["a"], out.loc["top"], out.loc["none"]
    # Then growth value is 400, so basic, not the exported platinum
    assert a["growth_value"] == 400.0, "600 paid minus 200 refunded in the 365 days"
    assert (a["tier"], a["tier_rank"], a["next_tier"]) == ("basic", 0, "silver")
    assert a["distance_to_next_tier"] == 100.0, "silver needs 500, 400 held"
    assert (top["tier"], top["tier_rank"]) == ("platinum", 3)
    assert pd.isna(top["next_tier"]) and pd.isna(top["distance_to_next_tier"]), "top tier"
    assert none["tier"] == "basic" and none["distance_to_next_tier"] == 500.0


def test_profile_columns_age_band_and_unknowns() -> None:
    con = connect(
        [
            {"member_id": "a", "birth_year": 1990, "gender": "female", "region": "south"},
            {"member_id": "b", "consent_marketing": False, "is_derived": True},
        ]
    )
    out = compute_profile(con, AS_OF, tier_thresholds=THRESHOLDS).set_index("member_id")
    a, b = out.loc["a"], out.loc["b"]
    assert (a["age_years"], a["age_band"]) == (34, "25_34"), "2024 - 1990"
    assert (a["gender"], a["region"]) == ("female", "south")
    assert (b["age_band"], b["gender"]) == ("unknown", "unknown"), "missing birth year/gender"
    assert not b["consent_marketing"] and b["is_derived"]


def test_age_band_edges() -> None:
    ages = pd.Series([17, 18, 24, 25, 64, 65, None], dtype="Int64")
    expected = ["under_18", "18_24", "18_24", "25_34", "55_64", "65_plus", "unknown"]
    assert age_band(ages).tolist() == expected, "a band includes its lowest age"
