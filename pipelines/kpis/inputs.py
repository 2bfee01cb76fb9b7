"""The rows the KPIs read, as arrays: members registered before a cutoff and their order rows
before it, read in one DuckDB pass each over the views `members` and `orders` (canonical
columns; `features.build.open_lake` makes them over the lake). Times are epoch seconds; months
are numbered year × 12 + month − 1 in UTC."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from memberscore.errors import ContractError
from pipelines.kpis.definitions import utc

_MONTH = "year({c} AT TIME ZONE 'UTC') * 12 + month({c} AT TIME ZONE 'UTC') - 1"
_MEMBERS_SQL = f"""
SELECT CAST(member_id AS VARCHAR) AS member_id, epoch(registered_at) AS registered_s,
    {_MONTH.format(c="registered_at")} AS registered_month,
    CAST(acquisition_channel AS VARCHAR) AS acquisition_channel
FROM members WHERE registered_at < $c
"""
_ORDERS_SQL = f"""
SELECT CAST(member_id AS VARCHAR) AS member_id, epoch(ordered_at) AS t, is_return, amount,
    {_MONTH.format(c="ordered_at")} AS month
FROM orders WHERE ordered_at < $c
"""


@dataclass(frozen=True)
class Inputs:
    """Members (index i = 0..n−1) and their order rows before `cutoff`.

    Purchases (`p_*`, return rows left out) are sorted by member then time, member i's in
    `p_start[i]` .. `p_start[i + 1]`; `rows` (`o_*`) hold every order row with its net amount
    (a refund negative).
    """

    cutoff: pd.Timestamp
    member_id: pa.Array
    registered_s: np.ndarray
    registered_month: np.ndarray
    channel: np.ndarray  # index into `channels`
    channels: tuple[str, ...]
    first_s: np.ndarray  # first purchase, NaN without one
    second_s: np.ndarray  # second purchase, NaN without one
    p_member: np.ndarray
    p_time: np.ndarray
    p_amount: np.ndarray
    p_month: np.ndarray
    p_start: np.ndarray
    o_member: np.ndarray
    o_time: np.ndarray
    o_net: np.ndarray
    o_month: np.ndarray

    @property
    def size(self) -> int:
        """Members."""
        return len(self.registered_s)


def read_inputs(con: duckdb.DuckDBPyConnection, cutoff: pd.Timestamp) -> Inputs:
    """Members registered before `cutoff` and their order rows before it (orders of ids not in
    `members` are dropped). Raises ContractError when a member id appears twice."""
    cutoff = utc(cutoff)
    members = con.sql(_MEMBERS_SQL, params={"c": cutoff}).to_arrow_table()
    ids = members["member_id"].combine_chunks()
    if pc.count_distinct(ids).as_py() != len(ids):
        twice = next(c["values"] for c in pc.value_counts(ids).to_pylist() if c["counts"] > 1)
        raise ContractError(
            f"members holds member_id {twice!r} more than once; the member table must have one "
            "row per member (re-ingest it, or erase the duplicate)"
        )
    orders = con.sql(_ORDERS_SQL, params={"c": cutoff}).to_arrow_table()
    member = pc.index_in(orders["member_id"], value_set=ids)
    known = pc.is_valid(member)
    orders = orders.filter(known).drop_columns(["member_id"])
    o_member = pc.drop_null(member).to_numpy().astype(np.int64)
    channel = pc.dictionary_encode(members["acquisition_channel"].combine_chunks())
    return _assemble(cutoff, members, ids, channel, orders, o_member)


def _assemble(
    cutoff: pd.Timestamp,
    members: pa.Table,
    ids: pa.Array,
    channel: pa.DictionaryArray,
    orders: pa.Table,
    o_member: np.ndarray,
) -> Inputs:
    """The arrays of `Inputs`, purchases sorted by member then time."""
    n = len(ids)
    time = orders["t"].to_numpy().astype(np.float64)
    is_return = orders["is_return"].to_numpy().astype(bool)
    amount = orders["amount"].to_numpy().astype(np.float64)
    month = orders["month"].to_numpy().astype(np.int64)
    bought = np.flatnonzero(~is_return)
    order = bought[np.lexsort((time[bought], o_member[bought]))]
    p_member, p_time = o_member[order], time[order]
    p_start = np.r_[0, np.cumsum(np.bincount(p_member, minlength=n))]
    count = np.diff(p_start)
    first = np.full(n, np.nan)
    second = np.full(n, np.nan)
    first[count >= 1] = p_time[p_start[:-1][count >= 1]]
    second[count >= 2] = p_time[p_start[:-1][count >= 2] + 1]
    return Inputs(
        cutoff=cutoff,
        member_id=ids,
        registered_s=members["registered_s"].to_numpy().astype(np.float64),
        registered_month=members["registered_month"].to_numpy().astype(np.int64),
        channel=channel.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        channels=tuple(channel.dictionary.to_pylist()),
        first_s=first,
        second_s=second,
        p_member=p_member,
        p_time=p_time,
        p_amount=amount[order],
        p_month=month[order],
        p_start=p_start,
        o_member=o_member,
        o_time=time,
        o_net=np.where(is_return, -amount, amount),
        o_month=month,
    )
