"""Orders: Poisson purchases while alive thinned by seasonality, spend, discounts, returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.params import ACTIONS, COUPON_DISCOUNT, SimulationParams
from simulator.population import Latent

NO_COUPON = -1


@dataclass(frozen=True)
class OrderLog:
    """Purchases (not yet returns) in simulator units; one entry per order."""

    member: np.ndarray  # member number
    time: np.ndarray  # days
    gross: np.ndarray  # currency before discount
    action: np.ndarray  # index into ACTIONS of the coupon used, NO_COUPON if none
    wave: np.ndarray  # wave number of that coupon, -1 if none

    def __len__(self) -> int:
        return len(self.member)


def order_log(
    member: np.ndarray,
    time: np.ndarray,
    gross: np.ndarray,
    action: np.ndarray | int = NO_COUPON,
    wave: np.ndarray | int = -1,
) -> OrderLog:
    """An OrderLog with scalar coupon fields broadcast to every order."""
    n = len(member)
    return OrderLog(
        member=np.asarray(member, dtype=np.int64),
        time=np.asarray(time, dtype=float),
        gross=np.asarray(gross, dtype=float),
        action=np.broadcast_to(np.asarray(action, dtype=np.int16), n).copy(),
        wave=np.broadcast_to(np.asarray(wave, dtype=np.int32), n).copy(),
    )


def concat(logs: list[OrderLog]) -> OrderLog:
    """All logs as one, sorted by member then time."""
    fields = {f: np.concatenate([getattr(x, f) for x in logs]) for f in OrderLog.__annotations__}
    order = np.lexsort((fields["time"], fields["member"]))
    return OrderLog(**{f: v[order] for f, v in fields.items()})


def draw_spend(
    rng: np.random.Generator, latent: Latent, member: np.ndarray, shape: float
) -> np.ndarray:
    """Gross value of each order: Gamma with the member's mean spend (currency)."""
    return rng.gamma(shape, latent.mean_spend[member] / shape)


def _poisson_in(
    rng: np.random.Generator,
    rate: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    season: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Event times on [lo, hi) per member at `rate` × season(day): thinning against the peak."""
    length = np.where(hi > lo, hi - lo, 0.0)
    peak = float(season.max())
    idx = np.flatnonzero(length > 0)
    counts = rng.poisson(rate[idx] * peak * length[idx])
    member = np.repeat(idx, counts)
    t = lo[member] + rng.random(len(member)) * length[member]
    keep = rng.random(len(member)) * peak < season[t.astype(np.int64)]
    return member[keep], t[keep]


def period_orders(
    rng: np.random.Generator,
    latent: Latent,
    lo: float,
    hi: float,
    season: np.ndarray,
    params: SimulationParams,
) -> OrderLog:
    """Baseline orders with times in [lo, hi) days: first orders at (non-campaign) activation and
    win-back, then repeat purchases while alive."""
    starts = [
        (latent.activation, latent.death, latent.activation_by_campaign),
        (latent.revival, latent.death2, latent.revival_by_campaign),
    ]
    members, times = [], []
    for begin, end, by_campaign in starts:
        first = np.flatnonzero((begin >= lo) & (begin < hi) & ~by_campaign)
        members += [first]
        times += [begin[first]]
        m, t = _poisson_in(rng, latent.rate, np.maximum(begin, lo), np.minimum(end, hi), season)
        members += [m]
        times += [t]
    member = np.concatenate(members)
    return order_log(
        member, np.concatenate(times), draw_spend(rng, latent, member, params.order_spend_shape)
    )


@dataclass(frozen=True)
class OrderDetails:
    """Everything an order row needs besides its id (money in currency)."""

    amount: np.ndarray  # paid, after discount
    discount: np.ndarray
    items: np.ndarray
    channel: np.ndarray  # index into PURCHASE_CHANNELS


def order_details(
    rng: np.random.Generator, log: OrderLog, latent: Latent, params: SimulationParams
) -> OrderDetails:
    """Discount (coupon rate on coupon orders, an occasional promo otherwise), items, channel."""
    n = len(log)
    coupon_rate = np.array([COUPON_DISCOUNT.get(a, 0.10) for a in ACTIONS] + [0.0])
    rate = np.where(log.action >= 0, coupon_rate[log.action], 0.0)
    promo = (log.action < 0) & (rng.random(n) < params.promo_prob)
    rate = np.where(promo, rng.uniform(0.05, 0.15, n), rate)
    discount = np.round(log.gross * rate, 2)
    cumulative = np.cumsum(latent.shares[log.member], axis=1)
    channel = (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(0, 2)
    return OrderDetails(
        amount=np.round(log.gross, 2) - discount,
        discount=discount,
        items=1 + rng.poisson(log.gross / 40.0),
        channel=channel,
    )


@dataclass(frozen=True)
class Returns:
    """Refunds: which order, when (days), how much money (currency) and how many items."""

    order: np.ndarray  # position in the OrderLog
    time: np.ndarray
    amount: np.ndarray
    items: np.ndarray


def draw_returns(
    rng: np.random.Generator, log: OrderLog, details: OrderDetails, params: SimulationParams
) -> Returns:
    """A few orders come back 2–30 days later, fully (70 %) or partly; refunds after the
    window are dropped."""
    chosen = np.flatnonzero(rng.random(len(log)) < params.return_prob)
    time = log.time[chosen] + rng.uniform(2.0, 30.0, len(chosen))
    share = np.where(rng.random(len(chosen)) < 0.7, 1.0, rng.uniform(0.2, 0.9, len(chosen)))
    keep = time < params.days
    chosen, time, share = chosen[keep], time[keep], share[keep]
    items = np.maximum(1, np.round(details.items[chosen] * share)).astype(np.int64)
    return Returns(chosen, time, np.round(details.amount[chosen] * share, 2), items)
