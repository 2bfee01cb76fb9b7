"""The member data contract: the four canonical tables and a row-level validator.

Declarations only plus one pure function, `validate`, that turns a raw chunk (strings, or typed
columns from Parquet) into canonical typed rows and rejected rows carrying the reason
(field + rule). Timestamps are timezone-aware UTC, stored as `datetime64[us, UTC]`; text may not
hold control characters; a `DateWindow` bounds plausible timestamps. docs/data-contract.md
explains every field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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


# The largest amount (currency) or event value one row may carry: a plausibility bound far above
# any real order, which also keeps every member's sums within the exact DECIMAL arithmetic the
# features use (`features.families.rfm.MONEY`).
MAX_AMOUNT = 1e15

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
        Column("amount", "number", minimum=0, maximum=MAX_AMOUNT),
        Column("discount", "number", minimum=0, maximum=MAX_AMOUNT),
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
        Column("value", "number", required=False, minimum=-MAX_AMOUNT, maximum=MAX_AMOUNT),
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

# Consent changes a CRM exports (member updates): the latest change at or before a cutoff sets the
# profile's consent flags; ingest also copies each member's latest change into the consent
# register the decisions read (`serving.online.consent`). Not one of TABLES: snapshots read it
# only for the consent flags. `change_id` may be left out: ingest derives it from member_id and
# changed_at (`with_change_ids`), so the same change ingested twice is stored once.
CONSENTS = Table(
    "consents",
    key="change_id",
    time_column="changed_at",
    columns=(
        Column("change_id", "id", required=False),
        Column("member_id", "id"),
        Column("changed_at", "timestamp"),
        Column("consent_marketing", "boolean"),
        Column("consent_personalization", "boolean"),
        *(Column(f"opted_out_{c}", "boolean", required=False) for c in CONTACT_CHANNELS),
    ),
)
UPDATES: dict[str, Table] = {CONSENTS.name: CONSENTS}

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
# ISO 8601 shapes: a date, an optional time, then (for zoned values) Z or an offset. A date alone
# never carries a zone: "2024-05-01" ends in "-01", which is not an offset.
_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?"
_ZONED = rf"^{_DATE}[T ]{_TIME}\s*(?:Z|[+-]\d{{2}}(?::?\d{{2}})?)$"
_NAIVE = rf"^{_DATE}(?:[T ]{_TIME})?$"
# C0 controls (NUL, tab, newline, ...), DEL and C1 controls: never part of an id or a label.
_CONTROL = r"[\x00-\x1f\x7f-\x9f]"
_CONTROL_RE = re.compile(_CONTROL)


@dataclass(frozen=True)
class DateWindow:
    """The plausible range of every timestamp (inclusive), both ends timezone-aware UTC.

    Built by the caller from settings (`earliest_date`, now + `future_tolerance_days`), so that
    `validate` stays pure.
    """

    earliest: pd.Timestamp
    latest: pd.Timestamp

    def describe(self) -> str:
        """The window for reasons, e.g. "1970-01-01 to 2026-12-04 11:50 UTC"."""
        return f"{self.earliest:%Y-%m-%d} to {self.latest:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class Validated:
    """The outcome of validating one chunk: canonical rows and rejected rows with reasons."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame


def table(name: str) -> Table:
    """The canonical table called `name`, or a ContractError listing the valid names."""
    try:
        return (TABLES | UPDATES)[name]
    except KeyError:
        raise ContractError(
            f"unknown table {name!r}; expected one of {', '.join(TABLES | UPDATES)}"
        ) from None


def with_change_ids(spec: Table, accepted: pd.DataFrame) -> pd.DataFrame:
    """`accepted` rows of CONSENTS with `change_id` filled where the input left it out:
    "<member_id>@<changed_at, ISO UTC>"; rows of other tables unchanged."""
    if spec.name != CONSENTS.name or accepted.empty:
        return accepted
    derived = (
        accepted["member_id"].astype("string")
        + "@"
        + accepted["changed_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").astype("string")
    )
    return accepted.assign(change_id=accepted["change_id"].fillna(derived))


def check_columns(columns: list[str], spec: Table, *, ignore_unknown: bool = False) -> None:
    """Raise a ContractError for repeated, missing required or (unless ignored) unknown columns."""
    repeated = sorted({str(c) for c in columns if columns.count(c) > 1})
    if repeated:
        raise ContractError(
            f"{spec.name}: column(s) {', '.join(repeated)} appear more than once in the header; "
            "give every column one name"
        )
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
    rows: np.ndarray | None = None,
    assume_timezone: str | None = None,
    ignore_unknown: bool = False,
    window: DateWindow | None = None,
) -> Validated:
    """Parse and check every row of `raw` against `spec`.

    `first_row` is the 1-based source row number of `raw`'s first row, kept in `_row` of rejected
    rows so users can find them; `rows`, when given, are the source row numbers of all rows
    instead (a reader that set malformed lines aside knows them). Naive timestamps are rejected
    unless `assume_timezone` (an IANA name such as "Europe/Berlin") says how to read them;
    timestamps outside `window` are rejected as implausible (no bound when None). Rejected rows
    keep their raw values as text plus `_reason`, e.g. "amount: must be >= 0 (got '-5')";
    several reasons join with "; ".
    """
    check_columns(list(raw.columns), spec, ignore_unknown=ignore_unknown)
    raw = raw.reset_index(drop=True)
    reasons = np.full(len(raw), "", dtype=object)
    parsed: dict[str, pd.Series] = {}
    for col in spec.columns:
        if col.name not in raw.columns:
            parsed[col.name] = _missing_column(col, len(raw))
            continue
        values, problem = _parse(raw[col.name], col, assume_timezone, window)
        reasons = _append(reasons, problem)
        parsed[col.name] = values
    accepted_mask = reasons == ""
    accepted = pd.DataFrame(parsed).loc[accepted_mask].reset_index(drop=True)
    for col in spec.columns:
        if col.kind == "boolean":  # optional flags default to False; required ones have no NA left
            accepted[col.name] = accepted[col.name].fillna(False).astype(bool)
    numbers = np.arange(first_row, first_row + len(raw)) if rows is None else np.asarray(rows)
    rejected = raw.loc[~accepted_mask].astype("string").copy()
    rejected.insert(0, ROW, numbers[~accepted_mask])
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
# (mask of bad cells, rule they break) pairs a parser returns
Rules = list[tuple[np.ndarray, str]]


def _dtype(col: Column) -> ColumnDtype:
    return _KIND_DTYPES[col.kind]


def _problem(mask: np.ndarray | pd.Series, raw: pd.Series, message: str) -> pd.Series:
    """A Series holding "field: message (got 'value')" where `mask` is true, else NA."""
    mask = np.asarray(mask, dtype=bool)
    out = pd.Series(pd.NA, index=raw.index, dtype="object")
    if mask.any():
        out[mask] = f"{raw.name}: {message} (got '" + _shown(raw[mask]) + "')"
    return out


def _shown(raw: pd.Series) -> pd.Series:
    """Values as printable text for a reason: at most 60 characters, control characters as \\xNN."""
    text = raw.astype("string").fillna("").str.slice(0, 60)
    return text.str.replace(_CONTROL, lambda m: f"\\x{ord(m.group()):02x}", regex=True)


def _is_text(raw: pd.Series) -> bool:
    return raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype)


@dataclass(frozen=True)
class _Cells:
    """One raw column and, for text columns, its cells trimmed of surrounding whitespace (a
    pandas view for parsing, an Arrow view for fast RE2 matching); both None otherwise."""

    raw: pd.Series
    text: pd.Series | None
    arrow: pa.Array | None

    @classmethod
    def of(cls, raw: pd.Series) -> _Cells:
        if not _is_text(raw):
            return cls(raw, None, None)
        try:
            array = pa.array(raw, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # objects that are not str (PostgreSQL)
            array = pa.array(raw.astype("string"), type=pa.string(), from_pandas=True)
        trimmed = pc.utf8_trim_whitespace(array)
        text = trimmed.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
        return cls(raw, text.set_axis(raw.index), trimmed)

    def blank(self) -> np.ndarray:
        """True for missing cells and text cells holding only whitespace."""
        if self.arrow is None:
            return self.raw.isna().to_numpy()
        return _bools(pc.or_kleene(pc.is_null(self.arrow), pc.equal(self.arrow, "")))

    def matches(self, pattern: str) -> np.ndarray:
        """True where the trimmed text contains `pattern` (False for non-text columns)."""
        if self.arrow is None:
            return np.zeros(len(self.raw), dtype=bool)
        return _bools(pc.match_substring_regex(self.arrow, pattern))


def _bools(array: pa.Array) -> np.ndarray:
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _control_problem(mask: np.ndarray, raw: pd.Series) -> pd.Series:
    """The reason "field: contains control character U+0000; ..." where `mask` is true."""
    out = pd.Series(pd.NA, index=raw.index, dtype="object")
    for i in np.flatnonzero(mask).tolist():
        value = str(raw.iloc[i])
        found = _CONTROL_RE.search(value.strip())
        code = ord(found.group()) if found else 0
        shown = _shown(pd.Series([value])).iloc[0]
        out.iloc[i] = (
            f"{raw.name}: contains control character U+{code:04X}; remove it (got '{shown}')"
        )
    return out


def _parse(
    raw: pd.Series, col: Column, assume_timezone: str | None, window: DateWindow | None
) -> tuple[pd.Series, pd.Series]:
    cells = _Cells.of(raw)
    blank = cells.blank()
    control = cells.matches(_CONTROL)  # a NUL would cut or merge ids further down
    if col.kind == "timestamp":
        values, rules = _parse_timestamp(cells, assume_timezone)
    else:
        values, bad = _PARSERS[col.kind](cells)
        rules = [(bad, _format_rule(col))]
    problems = [
        _control_problem(control, raw),
        _problem(blank, raw, "is required") if col.required else None,
        *(_problem(~blank & mask, raw, message) for mask, message in rules),
    ]
    ok = ~blank & ~control
    for mask, _ in rules:
        ok &= ~mask
    if col.choices is not None:
        outside = ok & ~values.isin(col.choices).fillna(False).to_numpy()
        problems.append(_problem(outside, raw, "must be one of " + ", ".join(col.choices)))
    if col.minimum is not None:
        below = ok & (values < col.minimum).fillna(False).to_numpy()
        problems.append(_problem(below, raw, f"must be >= {col.minimum:g}"))
    if col.maximum is not None:
        above = ok & (values > col.maximum).fillna(False).to_numpy()
        problems.append(_problem(above, raw, f"must be <= {col.maximum:g}"))
    if window is not None and col.kind == "timestamp":
        outside = ok & ((values < window.earliest) | (values > window.latest)).to_numpy()
        problems.append(_problem(outside, raw, _implausible(window)))
    combined = pd.Series(pd.NA, index=raw.index, dtype="object")
    for p in problems:  # the first problem of a cell wins: a NUL is not also "not a number"
        if p is not None:
            combined = combined.where(combined.notna(), p)
    return values.astype(_dtype(col)), combined


def _implausible(window: DateWindow) -> str:
    return (
        f"implausible date, outside {window.describe()} "
        "(settings earliest_date and future_tolerance_days)"
    )


def _format_rule(col: Column) -> str:
    return {
        "id": "must be text",
        "text": "must be text",
        "category": "must be text",
        "number": "must be a number",
        "integer": "must be a whole number",
        "boolean": "must be true or false",
    }[col.kind]


def _parse_text(cells: _Cells) -> tuple[pd.Series, np.ndarray]:
    raw = cells.raw
    if pd.api.types.is_float_dtype(raw.dtype):
        # ids read from Parquet as floats lose their meaning (1.0 vs "1"); refuse them
        return pd.Series(pd.NA, index=raw.index, dtype="string"), raw.notna().to_numpy()
    text = cells.text if cells.text is not None else raw.astype("string").str.strip()
    return text.mask(text == ""), np.zeros(len(raw), dtype=bool)


def _parse_number(cells: _Cells) -> tuple[pd.Series, np.ndarray]:
    raw = cells.raw
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("float64"), np.ones(len(raw), dtype=bool)
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = (values.isna() & raw.notna()).to_numpy() | ~np.isfinite(values.fillna(0).to_numpy())
    return values, bad


def _parse_integer(cells: _Cells) -> tuple[pd.Series, np.ndarray]:
    values, bad = _parse_number(cells)
    fractional = (values.notna() & (values.fillna(0) % 1 != 0)).to_numpy()
    bad = bad | fractional
    return values.where(~bad).round(), bad


def _parse_boolean(cells: _Cells) -> tuple[pd.Series, np.ndarray]:
    raw = cells.raw
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("boolean"), np.zeros(len(raw), dtype=bool)
    text = cells.text if cells.text is not None else raw.astype("string").str.strip()
    text = text.str.lower()
    values = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    values[text.isin(_TRUE).fillna(False)] = True
    values[text.isin(_FALSE).fillna(False)] = False
    bad = (values.isna() & raw.notna()).to_numpy()
    return values, bad


_PARSERS = {
    "id": _parse_text,
    "text": _parse_text,
    "category": _parse_text,
    "number": _parse_number,
    "integer": _parse_integer,
    "boolean": _parse_boolean,
}
_NO_ZONE = (
    "must be a timestamp with a timezone (add an offset such as Z or +02:00, "
    "or pass --timezone to read it in a zone)"
)
_NOT_ISO = "must be a timestamp with a timezone, e.g. 2024-05-01T10:00:00Z"
_INVALID = "not a valid date/time"


def _parse_timestamp(cells: _Cells, assume_timezone: str | None) -> tuple[pd.Series, Rules]:
    """UTC values and the rules broken: no zone, not ISO 8601, a date that does not exist (Feb 30,
    or a year pandas cannot hold, outside 1677-2262), a local time skipped or repeated by DST."""
    raw = cells.raw
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC"), []
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        if assume_timezone is None:
            nat = pd.Series(pd.NaT, index=raw.index, dtype=TIMESTAMP_DTYPE)
            return nat, [(raw.notna().to_numpy(), _NO_ZONE)]
        local = raw.dt.tz_localize(assume_timezone, ambiguous="NaT", nonexistent="NaT")
        skipped = (local.isna() & raw.notna()).to_numpy()
        return local.dt.tz_convert("UTC"), [(skipped, _daylight_saving(assume_timezone))]
    if cells.text is None:  # neither text nor datetimes (numbers, say)
        cells = _Cells.of(raw.astype("string"))
    text = cells.text
    assert text is not None
    zoned, naive = cells.matches(_ZONED), cells.matches(_NAIVE)
    values = pd.Series(pd.NaT, index=raw.index, dtype=TIMESTAMP_DTYPE)
    if zoned.any():
        values[zoned] = pd.to_datetime(
            text[zoned], utc=True, errors="coerce", format="ISO8601"
        ).astype(TIMESTAMP_DTYPE)
    skipped = np.zeros(len(raw), dtype=bool)
    if naive.any() and assume_timezone is not None:
        local = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        localized = local.dt.tz_localize(assume_timezone, ambiguous="NaT", nonexistent="NaT")
        values[naive] = localized.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
        skipped[naive] = (local.notna() & localized.isna()).to_numpy()
    present = ~cells.blank()
    unparsed = present & values.isna().to_numpy()
    read_naive = naive if assume_timezone is not None else np.zeros(len(raw), dtype=bool)
    return values, [
        (present & ~zoned & ~naive, _NOT_ISO),
        (naive & (assume_timezone is None), _NO_ZONE),
        (unparsed & (zoned | read_naive) & ~skipped, _INVALID),
        (skipped, _daylight_saving(assume_timezone)),
    ]


def _daylight_saving(zone: str | None) -> str:
    return f"does not exist or occurs twice in {zone} (a daylight-saving change): give an offset"
