"""Tags: each rule fires on its threshold and the text column lists the tags that hold."""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.families import tags
from features.families.tags import tag_features

BASE: dict[str, Any] = {
    "frequency": 4,
    "monetary": 100.0,
    "next_tier": "silver",
    "points_earned": 100.0,
    "points_redeemed": 50.0,
    "points_balance": 50.0,
    "recency_days": 10.0,
    "discount_share": 0.0,
    "store_share": 0.5,
    "online_share": 0.5,
    "app_share": 0.0,
    "days_overdue": 0.0,
    "tenure_days": 400.0,
    "return_rate": 0.0,
    "email_open_rate_90d": 0.0,
    "events_30d": 0,
}


def members(**variants: dict[str, Any]) -> pd.DataFrame:
    """One member per keyword: the base values with the given changes."""
    rows = [{"member_id": name, **BASE, **change} for name, change in variants.items()]
    return pd.DataFrame(rows)


def test_each_tag_fires_at_its_threshold() -> None:
    # Given one member per rule, each just at its threshold, plus a plain member
    frame = members(
        plain={},
        seeker={"discount_share": tags.DISCOUNT_SEEKER_SHARE},
        store={"store_share": tags.CHANNEL_FIRST_SHARE, "online_share": 0.4},
        vip={"next_tier": None, "days_overdue": tags.LAPSED_VIP_OVERDUE_DAYS},
        fresh={"tenure_days": tags.NEW_MEMBER_DAYS - 1},
        returner={"return_rate": tags.HIGH_RETURN_RATE},
        hoarder={"points_earned": 2000.0, "points_redeemed": 0.0, "points_balance": 2000.0},
        reader={"email_open_rate_90d": tags.EMAIL_ENGAGED_OPEN_RATE},
        browser={"events_30d": 5, "recency_days": 120.0},
        never={"events_30d": 5, "recency_days": None, "frequency": 0},
    )
    # When tagging
    out = tag_features(frame).set_index("member_id")["tags"]
    # Then exactly the intended tag holds
    expected = {
        "plain": "",
        "seeker": "discount-seeker",
        "store": "store-first",
        "vip": "lapsed-vip",
        "fresh": "new-member",
        "returner": "high-returner",
        "hoarder": "points-hoarder",
        "reader": "email-engaged",
        "browser": "dormant-browser",
        "never": "dormant-browser",
    }
    assert out.to_dict() == expected, "each member was built to trigger one tag"


def test_tags_text_is_sorted_and_flags_agree() -> None:
    frame = members(both={"discount_share": 0.5, "tenure_days": 1.0})
    out = tag_features(frame).iloc[0]
    assert out["tags"] == "discount-seeker,new-member", "alphabetical, comma-separated"
    assert out["tag_discount_seeker"] and out["tag_new_member"] and not out["tag_store_first"]


def test_returner_needs_enough_purchases_and_missing_inputs_never_tag() -> None:
    frame = members(
        one={"frequency": 1, "return_rate": 1.0},
        blank={"discount_share": None, "store_share": None, "days_overdue": None},
    )
    out = tag_features(frame).set_index("member_id")["tags"]
    assert out["one"] == "", "one refunded order is not a habit"
    assert out["blank"] == "", "missing shares do not pass any threshold"
