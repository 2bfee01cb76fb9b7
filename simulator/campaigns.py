"""Campaign waves: random assignment of actions and groups, true member-dependent effects.

Every `wave_every_days` a random share of registered, marketing-consenting members is contacted.
Each gets one action drawn uniformly from `ACTIONS` and lands in treatment (sent) with probability
`treatment_share`, else in control (held out, logged, not sent). The true effect of a sent action
is the probability of an incremental order within `response_window_days`; it depends on the
member's hidden state (see `true_uplift`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.params import ACTION_INDEX, ACTIONS, COUPON_DISCOUNT, SimulationParams
from simulator.population import Latent, Population
from simulator.purchases import NO_COUPON, OrderLog, draw_spend, order_log

PROSPECT, ACTIVE, FADING, LAPSED = 0, 1, 2, 3
SEGMENTS = ("prospect", "active", "fading", "lapsed")
CHANNEL_SHARE = (0.55, 0.15, 0.2, 0.1, 0.0)  # email, sms, push, app, call (non-call actions)
CHANNEL_COST = np.array([0.01, 0.05, 0.005, 0.005, 5.0])  # currency per contact
COUPON_ACTIONS = np.array([ACTION_INDEX[a] for a in COUPON_DISCOUNT])
_DISCOUNT = np.array([COUPON_DISCOUNT.get(a, 0.0) for a in ACTIONS])


@dataclass(frozen=True)
class Wave:
    """The contacts of one wave with their hidden state and true effect."""

    number: int
    day: float  # sent time (days)
    member: np.ndarray
    action: np.ndarray  # index into ACTIONS
    treated: np.ndarray  # bool: treatment (sent) vs control (held out)
    channel: np.ndarray  # index into CONTACT_CHANNELS
    segment: np.ndarray  # PROSPECT, ACTIVE, FADING or LAPSED at send time
    uplift: np.ndarray  # true P(incremental order within the window | sent)
    value: np.ndarray  # true expected incremental value if sent (currency, net of costs)
    cost: np.ndarray  # cost of sending (currency)
    effect: np.ndarray  # bool: the incremental order happened (treatment only)


def wave_days(params: SimulationParams) -> np.ndarray:
    """Days on which a wave is sent: every `wave_every_days`, starting after the first period."""
    return np.arange(params.wave_every_days, params.days, params.wave_every_days, dtype=float)


def segment_at(latent: Latent, member: np.ndarray, day: float) -> np.ndarray:
    """Hidden lifecycle segment of each member at `day`."""
    alive = latent.alive(day)[member]
    death = np.where(day < latent.death[member], latent.death[member], latent.death2[member])
    fading = alive & (death - day < latent.fade_days[member])
    activated = latent.activation[member] <= day
    return np.select([~activated, fading, alive], [PROSPECT, FADING, ACTIVE], LAPSED)


def tier_gap(growth: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Growth value as a share of the next tier's threshold (inf at the top tier)."""
    rank = np.searchsorted(thresholds, growth, side="right") - 1
    top = rank >= len(thresholds) - 1
    following = thresholds[np.minimum(rank + 1, len(thresholds) - 1)]
    return np.where(top, np.inf, growth / np.where(top, 1.0, following))


def true_uplift(
    action: np.ndarray,
    segment: np.ndarray,
    *,
    paid: np.ndarray,
    rate: np.ndarray,
    mean_spend: np.ndarray,
    gap: np.ndarray,
    birthday: np.ndarray,
    days_since_death: np.ndarray,
    params: SimulationParams,
) -> np.ndarray:
    """P(incremental order within the response window | sent), per contact."""
    alive = (segment == ACTIVE) | (segment == FADING)
    prospect, lapsed = segment == PROSPECT, segment == LAPSED
    moderate = (rate >= 0.012) & (rate <= 0.05)
    by_action = [
        np.where(prospect, 0.10 + 0.10 * paid, 0.0),
        np.where(prospect, 0.02, np.where(alive, 0.015, 0.0)),
        np.where(alive, np.where(moderate, 0.09, np.where(rate > 0.05, 0.0, 0.02)), 0.0),
        np.where(alive & (gap >= 0.7) & (gap < 1.0), 0.14, np.where(alive, 0.01, 0.0)),
        np.select([alive, lapsed | prospect], [0.02, 0.01], 0.0),
        np.where(alive & (mean_spend >= params.vip_spend), 0.12, np.where(alive, 0.01, 0.0)),
        np.where(birthday, np.where(lapsed, 0.03, 0.06), 0.005),
        np.where(
            lapsed, np.where(days_since_death < 180, 0.15, 0.08), np.where(prospect, 0.01, 0.0)
        ),
        np.select([segment == FADING, lapsed, alive], [0.25, 0.04, 0.01], 0.0),
    ]
    return np.choose(action, by_action)


def baseline_order_prob(
    latent: Latent, member: np.ndarray, day: float, window: float
) -> np.ndarray:
    """P(an order within `window` days without any contact), from the hidden state."""
    alive = latent.alive(day)[member]
    buying = 1 - np.exp(-latent.rate[member] * window)
    starts = np.stack([latent.activation[member], latent.revival[member]])
    starting = ((starts > day) & (starts <= day + window)).any(axis=0)
    return np.where(alive, buying, starting.astype(float))


def _days_since_death(latent: Latent, member: np.ndarray, day: float) -> np.ndarray:
    last = np.where(day >= latent.death2[member], latent.death2[member], latent.death[member])
    return np.where(day >= last, day - last, np.inf)


def _channels(rng: np.random.Generator, action: np.ndarray) -> np.ndarray:
    """Call for care calls, otherwise email / sms / push / app."""
    drawn = rng.choice(len(CHANNEL_SHARE), size=len(action), p=CHANNEL_SHARE)
    return np.where(action == ACTION_INDEX["churn_care_call"], 4, drawn)


def draw_wave(
    rng: np.random.Generator,
    pop: Population,
    latent: Latent,
    number: int,
    day: float,
    gap: np.ndarray,
    params: SimulationParams,
) -> Wave:
    """Pick the contacts of one wave, assign action and group, and draw the true effects.

    `gap` is each member's growth value as a share of the next tier threshold at `day`.
    """
    eligible = np.flatnonzero((pop.registered < day) & pop.consent_marketing)
    member = eligible[rng.random(len(eligible)) < params.contact_share]
    action = rng.integers(0, len(ACTIONS), len(member))
    treated = rng.random(len(member)) < params.treatment_share
    channel = _channels(rng, action)
    segment = segment_at(latent, member, day)
    month = (np.datetime64(params.start) + np.timedelta64(int(day), "D")).astype(object).month
    uplift = true_uplift(
        action,
        segment,
        paid=pop.paid[member],
        rate=latent.rate[member],
        mean_spend=latent.mean_spend[member],
        gap=gap[member],
        birthday=pop.birth_month[member] == month,
        days_since_death=_days_since_death(latent, member, day),
        params=params,
    )
    cost = CHANNEL_COST[channel]
    base = baseline_order_prob(latent, member, day, params.response_window_days)
    spend, discount = latent.mean_spend[member], _DISCOUNT[action]
    wasted = params.coupon_redeem_prob * base * discount * spend
    value = uplift * spend * (1 - discount) - wasted - cost
    effect = treated & (rng.random(len(member)) < uplift)
    return Wave(number, day, member, action, treated, channel, segment, uplift, value, cost, effect)


def apply_wave(
    rng: np.random.Generator, latent: Latent, wave: Wave, params: SimulationParams
) -> tuple[Latent, OrderLog]:
    """The incremental orders of a wave and how they change lives: a welcome coupon can bring the
    first order forward, a win-back coupon ends a dormancy, a care call postpones a death."""
    hit = np.flatnonzero(wave.effect)
    member, action = wave.member[hit], wave.action[hit]
    when = wave.day + rng.random(len(hit)) * params.response_window_days
    inside = when < params.days
    member, action, when = member[inside], action[inside], when[inside]
    activation, dormancy = latent.activation.copy(), latent.dormancy.copy()
    by_act, by_rev = latent.activation_by_campaign.copy(), latent.revival_by_campaign.copy()
    first = (action == ACTION_INDEX["welcome_coupon"]) & (when < activation[member])
    activation[member[first]], by_act[member[first]] = when[first], True
    death = latent.death[member]
    back = (action == ACTION_INDEX["winback_coupon"]) & (wave.day >= death)
    back &= when < latent.revival[member]
    dormancy[member[back]], by_rev[member[back]] = (when - death)[back], True
    ext, ext2 = latent.extension.copy(), latent.extension2.copy()
    alive = latent.alive(wave.day)[member]
    care = member[(action == ACTION_INDEX["churn_care_call"]) & alive]
    more = rng.exponential(params.care_extension_days, len(care))
    in_first = wave.day < latent.death[care]
    ext[care[in_first]] += more[in_first]
    ext2[care[~in_first]] += more[~in_first]
    changed = latent.with_changes(
        activation=activation,
        dormancy=dormancy,
        extension=ext,
        extension2=ext2,
        activation_by_campaign=by_act,
        revival_by_campaign=by_rev,
    )
    coupon = np.where(np.isin(action, COUPON_ACTIONS), action, NO_COUPON)
    gross = draw_spend(rng, changed, member, params.order_spend_shape)
    return changed, order_log(member, when, gross, coupon, np.where(coupon >= 0, wave.number, -1))


@dataclass(frozen=True)
class ContactLog:
    """All waves' contacts in send order (the fields of `Wave`, one entry per contact)."""

    wave: np.ndarray
    day: np.ndarray
    member: np.ndarray
    action: np.ndarray
    treated: np.ndarray
    channel: np.ndarray
    segment: np.ndarray
    uplift: np.ndarray
    value: np.ndarray
    cost: np.ndarray
    effect: np.ndarray

    def __len__(self) -> int:
        return len(self.member)


def contact_log(waves: list[Wave]) -> ContactLog:
    """Concatenate waves into one log."""
    fields = [f for f in ContactLog.__annotations__ if f not in ("wave", "day")]
    columns = {f: np.concatenate([getattr(w, f) for w in waves] or [np.zeros(0)]) for f in fields}
    sizes = [len(w.member) for w in waves]
    numbers = np.repeat([w.number for w in waves], sizes).astype(np.int32)
    days = np.repeat([w.day for w in waves], sizes).astype(float)
    columns["member"] = columns["member"].astype(np.int64)
    columns["action"] = columns["action"].astype(np.int64)
    columns["channel"] = columns["channel"].astype(np.int64)
    columns["treated"] = columns["treated"].astype(bool)
    columns["effect"] = columns["effect"].astype(bool)
    return ContactLog(wave=numbers, day=days, **columns)


def redeem_coupons(
    rng: np.random.Generator, orders: OrderLog, contacts: ContactLog, params: SimulationParams
) -> OrderLog:
    """Members who were sent a coupon but bought anyway use it on their next order within the
    window with probability `coupon_redeem_prob`: discount given away without an extra order."""
    sent = np.flatnonzero(
        contacts.treated & ~contacts.effect & np.isin(contacts.action, COUPON_ACTIONS)
    )
    nxt = first_order_after(
        orders, contacts.member[sent], contacts.day[sent], params.response_window_days, params.days
    )
    ok = (nxt >= 0) & (rng.random(len(sent)) < params.coupon_redeem_prob)
    sent, nxt = sent[ok], nxt[ok]
    ok = orders.action[nxt] == NO_COUPON
    nxt, first = np.unique(nxt[ok], return_index=True)
    sent = sent[ok][first]
    action, wave = orders.action.copy(), orders.wave.copy()
    action[nxt], wave[nxt] = contacts.action[sent], contacts.wave[sent]
    return OrderLog(orders.member, orders.time, orders.gross, action, wave)


def first_order_after(
    orders: OrderLog, member: np.ndarray, day: np.ndarray, window: float, days: int
) -> np.ndarray:
    """Position of each member's first order in (day, day + window], or -1. `orders` must be
    sorted by member then time."""
    span = days + 2 * window + 1.0
    keys = orders.member * span + orders.time
    pos = np.searchsorted(keys, member * span + day, side="right")
    safe = np.minimum(pos, max(len(orders) - 1, 0))
    if len(orders) == 0:
        return np.full(len(member), -1)
    ok = (pos < len(orders)) & (orders.member[safe] == member)
    ok &= orders.time[safe] <= day + window
    return np.where(ok, safe, -1)


def responses(
    orders: OrderLog, amount: np.ndarray, contacts: ContactLog, params: SimulationParams
) -> tuple[np.ndarray, np.ndarray]:
    """Per contact (both groups): day of the first order within the response window after the
    send (inf if none) and its paid amount (currency, NaN if none)."""
    pos = first_order_after(
        orders, contacts.member, contacts.day, params.response_window_days, params.days
    )
    hit = pos >= 0
    day = np.where(hit, orders.time[np.maximum(pos, 0)], np.inf)
    value = np.where(hit, amount[np.maximum(pos, 0)] if len(amount) else 0.0, np.nan)
    return day, value
