"""The member data contract: the four canonical tables and a row-level validator.

Declarations only plus one pure function, `validate`, that turns a raw chunk (strings, or typed
columns from Parquet) into canonical typed rows and rejected rows carrying the reason
(field + rule). Timestamps are timezone-aware UTC, stored as `datetime64[us, UTC]`.
docs/data-contract.md explains every field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd

from memberscore.errors import ContractError

Kind = Literal["id", "text", "category", "timestamp", "number", "integer", "boolean"]

TIMESTAMP_DTYPE: Final = "datetime64[us, UTC]"
# The pandas dtype of each column kind (see `_dtype`).
ColumnDtype = Literal["string", "datetime64[us, UTC]", "float64", "Int64", "boolean"]
REASON = "_reason"
ROW = "_row"

ORDER_CHANNELS = ("online", "store", "app", "marketplace", "phone")
CONTACT_CHANNELS = ("email", "sms", "push", "app", "call", "mail")
EVENT_TYPES = (
    "login",
    "page_view",
    "product_view",
    "add_to_cart",
    "search",
    "email_open",
    "email_click",
    "sms_click",
    "coupon_claim",
    "points_earned",
    "points_redeemed",
    "review",
    "referral",
    "service_contact",
    "tier_change",
)
GENDERS = ("female", "male", "other", "unknown")
GROUPS = ("treatment", "control")


@dataclass(frozen=True)
class Column:
    """One field of a canonical table."""

    name: str
    kind: Kind
    required: bool = True
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Table:
    """A canonical table: its primary key, the timestamp it is partitioned by, its columns."""

    name: str
    key: str
    time_column: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        """Column names in contract order."""
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        """Names of the columns every input must carry."""
        return [c.name for c in self.columns if c.required]


MEMBERS = Table(
    "members",
    key="member_id",
    time_column="registered_at",
    columns=(
        Column("member_id", "id"),
        Column("registered_at", "timestamp"),
        Column("acquisition_channel", "text"),
        Column("region", "text"),
        Column("gender", "category", required=False, choices=GENDERS),
        Column("birth_year", "integer", required=False, minimum=1900, maximum=2020),
        Column("tier", "text"),
        Column("consent_marketing", "boolean"),
        Column("consent_personalization", "boolean"),
        Column("is_derived", "boolean", required=False),
    ),
)

ORDERS = Table(
    "orders",
    key="order_id",
    time_column="ordered_at",
    columns=(
        Column("order_id", "id"),
        Column("member_id", "id"),
        Column("ordered_at", "timestamp"),
        Column("amount", "number", minimum=0),
        Column("discount", "number", minimum=0),
        Column("items", "integer", minimum=0),
        Column("channel", "category", choices=ORDER_CHANNELS),
        Column("coupon_id", "id", required=False),
        Column("is_return", "boolean"),
    ),
)

EVENTS = Table(
    "events",
    key="event_id",
    time_column="occurred_at",
    columns=(
        Column("event_id", "id"),
        Column("member_id", "id"),
        Column("occurred_at", "timestamp"),
        Column("event_type", "category", choices=EVENT_TYPES),
        Column("value", "number", required=False),
    ),
)

CONTACTS = Table(
    "contacts",
    key="contact_id",
    time_column="sent_at",
    columns=(
        Column("contact_id", "id"),
        Column("member_id", "id"),
        Column("sent_at", "timestamp"),
        Column("action_id", "id"),
        Column("channel", "category", choices=CONTACT_CHANNELS),
        Column("group", "category", choices=GROUPS),
        Column("responded_at", "timestamp", required=False),
        Column("response_value", "number", required=False, minimum=0),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (MEMBERS, ORDERS, EVENTS, CONTACTS)}

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_OFFSET = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


@dataclass(frozen=True)
class Validated:
    """The outcome of validating one chunk: canonical rows and rejected rows with reasons."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame


def table(name: str) -> Table:
    """The canonical table called `name`, or a ContractError listing the valid names."""
    try:
        return TABLES[name]
    except KeyError:
        raise ContractError(
            f"unknown table {name!r}; expected one of {', '.join(TABLES)}"
        ) from None


def check_columns(columns: list[str], spec: Table, *, ignore_unknown: bool = False) -> None:
    """Raise a ContractError for missing required columns or (unless ignored) unknown ones."""
    missing = [c for c in spec.required if c not in columns]
    if missing:
        raise ContractError(
            f"{spec.name}: missing required column(s) {', '.join(missing)}; "
            f"the file has {', '.join(map(str, columns)) or 'no columns'}"
        )
    unknown = [c for c in columns if c not in spec.names]
    if unknown and not ignore_unknown:
        raise ContractError(
            f"{spec.name}: column(s) not in the contract: {', '.join(map(str, unknown))}; "
            "rename them to contract names or pass --ignore-unknown-columns to drop them "
            "(see docs/data-contract.md)"
        )


def validate(
    raw: pd.DataFrame,
    spec: Table,
    *,
    first_row: int = 1,
    assume_timezone: str | None = None,
    ignore_unknown: bool = False,
) -> Validated:
    """Parse and check every row of `raw` against `spec`.

    `first_row` is the 1-based source row number of `raw`'s first row, kept in `_row` of rejected
    rows so users can find them. Naive timestamps are rejected unless `assume_timezone` (an IANA
    name such as "Europe/Berlin") says how to read them. Rejected rows keep their raw values as
    text plus `_reason`, e.g. "amount: must be >= 0 (got '-5')"; several reasons join with "; ".
    """
    check_columns(list(raw.columns), spec, ignore_unknown=ignore_unknown)
    raw = raw.reset_index(drop=True)
    reasons = np.full(len(raw), "", dtype=object)
    parsed: dict[str, pd.Series] = {}
    for col in spec.columns:
        if col.name not in raw.columns:
            parsed[col.name] = _missing_column(col, len(raw))
            continue
        values, problem = _parse(raw[col.name], col, assume_timezone)
        reasons = _append(reasons, problem)
        parsed[col.name] = values
    accepted_mask = reasons == ""
    accepted = pd.DataFrame(parsed).loc[accepted_mask].reset_index(drop=True)
    for col in spec.columns:
        if col.kind == "boolean":  # optional flags default to False; required ones have no NA left
            accepted[col.name] = accepted[col.name].fillna(False).astype(bool)
    rejected = raw.loc[~accepted_mask].astype("string").copy()
    rejected.insert(0, ROW, np.flatnonzero(~accepted_mask) + first_row)
    rejected[REASON] = reasons[~accepted_mask]
    return Validated(accepted=accepted, rejected=rejected.reset_index(drop=True))


def empty(spec: Table) -> pd.DataFrame:
    """A zero-row frame with the canonical columns and dtypes of `spec`."""
    return validate(pd.DataFrame(columns=spec.names), spec).accepted


def _append(reasons: np.ndarray, problem: pd.Series) -> np.ndarray:
    bad = problem.notna().to_numpy()
    if bad.any():
        both = bad & (reasons != "")
        reasons = reasons.copy()
        reasons[both] = reasons[both] + "; "
        reasons[bad] = reasons[bad] + problem.to_numpy()[bad]
    return reasons


def _missing_column(col: Column, n: int) -> pd.Series:
    return pd.Series([None] * n, dtype=_dtype(col))


_KIND_DTYPES: dict[Kind, ColumnDtype] = {
    "id": "string",
    "text": "string",
    "category": "string",
    "timestamp": TIMESTAMP_DTYPE,
    "number": "float64",
    "integer": "Int64",
    "boolean": "boolean",
}


def _dtype(col: Column) -> ColumnDtype:
    return _KIND_DTYPES[col.kind]


def _problem(mask: np.ndarray | pd.Series, raw: pd.Series, message: str) -> pd.Series:
    """A Series holding "field: message (got 'value')" where `mask` is true, else NA."""
    mask = np.asarray(mask, dtype=bool)
    out = pd.Series(pd.NA, index=raw.index, dtype="object")
    if mask.any():
        got = raw[mask].astype("string").fillna("").str.slice(0, 60)
        out[mask] = f"{raw.name}: {message} (got '" + got + "')"
    return out


def _blank(raw: pd.Series) -> pd.Series:
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        return raw.isna() | (raw.astype("string").str.strip() == "")
    return raw.isna()


def _parse(raw: pd.Series, col: Column, assume_timezone: str | None) -> tuple[pd.Series, pd.Series]:
    blank = _blank(raw).to_numpy()
    parser = {
        "id": _parse_text,
        "text": _parse_text,
        "category": _parse_text,
        "timestamp": lambda r: _parse_timestamp(r, assume_timezone),
        "number": _parse_number,
        "integer": _parse_integer,
        "boolean": _parse_boolean,
    }[col.kind]
    values, bad = parser(raw)
    problems = [
        _problem(blank, raw, "is required") if col.required else None,
        _problem(~blank & bad, raw, _format_rule(col)),
    ]
    ok = ~blank & ~bad
    if col.choices is not None:
        outside = ok & ~values.isin(col.choices).fillna(False).to_numpy()
        problems.append(_problem(outside, raw, "must be one of " + ", ".join(col.choices)))
    if col.minimum is not None:
        problems.append(
            _problem(
                ok & (values < col.minimum).fillna(False).to_numpy(),
                raw,
                f"must be >= {col.minimum:g}",
            )
        )
    if col.maximum is not None:
        problems.append(
            _problem(
                ok & (values > col.maximum).fillna(False).to_numpy(),
                raw,
                f"must be <= {col.maximum:g}",
            )
        )
    combined = pd.Series(pd.NA, index=raw.index, dtype="object")
    for p in problems:
        if p is not None:
            combined = combined.where(combined.notna(), p)
    return values.astype(_dtype(col)), combined


def _format_rule(col: Column) -> str:
    return {
        "id": "must be text",
        "text": "must be text",
        "category": "must be text",
        "timestamp": "must be a timestamp with a timezone, e.g. 2024-05-01T10:00:00Z",
        "number": "must be a number",
        "integer": "must be a whole number",
        "boolean": "must be true or false",
    }[col.kind]


def _parse_text(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_float_dtype(raw.dtype):
        # ids read from Parquet as floats lose their meaning (1.0 vs "1"); refuse them
        return pd.Series(pd.NA, index=raw.index, dtype="string"), raw.notna().to_numpy()
    text = raw.astype("string").str.strip()
    return text.mask(text == ""), np.zeros(len(raw), dtype=bool)


def _parse_number(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("float64"), np.ones(len(raw), dtype=bool)
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = (values.isna() & raw.notna()).to_numpy() | ~np.isfinite(values.fillna(0).to_numpy())
    return values, bad


def _parse_integer(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    values, bad = _parse_number(raw)
    fractional = (values.notna() & (values.fillna(0) % 1 != 0)).to_numpy()
    bad = bad | fractional
    return values.where(~bad).round(), bad


def _parse_boolean(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("boolean"), np.zeros(len(raw), dtype=bool)
    text = raw.astype("string").str.strip().str.lower()
    values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    values[text.isin(_TRUE).fillna(False)] = True
    values[text.isin(_FALSE).fillna(False)] = False
    bad = (values.isna() & raw.notna()).to_numpy()
    return values, bad


def _parse_timestamp(raw: pd.Series, assume_timezone: str | None) -> tuple[pd.Series, np.ndarray]:
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC"), np.zeros(len(raw), dtype=bool)
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        if assume_timezone is None:
            return pd.Series(pd.NaT, index=raw.index, dtype=TIMESTAMP_DTYPE), raw.notna().to_numpy()
        return raw.dt.tz_localize(assume_timezone).dt.tz_convert("UTC"), np.zeros(len(raw), bool)
    text = raw.astype("string").str.strip()
    has_offset = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy()
    values = pd.Series(pd.NaT, index=raw.index, dtype=TIMESTAMP_DTYPE)
    if has_offset.any():
        values[has_offset] = pd.to_datetime(
            text[has_offset], utc=True, errors="coerce", format="ISO8601"
        ).astype(TIMESTAMP_DTYPE)
    naive = ~has_offset & text.notna().to_numpy()
    if naive.any() and assume_timezone is not None:
        local = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        values[naive] = (
            local.dt.tz_localize(assume_timezone, ambiguous="NaT", nonexistent="NaT")
            .dt.tz_convert("UTC")
            .astype(TIMESTAMP_DTYPE)
        )
    bad = (values.isna() & raw.notna()).to_numpy()
    return values, bad
