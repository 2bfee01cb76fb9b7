"""Who registers, when, and each member's latent lifecycle (activation, rates, lifetimes).

A member registers, activates with their first order (some never do), buys while alive at a
member-specific rate (Pareto/NBD-like: rate ~ Gamma, lifetime ~ Exponential with a Gamma-
distributed dropout rate), dies, and may be won back once after a dormancy. All times are float
days since the start of the window; `inf` means "never".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from simulator.params import ACQUISITION_CHANNELS, PAID_CHANNELS, SimulationParams


@dataclass(frozen=True)
class Population:
    """Observable attributes per member (index = member number)."""

    registered: np.ndarray  # days
    channel: np.ndarray  # index into ACQUISITION_CHANNELS
    region: np.ndarray  # index into REGIONS
    gender: np.ndarray  # index into GENDER_CODES, -1 = missing
    birth_year: np.ndarray  # year, 0 = missing
    birth_month: np.ndarray  # 1..12 (latent: not in the members table)
    consent_marketing: np.ndarray  # bool
    consent_personalization: np.ndarray  # bool

    @property
    def paid(self) -> np.ndarray:
        """True for members acquired through a paid channel."""
        codes = [ACQUISITION_CHANNELS.index(c) for c in PAID_CHANNELS]
        return np.isin(self.channel, codes)


@dataclass(frozen=True)
class Latent:
    """Hidden lifecycle per member. Campaign effects replace fields through `replace`."""

    activation: np.ndarray  # days; inf = never activates
    lifetime: np.ndarray  # days alive after activation (first life), before extensions
    dormancy: np.ndarray  # days dead between first death and win-back; inf = never back
    lifetime2: np.ndarray  # days alive after win-back
    extension: np.ndarray  # days added to the first life by care calls
    extension2: np.ndarray  # days added to the second life by care calls
    rate: np.ndarray  # orders/day while alive, before seasonality
    dropout: np.ndarray  # 1/days: hazard of death while alive
    mean_spend: np.ndarray  # currency per order (Gamma-Gamma mean)
    engagement: np.ndarray  # browse events/day while alive and not fading
    fade_days: np.ndarray  # days before death over which engagement fades
    shares: np.ndarray  # (members, 3) purchase channel mix online/store/app
    activation_by_campaign: np.ndarray  # bool: first order caused by a welcome coupon
    revival_by_campaign: np.ndarray  # bool: win-back caused by a win-back coupon

    @property
    def death(self) -> np.ndarray:
        """End of the first life (days)."""
        return self.activation + self.lifetime + self.extension

    @property
    def revival(self) -> np.ndarray:
        """Start of the second life (days); inf if never won back."""
        return self.death + self.dormancy

    @property
    def death2(self) -> np.ndarray:
        """End of the second life (days); inf if never won back."""
        return self.revival + self.lifetime2 + self.extension2

    def alive(self, t: float | np.ndarray) -> np.ndarray:
        """True where the member is alive at day `t`."""
        first = (self.activation <= t) & (t < self.death)
        return first | ((self.revival <= t) & (t < self.death2))

    def with_changes(self, **fields: np.ndarray) -> Latent:
        """A copy with the given fields replaced."""
        return replace(self, **fields)


def _registration_days(rng: np.random.Generator, params: SimulationParams) -> np.ndarray:
    """Registration times with a density rising linearly by `registration_growth` (days)."""
    g, u = params.registration_growth, rng.random(params.members)
    if g <= 0:
        return np.sort(u * params.days)
    days = params.days * (np.sqrt(1 + g * (2 + g) * u) - 1) / g
    return np.sort(np.minimum(days, np.nextafter(params.days, 0)))


def draw_population(rng: np.random.Generator, params: SimulationParams) -> Population:
    """Registrations spread over the window, with channel, region, gender, birth and consents."""
    n = params.members
    gender_p = np.append(params.gender_share, 1 - sum(params.gender_share))
    gender = rng.choice(len(gender_p), size=n, p=gender_p)
    gender = np.where(gender == len(gender_p) - 1, -1, gender)
    age = np.clip(rng.gamma(6.0, 6.5, n) + 14, 16, 90).astype(int)
    birth_year = np.where(rng.random(n) < params.birth_year_missing, 0, params.start.year - age)
    marketing = rng.random(n) < params.consent_marketing
    p_pers = np.where(
        marketing, params.personalization_if_marketing, params.personalization_otherwise
    )
    return Population(
        registered=_registration_days(rng, params),
        channel=rng.choice(len(params.channel_share), size=n, p=params.channel_share),
        region=rng.choice(len(params.region_share), size=n, p=params.region_share),
        gender=gender,
        birth_year=np.minimum(birth_year, 2020),
        birth_month=rng.integers(1, 13, n),
        consent_marketing=marketing,
        consent_personalization=rng.random(n) < p_pers,
    )


def _gamma(rng: np.random.Generator, mean: float, shape: float, n: int) -> np.ndarray:
    return rng.gamma(shape, mean / shape, n)


def _channel_shares(rng: np.random.Generator, pop: Population) -> np.ndarray:
    """Dirichlet purchase-channel mix; store sign-ups buy mostly in store."""
    store = pop.channel == ACQUISITION_CHANNELS.index("store_signup")
    alpha = np.where(store[:, None], [0.8, 4.0, 0.8], [3.0, 1.2, 1.8])
    draws = rng.gamma(alpha)
    return draws / draws.sum(axis=1, keepdims=True)


def draw_latent(rng: np.random.Generator, pop: Population, params: SimulationParams) -> Latent:
    """Latent activation, purchase and dropout rates, lifetimes, spend and engagement."""
    n, ch = len(pop.registered), pop.channel
    will = rng.random(n) < np.asarray(params.activation_prob)[ch] * np.where(
        pop.consent_personalization, 1.06, 0.94
    )
    shape = params.activation_delay_shape
    delay = rng.gamma(shape, np.asarray(params.activation_delay_days)[ch] / shape)
    rate = _gamma(rng, params.purchase_rate_mean, params.purchase_rate_shape, n)
    rate *= np.asarray(params.rate_by_channel)[ch]
    dropout = _gamma(rng, params.dropout_rate_mean, params.dropout_rate_shape, n)
    back = rng.random(n) < params.revival_prob
    noise = rng.lognormal(-0.5 * params.engagement_sigma**2, params.engagement_sigma, n)
    relative_rate = np.sqrt(rate / params.purchase_rate_mean)
    zeros = np.zeros(n)
    return Latent(
        activation=np.where(will, pop.registered + delay, np.inf),
        lifetime=rng.exponential(1.0, n) / dropout,
        dormancy=np.where(back, _gamma(rng, params.dormancy_mean_days, 2.0, n), np.inf),
        lifetime2=rng.exponential(1.0, n) / dropout,
        extension=zeros,
        extension2=zeros.copy(),
        rate=rate,
        dropout=dropout,
        mean_spend=_gamma(rng, params.mean_spend, params.mean_spend_shape, n)
        * np.asarray(params.region_spend)[pop.region],
        engagement=params.engagement_mean * relative_rate * noise,
        fade_days=rng.uniform(*params.fade_days, n),
        shares=_channel_shares(rng, pop),
        activation_by_campaign=np.zeros(n, dtype=bool),
        revival_by_campaign=np.zeros(n, dtype=bool),
    )
