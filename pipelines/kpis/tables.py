"""The KPI tables, pure over a DuckDB connection holding the views `members` and `orders`
(canonical columns; `features.build.open_lake` makes them over the lake).

Point in time: only rows strictly before the cutoff count, and each month's figures only read
rows before that month's end, so adding later rows never changes an earlier month. Months are
calendar months in UTC; the last one ends at the cutoff and may be partial (`complete` false).
docs/kpis.md defines every figure; this module follows the project's definitions: statuses from
the lifecycle stage thresholds (`decisions.stages`), tiers from `tier_thresholds` (as
`features.families.profile.tier_of`), RFM segments from `features.families.segments`.

Days are 86 400 s; money is in the dataset currency. A purchase is an order row with
`is_return = false`; spend is net (purchases minus refunds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from features.families.segments import NO_PURCHASE, SEGMENT_CELLS

DAY = 86_400
DIMENSIONS = ("all", "acquisition_channel", "tier", "segment")
STATUSES = ("no_purchase", "active", "dormant", "churned")
_MEMBERS, _ORDERS = "_kpi_members", "_kpi_orders"


@dataclass(frozen=True)
class Definitions:
    """The windows and thresholds of the KPIs (days; tier values in currency)."""

    activation_days: tuple[int, ...] = (7, 30, 90)
    repurchase_days: int = 90
    dormant_days: int = 180
    churned_days: int = 365
    tier_thresholds: tuple[tuple[str, float], ...] = (
        ("basic", 0.0),
        ("silver", 500.0),
        ("gold", 2000.0),
        ("platinum", 5000.0),
    )

    def __post_init__(self) -> None:
        values = [value for _, value in self.tier_thresholds]
        if not values or np.any(np.diff(values) <= 0):
            raise ValueError(
                f"tier_thresholds must name tiers in strictly ascending order of value, got "
                f"{list(self.tier_thresholds)}"
            )
        if not 0 < self.dormant_days < self.churned_days:
            raise ValueError(
                f"dormant_days ({self.dormant_days}) must be positive and below churned_days "
                f"({self.churned_days})"
            )

    @property
    def tiers(self) -> tuple[str, ...]:
        """Tier names, lowest first."""
        return tuple(name for name, _ in self.tier_thresholds)


@dataclass(frozen=True)
class Month:
    """One reporting period: [start, end), `end` the next month's start or the cutoff."""

    label: str  # YYYY-MM
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def complete(self) -> bool:
        """True when the period is the whole calendar month."""
        return self.end == self.start + pd.offsets.MonthBegin(1)


def months(first: pd.Timestamp, cutoff: pd.Timestamp) -> list[Month]:
    """Calendar months (UTC) from the one holding `first` to the one holding the instant just
    before `cutoff`; the last ends at `cutoff`."""
    first, cutoff = _utc(first), _utc(cutoff)
    if first >= cutoff:
        return []
    start = first.normalize().replace(day=1)
    out = []
    while start < cutoff:
        following = start + pd.offsets.MonthBegin(1)
        out.append(Month(f"{start:%Y-%m}", start, min(following, cutoff)))
        start = following
    return out


def first_registration(con: duckdb.DuckDBPyConnection, cutoff: pd.Timestamp) -> pd.Timestamp | None:
    """The earliest `registered_at` before `cutoff`; None when no member registered before it."""
    row = con.execute(
        "SELECT min(registered_at) FROM members WHERE registered_at < $c", {"c": _utc(cutoff)}
    ).fetchone()
    return None if row is None or row[0] is None else _utc(pd.Timestamp(row[0]))


def monthly_kpis(
    con: duckdb.DuckDBPyConnection,
    cutoff: pd.Timestamp,
    definitions: Definitions,
    progress: Callable[[Month], None] = lambda _: None,
) -> pd.DataFrame:
    """One row per month and group (DIMENSIONS: all members, each acquisition channel, each
    tier and RFM segment the member held at the month's start) with the counts and rates of
    docs/kpis.md. `progress` is called after each month."""
    cutoff = _utc(cutoff)
    first = first_registration(con, cutoff)
    periods = [] if first is None else months(first, cutoff)
    _create_members(con, cutoff, definitions)
    frames = []
    try:
        for number, month in enumerate(periods):
            _create_state(con, "_kpi_end", month.end, definitions)
            if number == 0:
                con.execute("CREATE OR REPLACE TEMP TABLE _kpi_start AS FROM _kpi_end LIMIT 0")
            frames.append(_month_counts(con, month, definitions))
            con.execute("DROP TABLE _kpi_start; ALTER TABLE _kpi_end RENAME TO _kpi_start")
            progress(month)
    finally:
        con.execute("DROP TABLE IF EXISTS _kpi_start; DROP TABLE IF EXISTS _kpi_end")
        _drop_inputs(con)
    counts = pd.concat(frames, ignore_index=True) if frames else _empty_counts(definitions)
    return with_rates(counts, definitions)


# The inputs of every pass, read once: members with an integer key `k`, and their order rows
# before the cutoff keyed by `k` with times in epoch seconds (compact and in memory, so the
# monthly passes neither re-read Parquet nor hash member id strings).
_INPUTS_SQL = """
CREATE OR REPLACE TEMP TABLE {members}_ids AS
SELECT CAST(member_id AS VARCHAR) AS member_id, registered_at,
    CAST(acquisition_channel AS VARCHAR) AS acquisition_channel
FROM members WHERE registered_at < $c;
CREATE OR REPLACE TEMP TABLE {members}_keys AS
SELECT row_number() OVER (ORDER BY member_id) AS k, * FROM {members}_ids;
DROP TABLE {members}_ids;
CREATE OR REPLACE TEMP TABLE {orders} AS
SELECT b.k, epoch(o.ordered_at) AS t, o.is_return, o.amount,
    CASE WHEN o.is_return THEN -o.amount ELSE o.amount END AS net,
    year(o.ordered_at AT TIME ZONE 'UTC') * 12 + month(o.ordered_at AT TIME ZONE 'UTC') - 1
        AS month
FROM orders o JOIN {members}_keys b ON b.member_id = CAST(o.member_id AS VARCHAR)
WHERE o.ordered_at < $c;
CREATE OR REPLACE TEMP TABLE {members} AS
WITH firsts AS (
    SELECT k, min(t, 2) AS at FROM {orders} WHERE NOT is_return GROUP BY ALL
)
SELECT b.k, b.member_id, epoch(b.registered_at) AS registered_s,
    year(b.registered_at AT TIME ZONE 'UTC') * 12 + month(b.registered_at AT TIME ZONE 'UTC') - 1
        AS registered_month,
    b.acquisition_channel, f.at[1] AS first_s, f.at[2] AS second_s
FROM {members}_keys b LEFT JOIN firsts f USING (k);
DROP TABLE {members}_keys;
"""


def _create_members(
    con: duckdb.DuckDBPyConnection, cutoff: pd.Timestamp, definitions: Definitions
) -> None:
    """Members registered before `cutoff` with their first and second purchase (epoch s), and
    their order rows before `cutoff`."""
    _create_inputs(con, cutoff)
    duplicated = con.execute(
        f"SELECT member_id FROM {_MEMBERS} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    if duplicated:
        raise ValueError(
            f"members holds member_id {duplicated[0]!r} more than once; the member table must "
            "have one row per member (re-ingest it, or erase the duplicate)"
        )


def _create_inputs(con: duckdb.DuckDBPyConnection, cutoff: pd.Timestamp) -> None:
    """The statements of `_INPUTS_SQL` one by one (DuckDB binds parameters of one only)."""
    script = _INPUTS_SQL.format(members=_MEMBERS, orders=_ORDERS)
    for statement in filter(str.strip, script.split(";\n")):
        con.execute(statement, {"c": cutoff} if "$c" in statement else None)


def _drop_inputs(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP TABLE IF EXISTS {_MEMBERS}; DROP TABLE IF EXISTS {_ORDERS}")


_STATE_SQL = """
CREATE OR REPLACE TEMP TABLE {table} AS
WITH o AS (
    SELECT k, max(t) FILTER (NOT is_return) AS last_s,
        count(*) FILTER (NOT is_return) AS frequency,
        coalesce(sum(net) FILTER (t >= $gs), 0) AS growth
    FROM {orders} WHERE t < $cs GROUP BY ALL
), s AS (
    SELECT b.k, o.last_s, coalesce(o.frequency, 0) AS frequency,
        coalesce(o.growth, 0.0) AS growth
    FROM {members} b LEFT JOIN o USING (k) WHERE b.registered_s < $cs
), ranked AS (
    SELECT *, count(*) FILTER (frequency > 0) OVER () AS buyers,
        rank() OVER (PARTITION BY frequency > 0 ORDER BY last_s) - 1 AS r_below,
        rank() OVER (PARTITION BY frequency > 0 ORDER BY frequency) - 1 AS f_below
    FROM s
)
SELECT k,
    CASE WHEN frequency = 0 THEN 'no_purchase'
        WHEN $cs - last_s >= $churned THEN 'churned'
        WHEN $cs - last_s >= $dormant THEN 'dormant'
        ELSE 'active' END AS status,
    {tier} AS tier_rank,
    CASE WHEN frequency = 0 THEN '{no_purchase}'
        ELSE CASE 10 * (1 + 5 * r_below // buyers) + (1 + 5 * f_below // buyers) {cells} END
    END AS segment
FROM ranked
"""


def _tier_sql(definitions: Definitions) -> str:
    """The tier rank of `growth` as `tier_of` gives it: the highest tier whose value it reaches,
    the lowest tier below every value."""
    values = [value for _, value in definitions.tier_thresholds]
    arms = " ".join(f"WHEN growth >= {v!r} THEN {r}" for r, v in reversed(list(enumerate(values))))
    return f"CASE {arms} ELSE 0 END"


def _segment_sql() -> str:
    return " ".join(
        f"WHEN {int(cell)} THEN '{name}'" for name, cells in SEGMENT_CELLS.items() for cell in cells
    )


def _create_state(
    con: duckdb.DuckDBPyConnection, table: str, at: pd.Timestamp, definitions: Definitions
) -> None:
    """Status, tier rank and RFM segment of every member registered before `at`, as of `at`."""
    sql = _STATE_SQL.format(
        table=table,
        members=_MEMBERS,
        orders=_ORDERS,
        tier=_tier_sql(definitions),
        no_purchase=NO_PURCHASE,
        cells=_segment_sql(),
    )
    params = {
        "gs": (at - pd.Timedelta(days=365)).timestamp(),
        "cs": at.timestamp(),
        "dormant": definitions.dormant_days * DAY,
        "churned": definitions.churned_days * DAY,
    }
    con.execute(sql, params)


def state_at(
    con: duckdb.DuckDBPyConnection, at: pd.Timestamp, definitions: Definitions
) -> pd.DataFrame:
    """member_id, status, tier and segment of every member registered before `at`, as of `at`
    (the member-level view behind the monthly counts), sorted by member."""
    at = _utc(at)
    _create_members(con, at, definitions)
    try:
        _create_state(con, "_kpi_state", at, definitions)
        frame = con.execute(
            f"SELECT b.member_id, s.* EXCLUDE (k) FROM _kpi_state s JOIN {_MEMBERS} b USING (k) "
            "ORDER BY b.member_id"
        ).df()
    finally:
        con.execute("DROP TABLE IF EXISTS _kpi_state")
        _drop_inputs(con)
    frame["tier"] = np.asarray(definitions.tiers, dtype=object)[frame.pop("tier_rank")]
    return frame


def _window_counts(definitions: Definitions) -> str:
    """Activation and repurchase counts of the members whose window closes in the month."""
    parts = []
    for days in definitions.activation_days:
        close = f"registered_s + {days * DAY}"
        base = f"{close} >= $s0 AND {close} < $s1"
        parts += [
            f"count(*) FILTER ({base}) AS activation_base_{days}d",
            f"count(*) FILTER ({base} AND first_s < {close}) AS activated_{days}d",
        ]
    days = definitions.repurchase_days
    close = f"first_s + {days * DAY}"
    base = f"{close} >= $s0 AND {close} < $s1"
    parts += [
        f"count(*) FILTER ({base}) AS repurchase_base_{days}d",
        f"count(*) FILTER ({base} AND second_s < {close}) AS repurchased_{days}d",
    ]
    return ",\n    ".join(parts)


_MONTH_SQL = """
WITH mo AS (
    SELECT k, count(*) FILTER (NOT is_return) AS orders,
        coalesce(sum(amount) FILTER (NOT is_return), 0) AS purchase_amount,
        sum(net) AS spend
    FROM {orders} WHERE t >= $s0 AND t < $s1 GROUP BY ALL
), x AS (
    SELECT b.acquisition_channel, b.registered_s, b.first_s, b.second_s,
        coalesce(p.tier_rank, 0) AS tier, coalesce(p.segment, '{no_purchase}') AS segment,
        p.k IS NULL AS is_new, p.status AS start_status, e.status, e.tier_rank,
        coalesce(mo.orders, 0) AS orders, coalesce(mo.purchase_amount, 0) AS purchase_amount,
        coalesce(mo.spend, 0) AS spend
    FROM _kpi_end e JOIN {members} b USING (k)
    LEFT JOIN _kpi_start p USING (k) LEFT JOIN mo USING (k)
)
SELECT CASE WHEN grouping(acquisition_channel) = 0 THEN 'acquisition_channel'
        WHEN grouping(tier) = 0 THEN 'tier' WHEN grouping(segment) = 0 THEN 'segment'
        ELSE 'all' END AS dimension,
    acquisition_channel, tier, segment,
    count(*) AS members,
    count(*) FILTER (is_new) AS new_registrations,
    {statuses},
    {windows},
    count(*) FILTER (start_status IN ('active', 'dormant')) AS churn_base,
    count(*) FILTER (start_status IN ('active', 'dormant') AND status = 'churned')
        AS churned_in_month,
    count(*) FILTER (start_status IN ('dormant', 'churned')) AS win_back_base,
    count(*) FILTER (start_status IN ('dormant', 'churned') AND orders > 0) AS won_back,
    count(*) FILTER (tier_rank > tier) AS tier_upgrades,
    count(*) FILTER (tier_rank < tier) AS tier_downgrades,
    count(*) FILTER (orders > 0) AS buyers,
    sum(orders) AS orders,
    sum(purchase_amount) AS purchase_amount,
    sum(spend) AS spend
FROM x GROUP BY GROUPING SETS ((), (acquisition_channel), (tier), (segment))
"""


def _month_counts(
    con: duckdb.DuckDBPyConnection, month: Month, definitions: Definitions
) -> pd.DataFrame:
    """The counts and sums of `month` per group, from the states `_kpi_start` and `_kpi_end`."""
    statuses = ",\n    ".join(f"count(*) FILTER (status = '{s}') AS {s}" for s in STATUSES)
    sql = _MONTH_SQL.format(
        members=_MEMBERS,
        orders=_ORDERS,
        no_purchase=NO_PURCHASE,
        statuses=statuses,
        windows=_window_counts(definitions),
    )
    params = {
        "s0": month.start.timestamp(),
        "s1": month.end.timestamp(),
    }
    raw = con.execute(sql, params).df()
    return _label_groups(raw, month, definitions)


def _label_groups(raw: pd.DataFrame, month: Month, definitions: Definitions) -> pd.DataFrame:
    """month, period bounds, dimension and group columns in front of the counts, sorted."""
    tiers = np.asarray(definitions.tiers, dtype=object)
    group = np.select(
        [raw["dimension"] == "acquisition_channel", raw["dimension"] == "tier"],
        [raw["acquisition_channel"], tiers[raw["tier"].fillna(0).astype("int64")]],
        default=raw["segment"].where(raw["dimension"] == "segment", "all"),
    )
    out = raw.drop(columns=["acquisition_channel", "tier", "segment"])
    out.insert(1, "group", group.astype(object))
    out.insert(0, "month", month.label)
    out.insert(1, "period_start", month.start)
    out.insert(2, "period_end", month.end)
    out.insert(3, "complete", month.complete)
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    key = out["dimension"].map(order).astype("int64")
    return out.iloc[np.lexsort((out["group"].astype(str), key))].reset_index(drop=True)


def count_columns(definitions: Definitions) -> list[str]:
    """The integer count columns of `monthly_kpis`, in order."""
    windows = [
        name
        for days in definitions.activation_days
        for name in (f"activation_base_{days}d", f"activated_{days}d")
    ]
    days = definitions.repurchase_days
    return [
        "members",
        "new_registrations",
        *STATUSES,
        *windows,
        f"repurchase_base_{days}d",
        f"repurchased_{days}d",
        "churn_base",
        "churned_in_month",
        "win_back_base",
        "won_back",
        "tier_upgrades",
        "tier_downgrades",
        "buyers",
        "orders",
    ]


def _empty_counts(definitions: Definitions) -> pd.DataFrame:
    columns = ["month", "period_start", "period_end", "complete", "dimension", "group"]
    columns += [*count_columns(definitions), "purchase_amount", "spend"]
    return pd.DataFrame(columns=columns)


def with_rates(counts: pd.DataFrame, definitions: Definitions) -> pd.DataFrame:
    """`counts` with typed counts and the rates and averages of docs/kpis.md: each rate is its
    count over its base, null where the base is 0. Activation and repurchase are left null by
    tier and segment: before the first order every member holds the lowest tier and no segment,
    so those rows would only restate the channel figures."""
    out = counts.copy()
    ints = count_columns(definitions)
    out[ints] = out[ints].astype("int64")
    out[["purchase_amount", "spend"]] = out[["purchase_amount", "spend"]].astype("float64")
    by_entry = out["dimension"].isin(["tier", "segment"])
    for days in definitions.activation_days:
        rate = _ratio(out[f"activated_{days}d"], out[f"activation_base_{days}d"])
        out[f"activation_rate_{days}d"] = rate.mask(by_entry)
    days = definitions.repurchase_days
    rate = _ratio(out[f"repurchased_{days}d"], out[f"repurchase_base_{days}d"])
    out[f"repurchase_rate_{days}d"] = rate.mask(by_entry)
    out["churn_rate"] = _ratio(out["churned_in_month"], out["churn_base"])
    out["win_back_rate"] = _ratio(out["won_back"], out["win_back_base"])
    out["average_order_value"] = _ratio(out["purchase_amount"], out["orders"])
    out["orders_per_active_member"] = _ratio(out["orders"], out["active"])
    return out


def _ratio(part: pd.Series, whole: pd.Series) -> pd.Series:
    """part / whole as float, NaN where whole is 0."""
    whole = whole.astype("float64")
    return part.astype("float64") / whole.where(whole > 0)


_COHORT_SQL = """
WITH o AS (
    SELECT k, month, count(*) FILTER (NOT is_return) AS purchases, sum(net) AS spend
    FROM {orders} GROUP BY ALL
)
SELECT b.registered_month AS cohort, o.month, count(*) FILTER (o.purchases > 0) AS buyers,
    sum(o.spend) AS spend
FROM o JOIN {members} b USING (k)
WHERE o.month >= b.registered_month
GROUP BY ALL
"""


def cohort_kpis(con: duckdb.DuckDBPyConnection, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Acquisition cohorts (members by registration month, UTC) over the complete months before
    `cutoff`: per cohort and months since registration (0 = the registration month) the
    members, buyers, retention (buyers ÷ members) and net spend per member, in the month and
    cumulated from the registration month. Orders dated before the registration month are left
    out; a partial last month is left out."""
    cutoff = _utc(cutoff)
    first = first_registration(con, cutoff)
    complete = [m for m in ([] if first is None else months(first, cutoff)) if m.complete]
    if not complete:
        return _cohort_frame(pd.DataFrame(columns=["cohort", "month", "buyers", "spend"]), {})
    end = complete[-1].end
    _create_inputs(con, end)
    try:
        sizes = con.execute(
            f"SELECT registered_month, count(*) FROM {_MEMBERS} GROUP BY ALL"
        ).fetchall()
        cells = con.execute(_COHORT_SQL.format(members=_MEMBERS, orders=_ORDERS)).df()
    finally:
        _drop_inputs(con)
    return _cohort_frame(cells, {int(month): int(n) for month, n in sizes})


def _cohort_frame(cells: pd.DataFrame, sizes: dict[int, int]) -> pd.DataFrame:
    """The full cohort × months-since grid up to the last month seen, zeros where no order."""
    columns = ["cohort", "months_since_registration", "members", "buyers", "retention"]
    columns += ["spend_per_member", "cumulative_spend_per_member"]
    if not sizes:
        return pd.DataFrame(columns=columns)
    last = max(max(sizes), int(cells["month"].max()) if len(cells) else 0)
    grid = pd.DataFrame(
        [(c, m) for c in sorted(sizes) for m in range(c, last + 1)], columns=["cohort", "month"]
    )
    cells = cells.astype({"cohort": "int64", "month": "int64"})
    x = grid.merge(cells, on=["cohort", "month"], how="left").fillna({"buyers": 0, "spend": 0.0})
    x["members"] = x["cohort"].map(sizes).astype("int64")
    x["buyers"] = x["buyers"].astype("int64")
    x["months_since_registration"] = (x["month"] - x["cohort"]).astype("int64")
    x["retention"] = x["buyers"] / x["members"]
    x["spend_per_member"] = x["spend"].astype("float64") / x["members"]
    x["cumulative_spend_per_member"] = x.groupby("cohort")["spend_per_member"].cumsum()
    x["cohort"] = [f"{c // 12:04d}-{c % 12 + 1:02d}" for c in x["cohort"]]
    return x[columns].reset_index(drop=True)


def _utc(at: pd.Timestamp) -> pd.Timestamp:
    at = pd.Timestamp(at)
    if at.tzinfo is None:
        raise ValueError(f"cutoff must be timezone-aware (UTC), got {at}")
    return at.tz_convert("UTC")
