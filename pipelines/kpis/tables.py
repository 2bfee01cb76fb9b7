"""The KPI tables: monthly counts and rates per group, and acquisition cohorts, computed from
`Inputs` with array operations (one pass over the order rows per month, no per-member loop).

Point in time: `Inputs` hold only rows before the cutoff, and each month's figures only read
rows before that month's end, so adding later rows never changes an earlier month. Months are
calendar months in UTC; the last one ends at the cutoff and may be partial (`complete` false).
docs/kpis.md defines every figure. Days are 86 400 s; money is in the dataset currency. A
purchase is an order row with `is_return = false`; spend is net (purchases minus refunds).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from pipelines.kpis.definitions import (
    ACTIVE,
    CHURNED,
    DAY,
    DORMANT,
    SEGMENTS,
    STATUSES,
    Definitions,
    Month,
    months,
)
from pipelines.kpis.inputs import Inputs
from pipelines.kpis.states import NO_SEGMENT, State, state_of

DIMENSIONS = ("all", "acquisition_channel", "tier", "segment")


def periods(inputs: Inputs) -> list[Month]:
    """The reporting months of `inputs`: from the first registration to the cutoff."""
    if inputs.size == 0:
        return []
    first = pd.Timestamp(float(inputs.registered_s.min()), unit="s", tz="UTC")
    return months(first, inputs.cutoff)


def monthly_kpis(
    inputs: Inputs,
    definitions: Definitions,
    progress: Callable[[Month], None] = lambda _: None,
) -> pd.DataFrame:
    """One row per month and group (DIMENSIONS: all members, each acquisition channel, each
    tier and RFM segment the member held at the month's start) with the counts and rates of
    docs/kpis.md. `progress` is called after each month."""
    frames = []
    start: State | None = None
    for month in periods(inputs):
        if start is None:
            start = state_of(inputs, month.start.timestamp(), definitions)
        end = state_of(inputs, month.end.timestamp(), definitions)
        frames.append(_month_counts(inputs, month, start, end, definitions))
        start = end
        progress(month)
    counts = pd.concat(frames, ignore_index=True) if frames else _empty_counts(definitions)
    return with_rates(counts, definitions)


def state_at(inputs: Inputs, at: pd.Timestamp, definitions: Definitions) -> pd.DataFrame:
    """member_id, status, segment and tier of every member registered before `at`, as of `at`
    (the member-level view behind the monthly counts), sorted by member."""
    state = state_of(inputs, pd.Timestamp(at).timestamp(), definitions)
    keep = state.registered
    frame = pd.DataFrame(
        {
            "member_id": np.asarray(inputs.member_id.to_pylist(), dtype=object)[keep],
            "status": np.asarray(STATUSES, dtype=object)[state.status[keep]],
            "segment": np.asarray(SEGMENTS, dtype=object)[state.segment[keep]],
            "tier": np.asarray(definitions.tiers, dtype=object)[state.tier[keep]],
        }
    )
    return frame.sort_values("member_id", ignore_index=True)


def _month_flags(
    inputs: Inputs, month: Month, start: State, end: State, definitions: Definitions
) -> dict[str, np.ndarray]:
    """Per member, each count of `count_columns` (0/1 flags, or the member's own orders and
    money in the month), for members registered before the month's end."""
    s0, s1 = month.start.timestamp(), month.end.timestamp()
    n = inputs.size
    bought = (inputs.p_time >= s0) & (inputs.p_time < s1)
    orders = np.bincount(inputs.p_member[bought], minlength=n)
    amount = np.bincount(inputs.p_member[bought], weights=inputs.p_amount[bought], minlength=n)
    rows = (inputs.o_time >= s0) & (inputs.o_time < s1)
    spend = np.bincount(inputs.o_member[rows], weights=inputs.o_net[rows], minlength=n)
    tier0 = np.where(start.registered, start.tier, 0)
    was = {s: start.registered & (start.status == s) for s in (ACTIVE, DORMANT, CHURNED)}
    flags = {
        "members": end.registered,
        "new_registrations": end.registered & ~start.registered,
        **{name: end.status == i for i, name in enumerate(STATUSES)},
    }
    for days in definitions.activation_days:
        close = inputs.registered_s + days * DAY
        flags[f"activation_base_{days}d"] = base = (close >= s0) & (close < s1)
        flags[f"activated_{days}d"] = base & (inputs.first_s < close)
    days = definitions.repurchase_days
    close = inputs.first_s + days * DAY
    flags[f"repurchase_base_{days}d"] = base = (close >= s0) & (close < s1)
    flags[f"repurchased_{days}d"] = base & (inputs.second_s < close)
    flags["churn_base"] = churn_base = was[ACTIVE] | was[DORMANT]
    flags["churned_in_month"] = churn_base & (end.status == CHURNED)
    flags["win_back_base"] = win_back_base = was[DORMANT] | was[CHURNED]
    flags["won_back"] = win_back_base & (orders > 0)
    flags["tier_upgrades"] = end.tier > tier0
    flags["tier_downgrades"] = end.tier < tier0
    flags["buyers"] = orders > 0
    return flags | {"orders": orders, "purchase_amount": amount, "spend": spend}


def _month_counts(
    inputs: Inputs, month: Month, start: State, end: State, definitions: Definitions
) -> pd.DataFrame:
    """The counts and sums of `month` per group: summed per (channel, tier, segment) cell of
    the members at the month's start, then per dimension."""
    flags = _month_flags(inputs, month, start, end, definitions)
    keep = end.registered
    tiers, segments = len(definitions.tiers), len(SEGMENTS)
    tier0 = np.where(start.registered, start.tier, 0)
    segment0 = np.where(start.registered, start.segment, NO_SEGMENT)
    cell = ((inputs.channel * tiers + tier0) * segments + segment0)[keep]
    size = max(len(inputs.channels), 1) * tiers * segments
    sums = {
        name: np.bincount(cell, weights=values[keep].astype(np.float64), minlength=size)
        for name, values in flags.items()
    }
    cells = pd.DataFrame(sums)
    index = np.arange(size)
    cells["acquisition_channel"] = np.asarray(inputs.channels or ("",), dtype=object)[
        index // (tiers * segments)
    ]
    cells["tier"] = np.asarray(definitions.tiers, dtype=object)[index // segments % tiers]
    cells["segment"] = np.asarray(SEGMENTS, dtype=object)[index % segments]
    return _by_dimension(cells[cells["members"] > 0], list(flags), month)


def _by_dimension(cells: pd.DataFrame, columns: list[str], month: Month) -> pd.DataFrame:
    """The cells summed over all members and per channel, tier and segment, sorted."""
    parts = [cells[columns].sum().to_frame().T.assign(dimension="all", group="all")]
    for dimension in DIMENSIONS[1:]:
        part = cells.groupby(dimension, sort=True)[columns].sum().reset_index()
        parts.append(part.rename(columns={dimension: "group"}).assign(dimension=dimension))
    out = pd.concat(parts, ignore_index=True)[["dimension", "group", *columns]]
    out.insert(0, "month", month.label)
    out.insert(1, "period_start", month.start)
    out.insert(2, "period_end", month.end)
    out.insert(3, "complete", month.complete)
    return out


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


def cohort_kpis(inputs: Inputs) -> pd.DataFrame:
    """Acquisition cohorts (members by registration month, UTC) over the complete months before
    the cutoff: per cohort and months since registration (0 = the registration month) the
    members, buyers, retention (buyers ÷ members) and net spend per member, in the month and
    cumulated from the registration month. Orders dated before the registration month are left
    out; a partial last month is left out."""
    complete = [m for m in periods(inputs) if m.complete]
    if not complete:
        return _cohort_frame(pd.DataFrame(columns=["cohort", "month", "buyers", "spend"]), {})
    end = complete[-1].end.timestamp()
    members = inputs.registered_s < end
    cohort = inputs.registered_month
    rows = (inputs.o_time < end) & members[inputs.o_member]
    rows &= inputs.o_month >= cohort[inputs.o_member]
    money = pd.DataFrame(
        {"cohort": cohort[inputs.o_member[rows]], "month": inputs.o_month[rows]}
    ).assign(spend=inputs.o_net[rows])
    spend = money.groupby(["cohort", "month"], sort=True)["spend"].sum()
    bought = (inputs.p_time < end) & members[inputs.p_member]
    bought &= inputs.p_month >= cohort[inputs.p_member]
    pairs = pd.DataFrame({"member": inputs.p_member[bought], "month": inputs.p_month[bought]})
    pairs = pairs.drop_duplicates()
    pairs["cohort"] = cohort[pairs["member"].to_numpy()]
    buyers = pairs.groupby(["cohort", "month"], sort=True).size().rename("buyers")
    cells = pd.concat([buyers, spend], axis=1).fillna(0).reset_index()
    values, counts = np.unique(cohort[members], return_counts=True)
    return _cohort_frame(cells, dict(zip(values.tolist(), counts.tolist(), strict=True)))


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
