"""The schema of a feature snapshot, generated from `features.catalog`, and its check.

Pure: frames in, `ContractError` out; `features.reader` reads the files. pandera is imported
inside the functions because it adds about a second to an import.

What a snapshot must hold (one row per member as of the cutoff `as_of`, 00:00 UTC):
- `member_id`: text, present and unique; `as_of`: UTC timestamps, equal to the file's cutoff.
- Every catalog column (or, when a reader asks for some columns, those), with values of the
  catalog dtype's kind: `float` real numbers (integers too: they are exact), `int` integers or
  whole floats (Spark and Arrow hand nullable integers back as floats), `bool` booleans,
  `string` text. The exact pandas dtype is not required: `features.build.conform` writes it,
  and readers that round-trip through other engines may not keep it.
- Nulls only where the catalog's description says when the value is null ("null if none"),
  unless a job handles missing values itself (`nulls="any"`).
- Values the definitions bound (`value_checks`): counts and day counts since a past instant
  >= 0, shares and probabilities in [0, 1], RFM scores 1-5, known genders. Net spend, growth
  value, points earned or balance, days overdue, days to first order, tenure and activity trend
  are not bounded: refunds, adjustments and data order can make them negative. Nor are the
  BTYD outputs other than its probabilities: on a fit over a few buyers the expected purchases
  can come out negative (the tiny lake of tests/features/test_build.py gives -19.4).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types

from features.catalog import FAMILIES, Dtype, Feature
from features.store import AS_OF, JOIN_KEY
from memberscore.contract import GENDERS
from memberscore.errors import ContractError

if TYPE_CHECKING:
    import pandera.pandas as pa

Nulls = Literal["catalog", "any"]
KEYS = (JOIN_KEY, AS_OF)
SHOWN_PROBLEMS = 6

# Feature names (a stem also matches its windows, e.g. avg_order_value_30d) whose values the
# catalog's definitions bound.
NON_NEGATIVE = (
    "recency_days", "avg_order_value", "days_since_first_order", "first_order_amount",
    "mean_gap_days", "std_gap_days", "return_rate", "points_redeemed", "days_since_last_login",
    "days_since_last_activity", "distance_to_next_tier", "days_since_registration",
    "last_gap_days", "max_gap_days",
)  # fmt: skip
UNIT_INTERVAL = (
    "discount_share", "online_share", "store_share", "app_share", "cart_abandon_rate_30d",
    "email_open_rate_90d", "email_click_rate_90d", "sms_click_rate_90d",
    "contact_response_rate_90d", "btyd_p_alive", "btyd_p_no_purchase_90d",
)  # fmt: skip
RFM_SCORES = ("r_score", "f_score", "m_score")
UNBOUNDED_INTS = ("age_years",)  # birth years are not checked against the cutoff year
CHOICES: dict[str, tuple[str, ...]] = {"gender": GENDERS}
PATTERNS: dict[str, str] = {"rfm_cell": "[1-5]{3}"}

# pandera's names of its own checks, as the message words them.
NAMED_FAILURES = {"not_nullable": "is null", "field_uniqueness": "is not unique"}
KIND_TEXT: dict[Dtype, str] = {
    "float": "real numbers",
    "int": "integers",
    "bool": "booleans",
    "string": "text",
}


def matches(name: str, stems: Iterable[str]) -> bool:
    """`name` is one of `stems` or a window of one (`<stem>_<days>d`)."""
    return any(name == stem or re.fullmatch(rf"{stem}_\d+d", name) for stem in stems)


def nullable(feature: Feature) -> bool:
    """The catalog allows missing values: its description says when the value is null."""
    return "null" in feature.description.lower()


def snapshot_schema(
    required: Sequence[str] | None = None,
    *,
    cutoff: pd.Timestamp | None = None,
    nulls: Nulls = "catalog",
    families: Mapping[str, Sequence[Feature]] = FAMILIES,
) -> pa.DataFrameSchema:
    """The pandera schema of a snapshot of `families` (default: the catalog).

    `required` lists the columns that must be present (default: the keys and every feature);
    the other catalog columns are checked when present. `cutoff` (UTC) is what every `as_of`
    must equal; `nulls="any"` lets every feature be null (member_id and as_of never are).
    """
    import pandera.pandas as pa

    features = [f for family in families.values() for f in family]
    known = {*KEYS, *(f.name for f in features)}
    unknown = [c for c in required or () if c not in known]
    if unknown:
        raise ValueError(f"not snapshot column(s): {', '.join(unknown)}")
    wanted = set(known if required is None else required)
    member = [_kind_check("string")]
    columns = {
        JOIN_KEY: pa.Column(None, unique=True, required=JOIN_KEY in wanted, checks=member),
        AS_OF: pa.Column(None, required=AS_OF in wanted, checks=_as_of_checks(cutoff)),
    }
    for f in features:
        columns[f.name] = pa.Column(
            None,
            nullable=nulls == "any" or nullable(f),
            required=f.name in wanted,
            checks=[_kind_check(f.dtype), *value_checks(f)],
        )
    return pa.DataFrameSchema(columns, strict=False, name="feature snapshot")


def value_checks(feature: Feature) -> list[pa.Check]:
    """The checks of `feature`'s values beyond its dtype (empty when nothing bounds them)."""
    name = feature.name
    bounded: tuple[int, int | None] | None = None
    if name in RFM_SCORES:
        bounded = (1, 5)
    elif matches(name, UNIT_INTERVAL):
        bounded = (0, 1)
    elif matches(name, NON_NEGATIVE) or (feature.dtype == "int" and name not in UNBOUNDED_INTS):
        bounded = (0, None)
    checks = [] if bounded is None else [_range_check(*bounded)]
    if feature.dtype == "int":
        checks.append(_check(_whole, "whole numbers"))
    if name in CHOICES:
        choices = CHOICES[name]
        checks.append(_check(lambda s: _text(s).isin(choices), f"one of {', '.join(choices)}"))
    if name in PATTERNS:
        pattern = PATTERNS[name]
        checks.append(_check(lambda s: _text(s).str.fullmatch(pattern), f"matches {pattern}"))
    return checks


def check_frame(
    frame: pd.DataFrame,
    source: str,
    *,
    required: Sequence[str] | None = None,
    cutoff: pd.Timestamp | None = None,
    nulls: Nulls = "catalog",
    families: Mapping[str, Sequence[Feature]] = FAMILIES,
) -> None:
    """Raise ContractError if `frame` (rows of the snapshot `source`, a file name) does not fit
    `snapshot_schema(required, cutoff=cutoff, nulls=nulls, families=families)`. The message
    names each failing column and check, a failing row's member_id, and the rebuild command."""
    from pandera.errors import SchemaErrors

    schema = snapshot_schema(required, cutoff=cutoff, nulls=nulls, families=families)
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        raise ContractError(describe(errors.failure_cases, frame, source, cutoff)) from None


def describe(
    failures: pd.DataFrame, frame: pd.DataFrame, source: str, cutoff: pd.Timestamp | None
) -> str:
    """The ContractError message of pandera's `failure_cases` on `frame`."""
    groups = failures.groupby(["column", "check"], dropna=False, sort=False)
    problems = [_problem(str(col), str(check), rows, frame) for (col, check), rows in groups]
    if len(problems) > SHOWN_PROBLEMS:
        problems = [*problems[:SHOWN_PROBLEMS], f"{len(problems) - SHOWN_PROBLEMS} more"]
    when = "" if cutoff is None else f" --as-of {cutoff:%Y-%m-%d}"
    return (
        f"feature snapshot {source} fails its schema: {'; '.join(problems)}. Rebuild it with "
        f"`memberscore features build{when}` (see docs/features.md)"
    )


def _problem(column: str, check: str, group: pd.DataFrame, frame: pd.DataFrame) -> str:
    """One failing (column, check) as text, with the first failing row's member_id."""
    if check == "column_in_dataframe":
        return f"column {group['failure_case'].iloc[0]!r} is missing"
    if check.startswith("dtype "):
        kind = check.removeprefix("dtype ")
        return f"column {column!r} must hold {kind}, got dtype {frame[column].dtype}"
    what = NAMED_FAILURES.get(check, f"fails check {check!r}")
    rows = group["index"].dropna()
    if rows.empty:
        return f"column {column!r} {what}"
    row, value = rows.iloc[0], group.loc[rows.index[0], "failure_case"]
    member = frame[JOIN_KEY].loc[row] if JOIN_KEY in frame.columns else None
    where = f"row {row}" if pd.isna(member) else f"member_id {member!r}"
    shown = "" if check in NAMED_FAILURES else f" (value {value})"
    return f"column {column!r} {what} on {len(rows):,} row(s), e.g. {where}{shown}"


def _check(test: Callable[[pd.Series], Any], name: str) -> pa.Check:
    """A vectorised check of the non-null values of a column, skipped (passed) when the column
    does not have the dtype kind the test needs: the dtype check reports that."""
    import pandera.pandas as pa

    def run(values: pd.Series) -> pd.Series | bool:
        present = values.dropna()
        try:
            ok = pd.Series(test(present), index=present.index).fillna(False).astype(bool)
        except TypeError:
            return True
        return ok.reindex(values.index, fill_value=True)

    return pa.Check(run, name=name)


def _kind_check(kind: Dtype) -> pa.Check:
    import pandera.pandas as pa

    return pa.Check(lambda values: has_kind(values, kind), name=f"dtype {KIND_TEXT[kind]}")


def has_kind(values: pd.Series, kind: Dtype) -> bool:
    """The values are of the catalog dtype `kind` (see the module docstring)."""
    dtype = values.dtype
    if kind in ("float", "int") and types.is_numeric_dtype(dtype):
        if types.is_bool_dtype(dtype):
            return False
        return kind == "float" or types.is_integer_dtype(dtype) or types.is_float_dtype(dtype)
    if kind == "bool" and types.is_bool_dtype(dtype):
        return True
    if kind == "string" and isinstance(dtype, pd.StringDtype):
        return True
    if not types.is_object_dtype(dtype):
        return False
    # Python objects: every value must be of the kind (an all-null column contradicts none).
    present = values.dropna()
    if kind in ("float", "int"):
        return present.empty
    wanted: tuple[type, ...] = (bool, np.bool_) if kind == "bool" else (str,)
    return all(isinstance(v, wanted) for v in present)


def _range_check(low: float, high: float | None) -> pa.Check:
    name = f">= {low}" if high is None else f"in [{low}, {high}]"
    if high is None:
        return _check(lambda s: _numbers(s) >= low, name)
    return _check(lambda s: (_numbers(s) >= low) & (_numbers(s) <= high), name)


def _whole(values: pd.Series) -> np.ndarray:
    x = _numbers(values)
    return np.isfinite(x) & (x == np.floor(x))


def _numbers(values: pd.Series) -> np.ndarray:
    if not types.is_numeric_dtype(values.dtype) or types.is_bool_dtype(values.dtype):
        raise TypeError("not numbers")
    return values.to_numpy(dtype="float64")


def _text(values: pd.Series) -> pd.Series:
    if not has_kind(values, "string"):
        raise TypeError("not text")
    return values.astype("string")


def _as_of_checks(cutoff: pd.Timestamp | None) -> list[pa.Check]:
    import pandera.pandas as pa

    def utc(values: pd.Series) -> bool:
        dtype = values.dtype
        return isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC"

    def same(values: pd.Series) -> pd.Series:
        if not utc(values):
            raise TypeError("not UTC timestamps")
        return values == cutoff

    checks = [pa.Check(utc, name="dtype UTC timestamps")]
    if cutoff is not None:
        checks.append(_check(same, f"equals the cutoff {cutoff:%Y-%m-%d}"))
    return checks
