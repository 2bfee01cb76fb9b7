"""Behaviour features: hand-checked counts, contact rates, cart abandonment, points, activity."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.families.behaviour import compute_behaviour
from tests.features.lake import AS_OF, connect, day


def event(member: str, when: str, kind: str, value: float | None = None) -> dict[str, Any]:
    return {"member_id": member, "occurred_at": day(when), "event_type": kind, "value": value}


def test_counts_points_and_activity() -> None:
    # Given logins 10 and 50 days ago, points earned and redeemed, a tier change
    con = connect(
        [{"member_id": "a"}],
        [{"member_id": "a", "ordered_at": day("2024-05-29")}],  # 3 days ago
        [
            event("a", "2024-05-22", "login"),
            event("a", "2024-04-12", "login"),
            event("a", "2024-03-01", "points_earned", 500.0),
            event("a", "2024-04-01", "points_earned", 300.0),
            event("a", "2024-04-02", "points_redeemed", 200.0),
            event("a", "2024-05-25", "tier_change"),
        ],
    )
    # When computing the behaviour family
    a = compute_behaviour(con, AS_OF).set_index("member_id").loc["a"]
    # Then
    assert (a["logins_30d"], a["logins_90d"]) == (1, 2), "logins 10 and 50 days ago"
    assert a["points_balance"] == 600.0, "800 earned minus 200 redeemed"
    assert a["days_since_last_login"] == 10.0
    assert a["days_since_last_activity"] == 3.0, "the order 3 days ago is the latest activity"
    assert a["events_30d"] == 1, "tier_change is emitted by the programme, not engagement"
    assert a["activity_trend"] == pytest.approx(np.log(2 / 3)), (
        "ln((1 + 1) / (1 + 2)): the login 50 days ago and the redemption 59 days ago fall in "
        "the 30 days before the last 30"
    )


def test_contact_rates_count_only_responses_before_the_cutoff() -> None:
    # Given 4 emails and 2 SMS in the last 90 days, 2 email opens, 1 click, 1 SMS click
    sent = [("email", "2024-05-01")] * 4 + [("sms", "2024-05-02")] * 2
    contacts = [{"member_id": "a", "channel": c, "sent_at": day(d)} for c, d in sent]
    contacts[0]["responded_at"] = day("2024-05-03")
    contacts[1]["responded_at"] = day("2024-06-02")  # after the cutoff: not yet known
    con = connect(
        [{"member_id": "a"}],
        events=[
            event("a", "2024-05-02", "email_open"),
            event("a", "2024-05-03", "email_open"),
            event("a", "2024-05-03", "email_click"),
            event("a", "2024-05-04", "sms_click"),
        ],
        contacts=contacts,
    )
    a = compute_behaviour(con, AS_OF).set_index("member_id").loc["a"]
    assert a["email_open_rate_90d"] == 0.5 and a["email_click_rate_90d"] == 0.25
    assert a["sms_click_rate_90d"] == 0.5, "1 SMS click per 2 SMS"
    assert a["contact_response_rate_90d"] == pytest.approx(1 / 6), "1 known response of 6"
    assert (a["contacts_30d"], a["contacts_90d"]) == (2, 6), "emails 31 days ago are not in 30 d"


def test_cart_abandonment_coupons_and_members_without_activity() -> None:
    # Given two cart adds: one followed by a purchase 12 hours later, one never followed
    con = connect(
        [{"member_id": "a"}, {"member_id": "quiet"}],
        [{"member_id": "a", "ordered_at": "2024-05-10T12:00:00Z", "coupon_id": "c9"}],
        [
            event("a", "2024-05-10", "add_to_cart"),
            event("a", "2024-05-20", "add_to_cart"),
            event("a", "2024-05-09", "coupon_claim"),
        ],
    )
    out = compute_behaviour(con, AS_OF).set_index("member_id")
    a, quiet = out.loc["a"], out.loc["quiet"]
    assert a["cart_abandon_rate_30d"] == 0.5, "one of two cart adds not bought within a day"
    assert (a["coupon_claims_90d"], a["coupon_redemptions_90d"]) == (1, 1)
    assert quiet["logins_30d"] == 0 and quiet["points_balance"] == 0.0, "no events: zeros"
    assert pd.isna(quiet["cart_abandon_rate_30d"]) and pd.isna(quiet["email_open_rate_90d"])
    assert quiet["activity_trend"] == 0.0, "no events in either window: flat, not NaN"
