"""Engine: highest positive expected value wins, otherwise no_action, with reasons in words."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from decisions.catalogue import Catalogue
from decisions.engine import DecisionBatch, next_best_action, next_best_actions
from decisions.guardrails import contact_history
from decisions.uplift import (
    LEARNED,
    PRIOR,
    UpliftArrays,
    UpliftModel,
    catalogue_priors,
    prior_only_model,
)
from memberscore.decision_settings import DecisionSettings, GuardrailPolicy

NOW = pd.Timestamp("2025-06-01", tz="UTC")
POLICY = GuardrailPolicy(control_share=0.0)
NO_CONTACTS = pd.DataFrame(columns=["member_id", "action_id", "sent_at", "group"])


def members(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {"consent_marketing": True, "consent_personalization": True, "x": 0.0},
        index=pd.Index([f"m{i}" for i in range(n)], name="member_id"),
    )


def stages(n: int = 3, stage: str = "growing") -> pd.DataFrame:
    return pd.DataFrame(
        {"stage": stage, "rule": "3 orders, first order 200 days ago"},
        index=pd.Index([f"m{i}" for i in range(n)], name="member_id"),
    )


def uplift(values: list[list[float]], source: tuple[str, str] = (LEARNED, LEARNED)) -> UpliftArrays:
    """Uplift value per member (rows) for coupon and reminder; probability = value / 50."""
    value = np.array(values, dtype=float)
    return UpliftArrays(
        actions=["coupon", "reminder"],
        prob=value / 50.0,
        value=value,
        base_prob=np.zeros(len(value)),
        base_value=np.zeros(len(value)),
        source=list(source),
        treated=[1000, 40],
        control=[1000, 30],
        min_treated=300,
        min_control=300,
    )


def decide(catalogue: Catalogue, values: list[list[float]], **kwargs: object) -> DecisionBatch:
    frame = kwargs.pop("features", members(len(values)))
    assert isinstance(frame, pd.DataFrame)
    history = contact_history(NO_CONTACTS, frame.index, catalogue, NOW, POLICY)
    st = kwargs.pop("stages", stages(len(values)))
    return next_best_actions(frame, st, catalogue, uplift(values, **kwargs), history, POLICY)


def test_highest_expected_value_wins(catalogue: Catalogue) -> None:
    batch = decide(catalogue, [[10.0, 2.0], [3.5, 4.0], [2.0, 1.5]])

    chosen = batch.to_frame()
    # EV = uplift value - cost: coupon costs 3, reminder 1
    assert chosen["action_id"].tolist() == ["coupon", "reminder", "reminder"]
    assert chosen["expected_value"].tolist() == pytest.approx([7.0, 3.0, 0.5])
    assert chosen["channel"].tolist() == ["email", "push", "push"]


def test_no_action_when_no_expected_value_is_positive(catalogue: Catalogue) -> None:
    batch = decide(catalogue, [[3.0, 1.0], [0.0, -2.0]])

    decision = batch.explain("m0")

    assert batch.to_frame()["action_id"].tolist() == ["no_action", "no_action"]
    assert decision.action.action_id == "no_action"
    assert decision.action.expected_value == 0.0
    assert "no eligible action has positive expected value" in decision.reasons[-1]
    assert [o.action_id for o in decision.alternatives] == ["coupon", "reminder"]


def test_reasons_give_stage_numbers_eligibility_and_prior(catalogue: Catalogue) -> None:
    batch = decide(catalogue, [[1.0, 5.0]], source=(LEARNED, PRIOR))

    decision = batch.explain("m0")

    assert decision.action.action_id == "reminder"
    assert decision.reasons[0] == "stage growing: 3 orders, first order 200 days ago"
    ev, eligible, prior = decision.action.reasons
    assert ev == (
        "expected value +4.00 USD = incremental value 5.00 - cost 1.00 "
        "(response probability +10.0 points vs no contact)"
    )
    assert "x > -5 (member: 0.0)" in eligible and "consent given" in eligible
    assert (
        prior
        == "prior used: too little history (40 treated, 30 control contacts; needs 300 and 300)"
    )


def test_stage_and_conditions_restrict_actions(catalogue: Catalogue) -> None:
    frame = members(2)
    frame.loc["m1", "x"] = -9.0  # fails the reminder's x > -5

    batch = decide(catalogue, [[0.0, 9.0], [0.0, 9.0]], features=frame, stages=stages(2, "new"))

    assert batch.to_frame()["action_id"].tolist() == ["no_action", "no_action"]
    assert "reminder meant for growing, mature, not new" in batch.explain("m0").reasons[-1]


def test_control_group_is_flagged_and_gets_nothing(catalogue: Catalogue) -> None:
    frame = members(400)
    policy = GuardrailPolicy(control_share=0.25)
    history = contact_history(NO_CONTACTS, frame.index, catalogue, NOW, policy)
    values = [[20.0, 20.0]] * 400

    out = next_best_actions(
        frame, stages(400), catalogue, uplift(values), history, policy
    ).to_frame()

    held = out[out["control_group"]]
    assert 60 < len(held) < 140
    assert (held["action_id"] == "no_action").all()
    assert (out.loc[~out["control_group"], "action_id"] == "reminder").all(), "EV 19 beats 17"


def test_single_member_entry_point(catalogue: Catalogue) -> None:
    rng = np.random.default_rng(0)
    log = pd.DataFrame(
        {
            "x": rng.normal(size=400),
            "action_id": rng.choice(["coupon", "reminder"], size=400),
            "group": rng.choice(["treatment", "control"], size=400),
            "responded": rng.random(400) < 0.1,
        }
    )
    log["response_value"] = np.where(log["responded"], 50.0, 0.0)
    model = UpliftModel(["x"], min_treated=10_000).fit(log, catalogue_priors(catalogue))
    features = {
        "consent_marketing": True,
        "consent_personalization": False,
        "x": 1.0,
        "has_ordered": True,
        "days_since_registration": 400,
        "days_since_first_order": 300,
        "recency_days": 20,
        "frequency": 3,
        "days_overdue": 0,
        "last_gap_days": 40,
    }
    decision = next_best_action(
        "m9",
        features=features,
        scores={"churn": 0.1},
        contacts=NO_CONTACTS,
        now=NOW,
        catalogue=catalogue,
        uplift=model,
        settings=DecisionSettings(),
    )

    assert decision.stage == "growing"
    # priors: coupon 0.05 x 50 - 3 = -0.5, reminder blocked (no personalization consent)
    assert decision.action.action_id == "no_action"
    assert decision.reasons[-1] == (
        "no eligible action has positive expected value (best: coupon at -0.50 USD); "
        "blocked: reminder opted out of personalization"
    )
    assert decision.alternatives[0].reasons[-1].startswith("prior used: too little history")


def test_a_member_without_orders_is_decided_without_an_activation_score() -> None:
    """Given a member who never ordered and no activation score (no activation model: every
    member of the programme has bought), the decision needs none: stage `registered` from
    `has_ordered`, and the action with the best prior expected value among the shipped
    catalogue's registered-stage actions."""
    from decisions.catalogue import load_catalogue
    from decisions.uplift import prior_only_model

    shipped = load_catalogue()
    features = {
        "consent_marketing": True,
        "consent_personalization": True,
        "has_ordered": False,
        "days_since_registration": 12,
        "days_since_first_order": None,
        "recency_days": None,
        "frequency": 0,
        "days_overdue": None,
        "last_gap_days": None,
        "distance_to_next_tier": 100.0,
        "tier": "basic",
    }

    decision = next_best_action(
        "n1",
        features=features,
        scores={"churn": None, "activation": None, "clv_mean": None, "p_alive": None},
        contacts=NO_CONTACTS,
        now=NOW,
        catalogue=shipped,
        uplift=prior_only_model(shipped),
        settings=DecisionSettings(guardrails=POLICY),
    )

    assert decision.stage == "registered"
    # priors: onboarding_recs 0.015 x 40 - 0.05 = +0.55 beats welcome_coupon 0.04 x 45 - 2
    assert decision.action.action_id == "onboarding_recs", decision.reasons
    assert decision.action.expected_value == pytest.approx(0.55)


def test_single_member_decision_survives_a_poisoned_contact_log(catalogue: Catalogue) -> None:
    """Issue 14 finding 3: contacts stored with sends outside 1677-2262 (object datetimes, as a
    database returns them) still give the member a decision; the readable contact still
    blocks its action by cooldown."""
    log = pd.DataFrame(
        {
            "member_id": ["m9", "m9", "m9"],
            "action_id": ["coupon", "reminder", "coupon"],
            "sent_at": [
                datetime(5138, 11, 16, tzinfo=UTC),
                datetime(1, 1, 1, tzinfo=UTC),
                (NOW - pd.Timedelta(days=2)).to_pydatetime(),
            ],
            "group": "treatment",
            "response_value": [float("inf"), float("nan"), 0.0],
        }
    )
    features = {
        "consent_marketing": True,
        "consent_personalization": True,
        "x": 1.0,
        "has_ordered": True,
        "days_since_registration": 400,
        "days_since_first_order": 300,
        "recency_days": 20,
        "frequency": 3,
        "days_overdue": 0,
        "last_gap_days": 40,
    }

    decision = next_best_action(
        "m9",
        features=features,
        scores={"churn": 0.1},
        contacts=log,
        now=NOW,
        catalogue=catalogue,
        uplift=prior_only_model(catalogue),
        settings=DecisionSettings(guardrails=POLICY),
    )

    # priors: reminder 0.01 x 50 - 1 = -0.5, not blocked (its only send is in year 1)
    assert decision.action.action_id == "no_action"
    assert decision.reasons[-1] == (
        "no eligible action has positive expected value (best: reminder at -0.50 USD); "
        "blocked: coupon in cooldown (sent 2 days ago, cooldown 14 days)"
    ), "the readable send is a cooldown, the unreadable ones are skipped"


def _nudge_only() -> Catalogue:
    """The shipped tier-upgrade nudge (and no_action) alone."""
    from decisions.catalogue import NO_ACTION, load_catalogue

    shipped = load_catalogue()
    kept = tuple(a for a in shipped.actions if a.id in ("tier_upgrade_nudge", NO_ACTION))
    return shipped.model_copy(update={"actions": kept})


def test_the_tier_nudge_goes_only_to_members_within_reach_of_the_next_tier() -> None:
    """Given growing members with a 0.8, a 0.2 and no chance known (top tier) of reaching the
    next tier this period, only the first is nudged; the others are told why not."""
    from decisions.engine import decide

    catalogue = _nudge_only()
    features = members(3)
    scores = pd.DataFrame({"next_tier_probability": [0.8, 0.2, np.nan]}, index=features.index)

    batch = decide(
        features, stages(3), catalogue, prior_only_model(catalogue), NO_CONTACTS, NOW, POLICY,
        scores=scores,
    )  # fmt: skip

    assert batch.to_frame()["action_id"].tolist() == [
        "tier_upgrade_nudge",
        "no_action",
        "no_action",
    ]
    assert "next_tier_probability >= 0.5 (member: 0.8)" in batch.explain("m0").action.reasons[1]
    why = batch.explain("m1").reasons[-1]
    assert "tier_upgrade_nudge next_tier_probability >= 0.5 fails (member: 0.2)" in why, why
    assert "next_tier_probability >= 0.5 fails" in batch.explain("m2").reasons[-1]


def test_the_engine_needs_the_scores_its_conditions_read() -> None:
    """Without the scores, a condition on one is a clear error; the one-member entry point
    reads an absent score as missing (not eligible)."""
    from decisions.catalogue import CatalogueError
    from decisions.engine import decide

    catalogue = _nudge_only()
    model = prior_only_model(catalogue)
    with pytest.raises(CatalogueError, match=r"next_tier_probability.*hand the scores"):
        decide(members(1), stages(1), catalogue, model, NO_CONTACTS, NOW, POLICY)
    decision = next_best_action(
        "m0",
        features={
            "consent_marketing": True,
            "consent_personalization": True,
            "has_ordered": True,
            "days_since_registration": 300,
            "days_since_first_order": 200,
            "recency_days": 10,
            "frequency": 3,
            "days_overdue": -5,
            "last_gap_days": 20,
        },
        scores={"churn": 0.1},
        contacts=NO_CONTACTS,
        now=NOW,
        catalogue=catalogue,
        uplift=model,
        settings=DecisionSettings(guardrails=POLICY),
    )
    assert decision.stage == "growing", decision.stage_rule
    assert decision.action.action_id == "no_action"
    assert "next_tier_probability >= 0.5 fails (member: nan)" in decision.reasons[-1]
