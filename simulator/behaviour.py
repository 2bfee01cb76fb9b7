"""Behaviour events: browsing that follows the hidden lifecycle, plus events tied to orders,
contacts, tiers and approaching dropout.

Browsing runs at the member's engagement rate while alive and fades linearly over the
`fade_days` before each death (the churn signal), a little before the first order, and at a
low noise level while dead. Rates are events/day; times are days.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from memberscore.contract import EVENT_TYPES
from simulator.campaigns import COUPON_ACTIONS, ContactLog
from simulator.params import SimulationParams
from simulator.population import Latent
from simulator.purchases import OrderLog
from simulator.tiers import TierHistory

E = {name: i for i, name in enumerate(EVENT_TYPES)}
_MIX: dict[str, dict[str, float]] = {
    "alive": {
        "login": 20,
        "page_view": 34,
        "product_view": 25,
        "search": 12,
        "add_to_cart": 6,
        "referral": 0.6,
        "service_contact": 0.8,
    },
    "prospect": {"login": 22, "page_view": 40, "product_view": 24, "search": 12, "add_to_cart": 2},
    "dead": {"login": 40, "page_view": 45, "product_view": 10, "search": 5},
}


@dataclass(frozen=True)
class EventLog:
    """Events in simulator units: member number, day, EVENT_TYPES index, value (NaN = none)."""

    member: np.ndarray
    time: np.ndarray
    kind: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.member)


def event_log(
    member: np.ndarray, time: np.ndarray, kind: np.ndarray | int, value: np.ndarray | float = np.nan
) -> EventLog:
    """An EventLog with scalar kind / value broadcast."""
    n = len(member)
    return EventLog(
        np.asarray(member, dtype=np.int64),
        np.asarray(time, dtype=float),
        np.broadcast_to(np.asarray(kind, dtype=np.int8), n).copy(),
        np.broadcast_to(np.asarray(value, dtype=float), n).copy(),
    )


def _kinds(rng: np.random.Generator, mix: str, n: int) -> np.ndarray:
    weights = _MIX[mix]
    p = np.array(list(weights.values()), dtype=float)
    codes = np.array([E[k] for k in weights], dtype=np.int8)
    return codes[rng.choice(len(p), size=n, p=p / p.sum())]


def thin(
    rng: np.random.Generator,
    members: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    bound: np.ndarray,
    intensity: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Times of an inhomogeneous Poisson process on [lo, hi) per member, by thinning: candidates
    at rate `bound` (events/day), kept with probability intensity(member, t) / bound."""
    length = np.where(hi > lo, hi - lo, 0.0)
    idx = np.flatnonzero(length > 0)
    counts = rng.poisson(bound[idx] * length[idx])
    pos = np.repeat(idx, counts)
    t = lo[pos] + rng.random(len(pos)) * length[pos]
    keep = rng.random(len(pos)) * bound[pos] < intensity(members[pos], t)
    return members[pos][keep], t[keep]


def _fade(t: np.ndarray, death: np.ndarray, fade_days: np.ndarray, floor: float) -> np.ndarray:
    """1 until `fade_days` before death, then linearly down to `floor` at death."""
    return np.clip((death - t) / fade_days, floor, 1.0)


def browse_events(
    rng: np.random.Generator,
    members: np.ndarray,
    registered: np.ndarray,
    latent: Latent,
    season: np.ndarray,
    params: SimulationParams,
) -> EventLog:
    """Logins, page and product views, searches, abandoned carts, a few referrals: before the
    first order, during each life (fading before death) and as noise while dead."""
    days, lift = float(params.days), np.sqrt(season)
    peak = float(lift.max())
    eng, fade = latent.engagement, latent.fade_days
    act, death, rev, death2 = (latent.activation, latent.death, latent.revival, latent.death2)
    end = lambda x: np.minimum(x[members], days)  # noqa: E731

    def season_of(t: np.ndarray) -> np.ndarray:
        return lift[np.minimum(t.astype(np.int64), len(lift) - 1)]

    def prospect(m: np.ndarray, t: np.ndarray) -> np.ndarray:
        decay = 0.3 + 0.7 * np.exp(-(t - registered[m]) / 45.0)
        return eng[m] * params.pre_activation_level * decay * season_of(t)

    def life(stop: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return lambda m, t: eng[m] * _fade(t, stop[m], fade[m], params.fade_floor) * season_of(t)

    def dead(m: np.ndarray, t: np.ndarray) -> np.ndarray:
        return (eng[m] * params.dead_level + 0.005) * season_of(t)

    segments = [
        ("prospect", registered[members], end(act), params.pre_activation_level, prospect),
        ("alive", act[members], end(death), 1.0, life(death)),
        ("dead", death[members], end(rev), params.dead_level, dead),
        ("alive", rev[members], end(death2), 1.0, life(death2)),
        ("dead", death2[members], np.full(len(members), days), params.dead_level, dead),
    ]
    logs = []
    for mix, lo, hi, level, intensity in segments:
        bound = (eng[members] * level + 0.005) * peak
        m, t = thin(rng, members, lo, hi, bound, intensity)
        logs.append(event_log(m, t, _kinds(rng, mix, len(m))))
    return concat_events(logs)


def concat_events(logs: list[EventLog]) -> EventLog:
    """One log from many, unsorted."""
    return EventLog(
        *(np.concatenate([getattr(x, f) for x in logs]) for f in EventLog.__annotations__)
    )


def order_events(
    rng: np.random.Generator,
    orders: OrderLog,
    amount: np.ndarray,
    registered: np.ndarray,
    days: int,
) -> EventLog:
    """Views and a cart add shortly before most orders, points earned (1 per currency unit),
    points redeemed every fifth order now and then, coupon claims, reviews days later.
    `orders` must be sorted by member then time."""
    n, m, t = len(orders), orders.member, orders.time
    views = 1 + rng.poisson(1.5, n)
    vm = np.repeat(np.arange(n), views)
    carted = np.flatnonzero(rng.random(n) < 0.85)
    points = np.floor(amount)
    coupon = np.flatnonzero(orders.action >= 0)
    reviewed = np.flatnonzero(rng.random(n) < 0.06)
    redeem = _redemptions(rng, m, points)
    logs = [
        event_log(m[vm], t[vm] - rng.uniform(0, 0.2, len(vm)), E["product_view"]),
        event_log(m[carted], t[carted] - rng.uniform(0, 0.1, len(carted)), E["add_to_cart"]),
        event_log(m, t, E["points_earned"], points),
        event_log(m[redeem[0]], t[redeem[0]] + 1e-4, E["points_redeemed"], redeem[1]),
        event_log(m[coupon], t[coupon] - rng.uniform(0, 1.0, len(coupon)), E["coupon_claim"]),
        event_log(
            m[reviewed],
            t[reviewed] + rng.uniform(2, 20, len(reviewed)),
            E["review"],
            rng.choice(5, len(reviewed), p=[0.05, 0.07, 0.15, 0.33, 0.40]) + 1.0,
        ),
    ]
    return _inside(concat_events(logs), registered, days)


def _redemptions(
    rng: np.random.Generator, member: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(order positions, points) where half of every fifth order redeems 50–100 % of the points
    earned over the last five orders, so balances never go negative."""
    starts = (
        np.flatnonzero(np.r_[True, member[1:] != member[:-1]]) if len(member) else np.zeros(0, int)
    )
    rank = np.arange(len(member)) - np.repeat(starts, np.diff(np.r_[starts, len(member)]))
    chosen = np.flatnonzero(((rank + 1) % 5 == 0) & (rng.random(len(member)) < 0.5))
    total = np.r_[0.0, np.cumsum(points)]
    earned = total[chosen + 1] - total[chosen - 4]
    return chosen, np.floor(earned * rng.uniform(0.5, 1.0, len(chosen)))


def _inside(log: EventLog, registered: np.ndarray, days: int) -> EventLog:
    """Events moved to no earlier than registration and dropped at or after the window end."""
    time = np.maximum(log.time, registered[log.member])
    keep = time < days
    return EventLog(log.member[keep], time[keep], log.kind[keep], log.value[keep])


_OPEN = np.array([0.30, 0.45, 0.18, 0.06])  # email open by segment
_SMS = np.array([0.10, 0.15, 0.06, 0.02])  # sms click by segment
_CLAIM = np.array([0.20, 0.15, 0.10, 0.08])  # coupon claimed but not used, by segment


def contact_events(
    rng: np.random.Generator, contacts: ContactLog, registered: np.ndarray, days: int
) -> EventLog:
    """Reactions to sent contacts (control gets nothing): email opens and clicks, sms clicks,
    coupon claims that are never used; likelier while engaged."""
    sent = contacts.treated
    seg, ch = contacts.segment, contacts.channel
    opened = np.flatnonzero(sent & (ch == 0) & (rng.random(len(seg)) < _OPEN[seg]))
    open_at = contacts.day[opened] + rng.exponential(0.4, len(opened))
    clicked = rng.random(len(opened)) < 0.3
    sms = np.flatnonzero(sent & (ch == 1) & (rng.random(len(seg)) < _SMS[seg]))
    coupon = sent & ~contacts.effect & np.isin(contacts.action, COUPON_ACTIONS)
    claim = np.flatnonzero(coupon & (rng.random(len(seg)) < _CLAIM[seg]))
    m = contacts.member
    logs = [
        event_log(m[opened], open_at, E["email_open"]),
        event_log(
            m[opened][clicked],
            open_at[clicked] + rng.uniform(0, 0.05, clicked.sum()),
            E["email_click"],
        ),
        event_log(m[sms], contacts.day[sms] + rng.exponential(0.2, len(sms)), E["sms_click"]),
        event_log(
            m[claim], contacts.day[claim] + rng.exponential(1.0, len(claim)), E["coupon_claim"]
        ),
    ]
    return _inside(concat_events(logs), registered, days)


def dropout_events(
    rng: np.random.Generator, members: np.ndarray, latent: Latent, registered: np.ndarray, days: int
) -> EventLog:
    """Service contacts bunch in the 45 days before a death (complaints, problems): Poisson(1.2)
    per death inside the window."""
    logs = []
    for death in (latent.death[members], latent.death2[members]):
        dying = np.flatnonzero(death < days)
        count = rng.poisson(1.2, len(dying))
        pos = np.repeat(dying, count)
        when = death[pos] - rng.uniform(-3.0, 45.0, len(pos))
        logs.append(event_log(members[pos], when, E["service_contact"]))
    return _inside(concat_events(logs), registered, days)


def tier_events(history: TierHistory) -> EventLog:
    """One tier_change event per change, value = new tier rank."""
    return event_log(history.member, history.time, E["tier_change"], history.rank.astype(float))


def sort_events(log: EventLog) -> EventLog:
    """Sorted by member then time."""
    order = np.lexsort((log.time, log.member))
    return EventLog(log.member[order], log.time[order], log.kind[order], log.value[order])
