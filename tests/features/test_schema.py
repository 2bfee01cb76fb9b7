"""The snapshot schema: generated from the catalog, and a clear ContractError per broken rule.

Frames are tiny and built in code: `valid_snapshot` holds one value of every catalog feature
that the feature definitions allow, for a buyer and a member without orders.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from features import build, schema
from features.catalog import FAMILIES, PANDAS_DTYPES, all_features, feature_names
from memberscore.errors import ContractError

CUTOFF = pd.Timestamp("2026-06-01", tz="UTC")
MEMBERS = ("m1", "m2", "m3")
NON_BUYER = "m3"
TEXT = {"gender": "female", "rfm_cell": "545"}


def valid_snapshot(cutoff: pd.Timestamp = CUTOFF) -> pd.DataFrame:
    """Three members as of `cutoff`, conformed like a built snapshot; the non-buyer m3 has a
    null wherever the catalog allows one."""
    frame = pd.DataFrame({"member_id": list(MEMBERS), "as_of": cutoff})
    value: dict[str, Any] = {"float": 0.5, "int": 2, "bool": True, "string": "x"}
    for feature in all_features():
        one = TEXT.get(feature.name, value[feature.dtype])
        column = pd.Series([one] * len(MEMBERS), dtype=PANDAS_DTYPES[feature.dtype])
        if schema.nullable(feature):
            column[len(MEMBERS) - 1] = pd.NA
        frame[feature.name] = column
    return build.conform(frame, FAMILIES)


def failure(frame: pd.DataFrame, **options: Any) -> str:
    """The ContractError message of checking `frame` (fails the test if it passes)."""
    options.setdefault("cutoff", CUTOFF)
    with pytest.raises(ContractError) as caught:
        schema.check_frame(frame, "snapshot-2026-06-01.parquet", **options)
    return str(caught.value)


def test_a_valid_snapshot_passes_and_is_left_as_it_was() -> None:
    frame = valid_snapshot()
    before = frame.copy()

    schema.check_frame(frame, "snapshot-2026-06-01.parquet", cutoff=CUTOFF)

    pd.testing.assert_frame_equal(frame, before, obj="the checked frame must not change")


def test_the_schema_has_every_catalog_column_and_the_catalogs_nulls() -> None:
    built = schema.snapshot_schema()

    assert list(built.columns) == ["member_id", "as_of", *feature_names()]
    nullable = {name for name, column in built.columns.items() if column.nullable}
    assert "monetary" not in nullable and "has_ordered" not in nullable, "no 'null' in the text"
    assert {"recency_days", "next_tier", "btyd_p_alive", "r_score"} <= nullable
    assert built.columns["member_id"].unique, "one row per member"


def test_value_rules_name_catalog_features_only() -> None:
    """A renamed feature must not silently lose its checks."""
    names = set(feature_names())
    stems = [*schema.NON_NEGATIVE, *schema.UNIT_INTERVAL, *schema.RFM_SCORES]
    stems += [*schema.UNBOUNDED_INTS, *schema.CHOICES, *schema.PATTERNS]
    unknown = [s for s in stems if not any(schema.matches(n, [s]) for n in names)]
    assert not unknown, f"value rules for features the catalog lacks: {unknown}"


def test_a_missing_column_is_named() -> None:
    message = failure(valid_snapshot().drop(columns="recency_days"))

    assert "column 'recency_days' is missing" in message
    assert "snapshot-2026-06-01.parquet" in message
    assert "memberscore features build --as-of 2026-06-01" in message, "what to do next"


def test_a_wrong_dtype_is_named_with_the_dtype_found() -> None:
    frame = valid_snapshot()
    frame["recency_days"] = frame["recency_days"].astype("string")

    message = failure(frame)

    assert "column 'recency_days' must hold real numbers, got dtype string" in message


@pytest.mark.parametrize(
    ("column", "dtype", "value"),
    [("frequency", "Int64", 2), ("frequency", "float64", 2.0), ("recency_days", "int64", 3)],
)
def test_numbers_of_the_right_kind_pass_in_other_dtypes(
    column: str, dtype: str, value: Any
) -> None:
    """Counts read back as whole floats and day counts written as integers fit the catalog."""
    frame = valid_snapshot()
    frame[column] = pd.Series([value] * len(frame), dtype=dtype)

    schema.check_frame(frame, "snapshot", cutoff=CUTOFF)


def test_a_count_with_a_fraction_is_refused() -> None:
    frame = valid_snapshot()
    frame["frequency"] = frame["frequency"].astype("float64")
    frame.loc[1, "frequency"] = 2.5

    assert "column 'frequency' fails check 'whole numbers'" in failure(frame)


def test_a_duplicate_member_id_is_named() -> None:
    frame = valid_snapshot()
    frame.loc[1, "member_id"] = "m1"

    message = failure(frame)

    assert "column 'member_id' is not unique" in message and "'m1'" in message


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("btyd_p_alive", 1.5, "in [0, 1]"),
        ("online_share", -0.1, "in [0, 1]"),
        ("frequency_30d", -1, ">= 0"),
        ("recency_days", -2.0, ">= 0"),
        ("r_score", 6, "in [1, 5]"),
        ("gender", "robot", "one of female, male, other, unknown"),
        ("rfm_cell", "5x5", "matches [1-5]{3}"),
    ],
)
def test_an_out_of_range_value_names_column_check_and_member(
    column: str, value: Any, check: str
) -> None:
    frame = valid_snapshot()
    frame.loc[1, column] = value

    message = failure(frame)

    assert f"column {column!r} fails check {check!r} on 1 row(s), e.g. member_id 'm2'" in message


@pytest.mark.parametrize("column", ["monetary", "growth_value", "days_overdue", "activity_trend"])
def test_values_that_can_be_negative_are_not_bounded(column: str) -> None:
    """Refunds make net spend negative; days overdue and trends are signed by definition."""
    frame = valid_snapshot()
    frame.loc[0, column] = -12.5

    schema.check_frame(frame, "snapshot", cutoff=CUTOFF)


def test_nulls_only_where_the_catalog_allows_them_unless_any_are_allowed() -> None:
    frame = valid_snapshot()
    frame.loc[0, "has_ordered"] = pd.NA

    assert "column 'has_ordered' is null on 1 row(s), e.g. member_id 'm1'" in failure(frame)
    schema.check_frame(frame, "snapshot", cutoff=CUTOFF, nulls="any")
    frame.loc[0, "member_id"] = pd.NA
    assert "column 'member_id' is null" in failure(frame, nulls="any"), "keys are never null"


def test_as_of_must_be_the_files_cutoff_in_utc() -> None:
    other = valid_snapshot(pd.Timestamp("2026-05-25", tz="UTC"))
    assert "column 'as_of' fails check 'equals the cutoff 2026-06-01'" in failure(other)

    naive = valid_snapshot()
    naive["as_of"] = naive["as_of"].dt.tz_localize(None)
    assert "column 'as_of' must hold UTC timestamps" in failure(naive)


def test_a_reader_of_some_columns_needs_only_those() -> None:
    frame = valid_snapshot()[["member_id", "recency_days", "frequency"]]

    schema.check_frame(frame, "snapshot", required=["member_id", "recency_days", "frequency"])
    message = failure(frame, required=["member_id", "frequency", "last_gap_days"])
    assert "column 'last_gap_days' is missing" in message and "recency" not in message
    with pytest.raises(ValueError, match="not snapshot column"):
        schema.snapshot_schema(["member_id", "churn"])


def test_columns_present_beyond_the_required_ones_are_still_checked() -> None:
    frame = valid_snapshot()[["member_id", "as_of", "email_open_rate_90d"]]
    frame.loc[2, "email_open_rate_90d"] = 1.2

    message = failure(frame, required=["member_id", "as_of"])

    assert "column 'email_open_rate_90d' fails check 'in [0, 1]'" in message
    assert "e.g. member_id 'm3'" in message
