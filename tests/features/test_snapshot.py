"""The snapshot: catalog columns and dtypes, point-in-time correctness, determinism."""

from __future__ import annotations

import pandas as pd

from features.catalog import PANDAS_DTYPES, all_features
from features.snapshot import compute_snapshot
from tests.features.lake import AS_OF, Rows, connect, day

THRESHOLDS = (("basic", 0.0), ("silver", 500.0), ("gold", 2000.0))
CUTOFF_TEXT = "2024-06-01T00:00:00Z"

MEMBERS = [
    {"member_id": "b", "registered_at": day("2023-02-01"), "birth_year": 1980},
    {"member_id": "a", "registered_at": day("2024-05-30")},
    {"member_id": "c", "registered_at": day("2023-06-01"), "gender": "male"},
]
ORDERS = [
    {"member_id": "b", "ordered_at": day(d), "amount": a, "channel": ch}
    for d, a, ch in [
        ("2023-03-01", 300.0, "store"),
        ("2023-12-01", 250.0, "online"),
        ("2024-05-01", 90.0, "app"),
        ("2024-05-31", 40.0, "store"),
    ]
] + [
    {"member_id": "c", "ordered_at": day("2023-07-01"), "amount": 2500.0, "discount": 1000.0},
    {"member_id": "c", "ordered_at": day("2024-01-10"), "amount": 100.0, "is_return": True},
]
EVENTS = [
    {"member_id": m, "occurred_at": day(d), "event_type": t, "value": v}
    for m, d, t, v in [
        ("a", "2024-05-31", "add_to_cart", None),
        ("b", "2024-05-20", "login", None),
        ("c", "2024-05-01", "points_earned", 2500.0),
        ("b", "2024-04-01", "login", None),
    ]
]
CONTACTS = [
    {"member_id": "b", "sent_at": day("2024-05-10"), "responded_at": day("2024-05-11")},
    {"member_id": "c", "sent_at": day("2024-04-10"), "channel": "sms"},
]


def snapshot(**extra: Rows) -> pd.DataFrame:
    """The snapshot at AS_OF of the base rows plus `extra` rows per table."""
    rows = {"members": MEMBERS, "orders": ORDERS, "events": EVENTS, "contacts": CONTACTS}
    tables = {name: [*base, *extra.get(name, ())] for name, base in rows.items()}
    con = connect(tables["members"], tables["orders"], tables["events"], tables["contacts"])
    return compute_snapshot(con, AS_OF, tier_thresholds=THRESHOLDS)


def test_columns_and_dtypes_equal_the_catalog() -> None:
    # Given a few members / When computing the snapshot
    out = snapshot()
    # Then the columns are the keys plus every catalog feature, with catalog dtypes
    features = all_features()
    assert list(out.columns) == ["member_id", "as_of", *(f.name for f in features)]
    wrong = {
        f.name: str(out[f.name].dtype)
        for f in features
        if str(out[f.name].dtype) != PANDAS_DTYPES[f.dtype]
    }
    assert not wrong, f"dtypes differ from the catalog: {wrong}"
    assert str(out["member_id"].dtype) == "string"
    assert str(out["as_of"].dtype) == "datetime64[us, UTC]" and (out["as_of"] == AS_OF).all()


def test_deterministic_and_sorted_by_member() -> None:
    first, second = snapshot(), snapshot()
    pd.testing.assert_frame_equal(first, second)
    assert first["member_id"].tolist() == ["a", "b", "c"], "one row per member, sorted by id"


def test_rows_at_or_after_the_cutoff_change_nothing() -> None:
    # Given rows timestamped exactly at the cutoff and after it, for every member
    late = {
        "orders": [
            {"member_id": m, "ordered_at": t, "amount": 5000.0, "coupon_id": "x"}
            for m in "abc"
            for t in (CUTOFF_TEXT, day("2024-07-01"))
        ],
        "events": [
            {"member_id": m, "occurred_at": t, "event_type": e}
            for m in "abc"
            for t in (CUTOFF_TEXT, day("2024-06-02"))
            for e in ("login", "add_to_cart", "email_open")
        ],
        "contacts": [
            {"member_id": "a", "sent_at": CUTOFF_TEXT},
            {"member_id": "c", "sent_at": day("2024-06-05"), "responded_at": day("2024-06-06")},
        ],
    }
    # When computing the snapshot with and without them
    before, with_late = snapshot(), snapshot(**late)
    # Then every feature of every member is identical
    pd.testing.assert_frame_equal(before, with_late, obj="snapshot with rows at/after as_of")


def test_late_response_is_not_known_at_the_cutoff() -> None:
    late_answer = [{"member_id": "c", "sent_at": day("2024-05-30"), "responded_at": CUTOFF_TEXT}]
    out = snapshot(contacts=late_answer).set_index("member_id")
    assert out.loc["c", "contact_response_rate_90d"] == 0.0, "answer at the cutoff is future"


def test_members_registered_at_or_after_the_cutoff_are_absent() -> None:
    later = [
        {"member_id": "z", "registered_at": CUTOFF_TEXT},
        {"member_id": "y", "registered_at": day("2024-08-01")},
    ]
    out = snapshot(members=later)
    assert out["member_id"].tolist() == ["a", "b", "c"], "only members registered before as_of"
    pd.testing.assert_frame_equal(out, snapshot())


def test_a_few_joined_values() -> None:
    out = snapshot().set_index("member_id")
    b, c = out.loc["b"], out.loc["c"]
    assert b["growth_value"] == 380.0 and b["tier"] == "basic", "250 + 90 + 40 in the year"
    assert b["distance_to_next_tier"] == 120.0 and b["segment"] != "no_purchase"
    assert c["growth_value"] == 2400.0, "2500 paid 336 days ago minus a 100 refund"
    assert c["tier"] == "gold" and pd.isna(c["next_tier"]), "gold is the top tier here"
    assert c["tags"] == "discount-seeker,online-first,points-hoarder", (
        "1000 / 3500 discount, its one purchase online, 2500 points kept"
    )
    assert out.loc["a", "segment"] == "no_purchase" and out.loc["a", "tags"] == "new-member"
