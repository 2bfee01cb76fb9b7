"""The fast online read: Feast values to plain Python, per-view reads merged per member."""

from __future__ import annotations

from datetime import UTC, datetime

from feast.protos.feast.types.Value_pb2 import Null, StringList, Value

from serving.feast_online import member_features, python_value

EARLY = datetime(2026, 5, 25, tzinfo=UTC)
LATE = datetime(2026, 6, 1, tzinfo=UTC)


def test_python_value_gives_plain_scalars_lists_and_none() -> None:
    assert python_value(Value(double_val=1.5)) == 1.5
    assert python_value(Value(int64_val=7)) == 7 and type(python_value(Value(int64_val=7))) is int
    assert python_value(Value(bool_val=False)) is False
    assert python_value(Value(string_val="gold")) == "gold"
    assert python_value(Value(string_list_val=StringList(val=["a", "b"]))) == ["a", "b"]
    assert python_value(Value()) is None, "an unset value is missing"
    assert python_value(Value(null_val=Null.NULL)) is None


def test_member_features_merges_views_and_leaves_unknown_members_out() -> None:
    # Given two views read for three members; m2 is in neither view, m1 only in the first
    rfm = [(EARLY, {"recency_days": Value(double_val=3.0)}), (LATE, {"recency_days": Value()})]
    rfm.append((None, None))
    profile = [(None, None), (LATE, {"tier": Value(string_val="gold")}), (None, None)]

    found = member_features(["m1", "m0", "m2"], [rfm, profile])

    assert found.rows == {
        "m1": {"recency_days": 3.0},
        "m0": {"recency_days": None, "tier": "gold"},
    }, "features of every view a member has, none for members the store lacks"
    assert found.as_of == {"m1": EARLY, "m0": LATE}, "as_of is the latest cutoff among views"
