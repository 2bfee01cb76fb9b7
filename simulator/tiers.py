"""Tiers from growth value: net spend (orders minus refunds) over the trailing 365 days."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.purchases import OrderLog, Returns

GROWTH_DAYS = 365.0


@dataclass(frozen=True)
class TierHistory:
    """Tier changes (member, day, new rank) and each member's rank at the end of the window."""

    member: np.ndarray
    time: np.ndarray  # days
    rank: np.ndarray  # 0 = lowest tier
    final_rank: np.ndarray  # per member


def tier_history(
    member: np.ndarray,
    time: np.ndarray,
    signed_amount: np.ndarray,
    thresholds: np.ndarray,
    members: int,
    days: int,
) -> TierHistory:
    """Replay a ledger of money in (orders, +) and out (refunds, −), each entry expiring after
    `GROWTH_DAYS`; the rank changes whenever the trailing sum crosses a threshold (currency)."""
    expires = time + GROWTH_DAYS
    later = expires < days
    m = np.concatenate([member, member[later]])
    t = np.concatenate([time, expires[later]])
    v = np.concatenate([signed_amount, -signed_amount[later]])
    order = np.lexsort((t, m))
    m, t, v = m[order], t[order], v[order]
    total = np.cumsum(v)
    first = np.flatnonzero(np.r_[True, m[1:] != m[:-1]]) if len(m) else np.zeros(0, np.int64)
    before = np.repeat(total[first] - v[first], np.diff(np.r_[first, len(m)]))
    growth = total - before
    rank = np.clip(np.searchsorted(thresholds, growth + 1e-9, side="right") - 1, 0, None)
    previous = np.r_[0, rank[:-1]]
    previous[first] = 0
    change = rank != previous
    final = np.zeros(members, dtype=np.int64)
    if len(m):
        last = np.r_[first[1:] - 1, len(m) - 1]
        final[m[last]] = rank[last]
    return TierHistory(m[change], t[change], rank[change], final)


def net_spend_ledger(
    orders: OrderLog, amount: np.ndarray, refunds: Returns
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member, day, signed money): paid order amounts in, refunds out (currency)."""
    member = np.r_[orders.member, orders.member[refunds.order]]
    return member, np.r_[orders.time, refunds.time], np.r_[amount, -refunds.amount]
