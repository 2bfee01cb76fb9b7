"""Decision settings: stage thresholds, guardrail policy and uplift history rules.

Kept free of heavy imports (pydantic only) because `memberscore.settings` embeds
`DecisionSettings` as its `decisions` field.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StageThresholds(BaseModel):
    """Thresholds of the lifecycle stage rules (see docs/decisions.md for the rule order)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    new_days: int = Field(
        default=90,
        gt=0,
        description="A member whose first order is at most this many days old is new.",
    )
    mature_min_orders: int = Field(
        default=5,
        gt=0,
        description="Orders needed (with mature_min_tenure_days) to be mature / loyal.",
    )
    mature_min_tenure_days: int = Field(
        default=365, gt=0, description="Days since the first order needed to be mature / loyal."
    )
    declining_churn: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Churn probability at or above which a buyer is declining.",
    )
    declining_overdue_days: float = Field(
        default=30.0,
        ge=0,
        description="Days past the member's own expected next order (days_overdue) at or "
        "above which a buyer is declining.",
    )
    dormant_days: int = Field(
        default=180, gt=0, description="Days without an order from which a buyer is dormant."
    )
    churned_days: int = Field(
        default=365, gt=0, description="Days without an order from which a buyer is churned."
    )
    won_back_days: int = Field(
        default=90,
        gt=0,
        description="A buyer whose previous gap was at least dormant_days and whose last order "
        "is at most this many days old is won back.",
    )


class GuardrailPolicy(BaseModel):
    """Contact guardrails applied on top of the catalogue's per-action rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    control_share: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description="Share of members held out in the persistent control group.",
    )
    control_salt: str = Field(
        default="memberscore-control-v1",
        min_length=1,
        description="Salt of the control-group hash; change it only to draw a new control group.",
    )
    max_contacts: int = Field(
        default=4,
        ge=0,
        description="Contacts (any action) a member may receive per max_contacts_days.",
    )
    max_contacts_days: int = Field(default=30, gt=0, description="Window of max_contacts (days).")


class UpliftSettings(BaseModel):
    """How much history an action needs before its learned uplift replaces the prior."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_treated: int = Field(default=300, ge=1, description="Treated contacts an action needs.")
    min_control: int = Field(default=300, ge=1, description="Control contacts an action needs.")
    holdout_days: int = Field(
        default=60,
        gt=0,
        description="Latest days of the contact log held out to measure Qini / AUUC.",
    )


class DecisionSettings(BaseModel):
    """Everything the decision engine reads from settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stages: StageThresholds = Field(default_factory=StageThresholds)
    guardrails: GuardrailPolicy = Field(default_factory=GuardrailPolicy)
    uplift: UpliftSettings = Field(default_factory=UpliftSettings)
