"""The data contract's validator: canonical dtypes out, every rejected row with field + rule."""

from __future__ import annotations

import pandas as pd
import pytest

from memberscore.contract import (
    CONTACTS,
    EVENTS,
    MEMBERS,
    ORDERS,
    REASON,
    ROW,
    TIMESTAMP_DTYPE,
    DateWindow,
    empty,
    table,
    validate,
)
from memberscore.errors import ContractError


def _orders(**overrides: list[object]) -> pd.DataFrame:
    rows = {
        "order_id": ["o1", "o2"],
        "member_id": ["m1", "m2"],
        "ordered_at": ["2024-03-01T10:00:00Z", "2024-03-02T09:30:00+02:00"],
        "amount": ["20.5", "7"],
        "discount": ["0", "2.5"],
        "items": ["1", "3"],
        "channel": ["online", "store"],
        "coupon_id": ["", "c9"],
        "is_return": ["false", "0"],
    }
    rows.update(overrides)
    return pd.DataFrame(rows)


def test_valid_rows_become_canonical_types() -> None:
    result = validate(_orders(), ORDERS)

    assert result.rejected.empty, (
        f"nothing should be rejected: {result.rejected.to_dict('records')}"
    )
    frame = result.accepted
    assert str(frame["ordered_at"].dtype) == TIMESTAMP_DTYPE
    assert frame["ordered_at"][1] == pd.Timestamp("2024-03-02T07:30:00Z"), "offset kept as UTC"
    assert frame["amount"].tolist() == [20.5, 7.0]
    assert frame["items"].tolist() == [1, 3]
    assert frame["is_return"].dtype == bool
    assert pd.isna(frame["coupon_id"][0]) and frame["coupon_id"][1] == "c9"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("amount", "abc", "amount: must be a number (got 'abc')"),
        ("amount", "-3", "amount: must be >= 0 (got '-3')"),
        ("amount", "1e16", "amount: must be <= 1e+15 (got '1e16')"),
        ("discount", "2e15", "discount: must be <= 1e+15 (got '2e15')"),
        ("items", "1.5", "items: must be a whole number (got '1.5')"),
        ("channel", "moon", "channel: must be one of online, store, app, marketplace, phone"),
        ("is_return", "maybe", "is_return: must be true or false (got 'maybe')"),
        ("member_id", "", "member_id: is required"),
        ("ordered_at", "yesterday", "ordered_at: must be a timestamp with a timezone"),
    ],
)
def test_bad_value_is_rejected_with_field_and_rule(field: str, value: str, reason: str) -> None:
    raw = _orders(**{field: ["ok-placeholder", value]})
    raw.loc[0, field] = _orders()[field][0]

    result = validate(raw, ORDERS, first_row=2)

    assert len(result.accepted) == 1, "the good row is kept"
    assert result.rejected[ROW].tolist() == [3], "the source row number (header = row 1) is kept"
    assert reason in result.rejected[REASON][0], result.rejected[REASON][0]
    assert result.rejected[field][0] == value, "the raw value is preserved in quarantine"


def test_several_problems_in_one_row_are_all_reported() -> None:
    raw = _orders(amount=["20", "x"], channel=["online", "moon"])

    reason = validate(raw, ORDERS).rejected[REASON][0]

    assert "amount:" in reason and "channel:" in reason, reason


def test_naive_timestamps_need_an_explicit_timezone() -> None:
    raw = _orders(ordered_at=["2024-07-01 12:00:00", "2024-07-01T12:00:00Z"])

    strict = validate(raw, ORDERS)
    berlin = validate(raw, ORDERS, assume_timezone="Europe/Berlin")

    assert len(strict.rejected) == 1, "a naive timestamp is ambiguous and rejected by default"
    assert berlin.accepted["ordered_at"][0] == pd.Timestamp("2024-07-01T10:00:00Z")


def test_typed_parquet_columns_are_accepted() -> None:
    raw = pd.DataFrame(
        {
            "event_id": ["e1"],
            "member_id": ["m1"],
            "occurred_at": pd.to_datetime(["2024-01-01T00:00:00"]).tz_localize("Asia/Tokyo"),
            "event_type": ["login"],
            "value": [None],
        }
    )

    result = validate(raw, EVENTS)

    assert result.rejected.empty
    assert result.accepted["occurred_at"][0] == pd.Timestamp("2023-12-31T15:00:00Z")


def test_missing_required_column_fails_the_whole_input() -> None:
    with pytest.raises(ContractError, match=r"missing required column.*amount"):
        validate(_orders().drop(columns="amount"), ORDERS)


def test_unknown_columns_fail_unless_ignored() -> None:
    raw = _orders().assign(store_code=["a", "b"])

    with pytest.raises(ContractError, match=r"store_code.*--ignore-unknown-columns"):
        validate(raw, ORDERS)
    assert "store_code" not in validate(raw, ORDERS, ignore_unknown=True).accepted.columns


def test_optional_columns_may_be_absent() -> None:
    raw = pd.DataFrame(
        {
            "member_id": ["m1"],
            "registered_at": ["2024-01-01T00:00:00Z"],
            "acquisition_channel": ["organic"],
            "region": ["north"],
            "tier": ["basic"],
            "consent_marketing": ["yes"],
            "consent_personalization": ["no"],
        }
    )

    frame = validate(raw, MEMBERS).accepted

    assert frame["is_derived"].tolist() == [False], "is_derived defaults to False"
    assert frame["birth_year"].isna().all() and frame["gender"].isna().all()


def test_empty_frames_carry_canonical_dtypes() -> None:
    for spec in (MEMBERS, ORDERS, EVENTS, CONTACTS):
        frame = empty(spec)
        assert list(frame.columns) == spec.names
        assert str(frame[spec.time_column].dtype) == TIMESTAMP_DTYPE


def test_unknown_table_name_lists_the_valid_ones() -> None:
    with pytest.raises(ContractError, match="members, orders, events, contacts"):
        table("customers")


WINDOW = DateWindow(
    earliest=pd.Timestamp("1970-01-01", tz="UTC"), latest=pd.Timestamp("2026-12-04", tz="UTC")
)


def test_nul_and_control_characters_are_rejected_naming_the_field() -> None:
    """Issue 14 finding 6: a NUL inside an id must not pass (a reader that cuts at NUL turns
    'm1\\x00x' into 'm1' and moves the order to another member)."""
    # given a member id holding a NUL, a region holding ESC, and an id padded with a tab
    raw = pd.DataFrame(
        {
            "member_id": ["m1\x00x", "m2", "m3\t"],
            "registered_at": ["2024-01-01T00:00:00Z"] * 3,
            "acquisition_channel": ["web"] * 3,
            "region": ["north", "no\x1brth", "north"],
            "tier": ["basic"] * 3,
            "consent_marketing": ["yes"] * 3,
            "consent_personalization": ["no"] * 3,
        }
    )

    # when validated
    result = validate(raw, MEMBERS)

    # then the two rows with a control character inside are rejected with field + code point
    reasons = result.rejected.set_index(ROW)[REASON]
    assert reasons[1] == "member_id: contains control character U+0000; remove it (got 'm1\\x00x')"
    assert reasons[2].startswith("region: contains control character U+001B"), reasons[2]
    assert result.accepted["member_id"].tolist() == ["m3"], (
        "surrounding whitespace (a trailing tab) is trimmed as before, not refused"
    )
    assert result.rejected["member_id"][0] == "m1\x00x", "the raw value is kept as it was"


def test_a_date_without_time_or_zone_is_not_read_as_utc() -> None:
    """Issue 14 finding 6: '2024-05-01' ends in '-01', which the old check took for an offset, so
    zone-less dates were stored as UTC."""
    raw = _orders(ordered_at=["2024-05-01", "2024-05-01T10:00:00"])

    strict = validate(raw, ORDERS)
    berlin = validate(raw, ORDERS, assume_timezone="Europe/Berlin")

    assert strict.accepted.empty, "neither value says which zone it is in"
    assert all("must be a timestamp with a timezone" in r for r in strict.rejected[REASON])
    assert "pass --timezone" in strict.rejected[REASON][0], "the reason says how to fix it"
    assert berlin.accepted["ordered_at"].tolist() == [
        pd.Timestamp("2024-04-30T22:00:00Z"),
        pd.Timestamp("2024-05-01T08:00:00Z"),
    ], "with an explicit zone both are local times in Berlin (UTC+2 in May)"


def test_dates_outside_the_plausible_window_are_implausible() -> None:
    """Issue 14 finding 6: orders dated 1900 and 2100 were stored."""
    raw = _orders(ordered_at=["1900-01-01T00:00:00Z", "2100-01-01T00:00:00Z"])
    inside = _orders()

    result = validate(raw, ORDERS, window=WINDOW)

    assert result.accepted.empty, "both dates lie outside 1970-01-01 .. 2026-12-04"
    for reason in result.rejected[REASON]:
        assert reason.startswith(
            "ordered_at: implausible date, outside 1970-01-01 to 2026-12-04 00:00 UTC"
        ), reason
        assert "earliest_date" in reason, "the reason names the settings that set the window"
    assert len(validate(inside, ORDERS, window=WINDOW).accepted) == 2, "2024 is plausible"
    assert len(validate(raw, ORDERS).accepted) == 2, "without a window nothing is bounded"


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z", "2024-02-30T10:00:00Z"]
)
def test_impossible_dates_are_not_valid_date_times(value: str) -> None:
    """Issue 14 finding 6: these carry a zone, yet were rejected as lacking one."""
    raw = _orders(ordered_at=["2024-03-01T10:00:00Z", value])

    result = validate(raw, ORDERS, window=WINDOW)

    assert len(result.accepted) == 1
    assert result.rejected[REASON][0] == f"ordered_at: not a valid date/time (got '{value}')", (
        "an impossible date is neither 'without a timezone' nor merely implausible"
    )


def test_a_local_time_skipped_by_daylight_saving_is_rejected() -> None:
    raw = _orders(ordered_at=["2024-03-31 02:30:00", "2024-03-31 03:30:00"])

    result = validate(raw, ORDERS, assume_timezone="Europe/Berlin")

    assert len(result.accepted) == 1, "03:30 exists in Berlin that night"
    assert "does not exist or occurs twice in Europe/Berlin" in result.rejected[REASON][0]


def test_a_column_named_twice_fails_the_whole_input() -> None:
    raw = pd.concat([_orders(), _orders()[["amount"]]], axis=1)

    with pytest.raises(ContractError, match="amount appear more than once"):
        validate(raw, ORDERS)
