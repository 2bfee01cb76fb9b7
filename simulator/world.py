"""The simulation loop: periods of baseline purchases between campaign waves."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator.behaviour import (
    EventLog,
    browse_events,
    concat_events,
    contact_events,
    dropout_events,
    order_events,
    sort_events,
    tier_events,
)
from simulator.calendar import season_curve
from simulator.campaigns import (
    ContactLog,
    Wave,
    apply_wave,
    contact_log,
    draw_wave,
    redeem_coupons,
    tier_gap,
    wave_days,
)
from simulator.params import SimulationParams
from simulator.population import Latent, Population, draw_latent, draw_population
from simulator.purchases import OrderLog, concat, period_orders
from simulator.tiers import GROWTH_DAYS, TierHistory


@dataclass(frozen=True)
class World:
    """Everything simulated before behaviour events: members, hidden lives, orders, contacts."""

    params: SimulationParams
    population: Population
    latent: Latent  # final: after every campaign effect
    orders: OrderLog  # sorted by member then time; coupons redeemed
    contacts: ContactLog
    season: np.ndarray  # demand multiplier per simulated day


def trailing_gross(logs: list[OrderLog], members: int, day: float) -> np.ndarray:
    """Gross spend per member over the `GROWTH_DAYS` before `day` (currency)."""
    total = np.zeros(members)
    for log in logs:
        recent = (log.time < day) & (log.time >= day - GROWTH_DAYS)
        total += np.bincount(log.member[recent], weights=log.gross[recent], minlength=members)
    return total


def simulate_world(
    rng: np.random.Generator,
    params: SimulationParams,
    thresholds: np.ndarray,
    progress: Callable[[str], None] = lambda _: None,
) -> World:
    """Draw the population, then alternate waves and purchase periods up to `params.days`.

    `thresholds` are the ascending tier thresholds (growth value, currency) that tier nudges aim
    at; `progress` receives a short message per stage.
    """
    pop = draw_population(rng, params)
    latent = draw_latent(rng, pop, params)
    season = season_curve(params.start, params.days)
    bounds = [0.0, *wave_days(params), float(params.days)]
    logs: list[OrderLog] = []
    waves: list[Wave] = []
    for number, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if number > 0:
            growth = trailing_gross(logs, params.members, lo)
            wave = draw_wave(rng, pop, latent, number, lo, tier_gap(growth, thresholds), params)
            latent, extra = apply_wave(rng, latent, wave, params)
            waves.append(wave)
            logs.append(extra)
        logs.append(period_orders(rng, latent, lo, hi, season, params))
    progress(f"{len(waves)} campaign waves, {sum(map(len, logs)):,} orders")
    contacts = contact_log(waves)
    orders = redeem_coupons(rng, concat(logs), contacts, params)
    return World(params, pop, latent, orders, contacts, season)


def _range(sorted_members: np.ndarray, lo: int, hi: int) -> slice:
    return slice(*np.searchsorted(sorted_members, [lo, hi]))


def block_events(
    rng: np.random.Generator,
    world: World,
    amount: np.ndarray,
    tiers: TierHistory,
    lo: int,
    hi: int,
) -> EventLog:
    """All behaviour events of members lo..hi-1, sorted by member then time.

    `amount` is the paid amount of each order in `world.orders`; `tiers` must be sorted by member.
    """
    params, latent = world.params, world.latent
    registered = world.population.registered
    members = np.arange(lo, hi)
    part = _range(world.orders.member, lo, hi)
    orders = OrderLog(*(getattr(world.orders, f)[part] for f in OrderLog.__annotations__))
    mine = (world.contacts.member >= lo) & (world.contacts.member < hi)
    contacts = ContactLog(*(getattr(world.contacts, f)[mine] for f in ContactLog.__annotations__))
    changes = _range(tiers.member, lo, hi)
    tier = TierHistory(
        tiers.member[changes], tiers.time[changes], tiers.rank[changes], tiers.final_rank
    )
    logs = [
        browse_events(rng, members, registered, latent, world.season, params),
        order_events(rng, orders, amount[part], registered, params.days),
        contact_events(rng, contacts, registered, params.days),
        dropout_events(rng, members, latent, registered, params.days),
        tier_events(tier),
    ]
    return sort_events(concat_events(logs))
