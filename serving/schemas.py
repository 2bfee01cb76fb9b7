"""Request and response bodies of the score API (inputs and outputs are separate models)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

MAX_BATCH = 1000
Grade = Literal["A", "B", "C", "D"]  # a model version's quality grade, A best
MemberId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---- inputs -------------------------------------------------------------------------------------


class MembersIn(_In):
    """Members to score or decide for, at most 1,000 per call, each id once."""

    member_ids: list[MemberId] = Field(
        min_length=1, max_length=MAX_BATCH, json_schema_extra={"uniqueItems": True}
    )

    @field_validator("member_ids")
    @classmethod
    def _each_once(cls, member_ids: list[str]) -> list[str]:
        """Refuse a list naming a member twice (422 naming the ids), rather than merging."""
        twice = [m for m, n in Counter(member_ids).items() if n > 1]
        if twice:
            more = f" and {len(twice) - 10} more" if len(twice) > 10 else ""
            raise ValueError(f"duplicate member ids: {', '.join(twice[:10])}{more}; send each once")
        return member_ids


def _not_a_number(value: object) -> object:
    """Refuse a number for a time (pydantic would read it as Unix seconds or milliseconds)."""
    if isinstance(value, int | float):
        raise ValueError("give an ISO 8601 time with a zone, e.g. 2026-06-02T10:00:00+02:00")
    return value


# A contact time: ISO 8601 text with a zone; its plausibility window is checked by the route.
ZonedTime = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
ActionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="An action id of the catalogue (decisions/actions.yaml).",
    ),
]
Channel = Literal["email", "sms", "push", "app", "call", "mail"]
Group = Literal["treatment", "control"]
# A finite amount of the dataset currency: no booleans, no text, no inf / NaN / 1e309.
Amount = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]


class ContactIn(_In):
    """An action sent to a member (or held back: group 'control')."""

    member_id: MemberId
    action_id: ActionId
    channel: Channel
    group: Group = "treatment"
    contact_id: MemberId | None = Field(None, description="Your id for it; generated if absent.")
    sent_at: ZonedTime | None = Field(
        None, description="When it was sent, with a zone (default: now, UTC)."
    )


class ContactPatch(_In):
    """Corrections to a recorded contact: the fields given replace the stored ones."""

    action_id: ActionId | None = None
    channel: Channel | None = None
    group: Group | None = None
    sent_at: ZonedTime | None = None

    @model_validator(mode="after")
    def _something_to_correct(self) -> ContactPatch:
        given = {name for name in self.model_fields_set if getattr(self, name) is not None}
        if not given:
            raise ValueError("give at least one of action_id, channel, group, sent_at")
        return self


class ConsentIn(_In):
    """A member's consent as of `changed_at`: it replaces the earlier one in every decision
    from the next on (personalisation off: only generic actions; marketing withdrawn: no
    marketing action; no contact on a channel opted out of)."""

    consent_marketing: bool = Field(description="The member accepts marketing contacts.")
    consent_personalization: bool = Field(
        description="The member accepts personalised recommendations (false: only generic ones)."
    )
    channels_opted_out: list[Channel] = Field(
        default_factory=list,
        max_length=6,
        description="Channels never to contact the member on, whatever the flags.",
    )
    changed_at: ZonedTime | None = Field(
        None, description="When the member changed it, with a zone (default: now, UTC)."
    )


class ResponseIn(_In):
    """A member's response to an earlier contact."""

    responded_at: ZonedTime | None = Field(
        None, description="When, with a zone, not before the send (default: now, UTC)."
    )
    value: Amount = Field(0.0, description="Value of the response in the dataset currency.")


# ---- score outputs ------------------------------------------------------------------------------


class HorizonProbability(_Out):
    """A probability over the next `horizon_days` days."""

    horizon_days: int
    probability: float = Field(ge=0, le=1)
    model: str = Field(description="Registry name of the model that produced it.")


class Interval(_Out):
    """An amount in `currency` over the next `horizon_days` days: its expected value (`mean`,
    the number to sort and sum) and a p10 / p50 / p90 interval."""

    horizon_days: int
    currency: str
    mean: float | None = Field(
        None,
        ge=0,
        description="Expected amount (the mean); null when the served model predicts no mean.",
    )
    p10: float
    p50: float
    p90: float


class NextTier(_Out):
    """The tier above the member's and when they may reach it. The tier follows the growth
    value, net spend over the rolling 365 days: spend older than that leaves it, so the
    distance can grow before new spend closes it. Timing comes from the spend forecast
    (`spend`): null for members who never ordered and while no clv model is served."""

    name: str | None = Field(description="The next tier; null when the store does not say.")
    distance: float = Field(description="Growth value still needed to reach it (`currency`).")
    currency: str
    period_days: int = Field(description="The tier period: days ahead in which reaching it counts.")
    expected_date: date | None = Field(
        None,
        description="The day the expected growth value reaches the tier (spending at the "
        "expected rate, spend.mean over spend.horizon_days, while old spend leaves the "
        "window); null when that is not within period_days.",
    )
    probability_within_period: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Chance of reaching the tier within period_days, from the spend interval "
        "(p10 / p50 / p90) and expected spend.",
    )


class Stage(_Out):
    """Lifecycle stage and the rule that placed the member there."""

    stage: str
    rule: str


class Reason(_Out):
    """A plain-word reason behind a score, strongest first."""

    code: str
    text: str
    model: str
    impact: float = Field(description="Contribution to the model's raw score (log-odds units).")


class MemberScores(_Out):
    """Everything known about one member's outlook. Amounts are in `currency`."""

    member_id: str
    insufficient_history: bool = Field(
        description="True when the member never ordered: only profile-based scores are given."
    )
    churn: list[HorizonProbability]
    activation: HorizonProbability | None = Field(
        description="Likelihood of a first order, for members who never ordered; null for "
        "members with orders and while no activation model is served (it is optional)."
    )
    spend: Interval | None = Field(description="Undiscounted spend over the clv model's horizon.")
    clv: Interval | None = Field(
        description="Spend over the same horizon discounted at the monthly discount rate."
    )
    orders_mean: float | None = Field(
        None,
        ge=0,
        description="Expected number of orders over the clv model's horizon (spend.horizon_days).",
    )
    p_alive: float | None = Field(
        None,
        ge=0,
        le=1,
        description="P(still a customer) at `features_as_of`, from the BTYD outlook.",
    )
    expected_next_order_date: date | None
    next_tier: NextTier | None = Field(
        None, description="The next tier and upgrade timing; null at the top tier."
    )
    rfm_segment: str | None
    lifecycle: Stage
    tags: list[str]
    reasons: list[Reason]
    model_versions: dict[str, str]
    features_as_of: datetime | None = Field(description="Snapshot cutoff of the features (UTC).")


class ScoresOut(_Out):
    """Scores of the members found; ids the feature store does not know are in `not_found`."""

    scores: list[MemberScores]
    not_found: list[str]


# ---- next-best-action outputs -------------------------------------------------------------------


class ActionOut(_Out):
    """A candidate action with its expected value (incremental, in `currency` per contact).

    `no_action` (channel None, value 0) is chosen when nothing is allowed and worth sending."""

    action_id: str
    channel: str | None
    expected_value: float
    currency: str
    reasons: list[str] = []


class NextBestActionOut(_Out):
    """The chosen action, ranked allowed alternatives and why."""

    member_id: str
    action: ActionOut
    alternatives: list[ActionOut]
    expected_value: float
    reasons: list[str]
    control_group: bool = Field(description="Member belongs to the persistent control group.")
    lifecycle: Stage
    model_versions: dict[str, str]


class NextBestActionsOut(_Out):
    """Decisions of the members found; unknown ids are in `not_found`."""

    decisions: list[NextBestActionOut]
    not_found: list[str]


# ---- contacts, models, health -------------------------------------------------------------------


class ContactOut(_Out):
    """What was recorded in the contact log."""

    contact_id: str
    member_id: str
    event: Literal["sent", "response"]
    at: datetime


class ContactRecordOut(_Out):
    """A contact as the log holds it, with its latest response (null without one); UTC."""

    contact_id: str
    member_id: str
    action_id: str
    channel: str
    group: str
    sent_at: datetime
    responded_at: datetime | None
    response_value: float | None


class ModelOut(_Out):
    """A served model version and the quality training recorded for it (null when untagged)."""

    name: str
    version: str
    alias: str
    run_id: str
    loaded_at: datetime
    quality_grade: Grade | None = Field(
        None, description="A (best) to D (not promoted without force)."
    )
    quality_notes: str | None = Field(None, description="Why the grade, in a few words.")
    horizon_days: int | None = Field(None, description="Days the model forecasts.")
    label_horizon_days: int | None = Field(
        None,
        description="Days of labelled history the model was fitted on; below horizon_days "
        "when its forecast was extended with BTYD.",
    )


NOT_SERVED = (
    "Optional models the bundle in service lacks, by name, and why (activation while no "
    "champion is registered); their scores are null."
)


class ModelsOut(_Out):
    """The bundle in service, the optional models it lacks, and the last reload error if the
    latest reload failed."""

    models: list[ModelOut]
    bundle_loaded_at: datetime | None
    last_error: str | None
    not_served: dict[str, str] = Field(default_factory=dict, description=NOT_SERVED)


class ReloadOut(_Out):
    """Result of a reload: whether a new bundle was swapped in, and what now serves."""

    swapped: bool
    models: dict[str, str]


class Health(_Out):
    """Liveness or readiness; `reasons` says what is not ready."""

    status: Literal["ok", "unavailable"]
    reasons: list[str] = []


class Readiness(Health):
    """Readiness, and (only when there are) the optional models not served (ready without
    them) and the error of a failed reload (ready: the loaded bundle serves)."""

    not_served: dict[str, str] | None = Field(None, description=NOT_SERVED)
    last_error: str | None = Field(
        None,
        description="Why the latest model reload failed (e.g. a version refused as damaged, "
        "naming model, version and file), while the bundle in service keeps serving; left out "
        "when it succeeded.",
    )


class ConsentOut(_Out):
    """A member's effective consent: the latest change the register holds (`source` 'api' or
    'ingest'), or `source` 'snapshot' with the feature store's flags when none was made."""

    member_id: str
    consent_marketing: bool | None
    consent_personalization: bool | None
    channels_opted_out: list[Channel]
    changed_at: datetime | None
    source: Literal["api", "ingest", "snapshot"]
