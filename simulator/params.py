"""Simulation parameters and the fixed catalogues (channels, regions, actions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

ACQUISITION_CHANNELS = (
    "organic",
    "paid_search",
    "social",
    "referral",
    "store_signup",
    "marketplace",
)
PAID_CHANNELS = ("paid_search", "social", "marketplace")
REGIONS = ("north", "south", "east", "west", "central", "overseas")
GENDER_CODES = ("female", "male", "other", "unknown")
PURCHASE_CHANNELS = ("online", "store", "app")
CONTACT_CHANNELS = ("email", "sms", "push", "app", "call")
ACTIONS = (
    "welcome_coupon",
    "onboarding_recs",
    "double_points",
    "tier_upgrade_nudge",
    "benefit_reminder",
    "vip_early_access",
    "birthday_gift",
    "winback_coupon",
    "churn_care_call",
)
ACTION_INDEX = {name: i for i, name in enumerate(ACTIONS)}
COUPON_DISCOUNT = {"welcome_coupon": 0.15, "winback_coupon": 0.20, "birthday_gift": 0.10}
"""Share of the order value an action's coupon takes off (actions without a coupon: none)."""


@dataclass(frozen=True)
class SimulationParams:
    """Every knob of the simulator. Rates are per day, durations in days, money in currency.

    Tuples indexed by acquisition channel follow `ACQUISITION_CHANNELS`.
    """

    members: int
    days: int
    start: date
    registration_growth: float = 0.6  # registrations/day at the end ÷ at the start − 1
    channel_share: tuple[float, ...] = (0.30, 0.18, 0.15, 0.10, 0.17, 0.10)
    activation_prob: tuple[float, ...] = (0.70, 0.50, 0.45, 0.78, 0.85, 0.58)
    activation_delay_days: tuple[float, ...] = (14.0, 24.0, 30.0, 8.0, 2.0, 16.0)
    activation_delay_shape: float = 0.7
    rate_by_channel: tuple[float, ...] = (1.0, 0.9, 0.85, 1.2, 1.1, 0.8)
    region_share: tuple[float, ...] = (0.22, 0.20, 0.18, 0.18, 0.17, 0.05)
    region_spend: tuple[float, ...] = (1.0, 0.9, 1.05, 1.0, 1.15, 1.3)
    gender_share: tuple[float, ...] = (0.47, 0.39, 0.02, 0.02)  # remainder: missing
    birth_year_missing: float = 0.15
    consent_marketing: float = 0.70
    personalization_if_marketing: float = 0.75
    personalization_otherwise: float = 0.25
    purchase_rate_mean: float = 0.024  # orders/day while alive, before seasonality
    purchase_rate_shape: float = 1.1
    dropout_rate_mean: float = 1 / 330  # 1/days
    dropout_rate_shape: float = 3.0
    revival_prob: float = 0.18
    dormancy_mean_days: float = 200.0
    mean_spend: float = 55.0
    mean_spend_shape: float = 3.0
    order_spend_shape: float = 5.0
    promo_prob: float = 0.08
    return_prob: float = 0.05
    engagement_mean: float = 0.55  # browse events/day of an average alive member
    engagement_sigma: float = 0.5
    pre_activation_level: float = 0.6
    dead_level: float = 0.05
    fade_days: tuple[float, float] = (30.0, 90.0)
    fade_floor: float = 0.08
    wave_every_days: int = 14
    contact_share: float = 0.08  # of registered, marketing-consenting members per wave
    treatment_share: float = 0.5
    response_window_days: float = 14.0
    coupon_redeem_prob: float = 0.6
    care_extension_days: float = 120.0
    vip_spend: float = 85.0
    block_members: int = 50_000

    def __post_init__(self) -> None:
        if self.members <= 0 or self.days <= 0:
            raise ValueError(f"members and days must be positive (got {self.members}, {self.days})")

    @property
    def action_propensity(self) -> float:
        """Probability that a contacted member is assigned any one action (uniform)."""
        return 1 / len(ACTIONS)
