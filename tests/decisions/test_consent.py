"""Effective consent and channel opt-outs in the guardrails (issue 17)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from decisions.catalogue import load_catalogue
from decisions.engine import next_best_actions
from decisions.guardrails import (
    NO_CHANNEL,
    NO_MARKETING,
    NO_PERSONALIZATION,
    OK,
    ContactHistory,
    action_channels,
    effective_consent,
    guardrail_blocks,
    recheck_consent,
)
from decisions.uplift import prior_only_model
from memberscore.decision_settings import GuardrailPolicy

CATALOGUE = load_catalogue()
POLICY = GuardrailPolicy(control_share=0.0)
AT = pd.Timestamp("2026-06-02T08:00:00Z")


def _register(*rows: tuple[str, bool, bool, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [(*row, AT) for row in rows],
        columns=[
            "member_id",
            "consent_marketing",
            "consent_personalization",
            "channels_opted_out",
            "changed_at",
        ],
    )


def _snapshot(n: int) -> pd.DataFrame:
    """`n` members who consented to everything at the snapshot."""
    ids = pd.Index([f"m{i}" for i in range(n)])
    frame = pd.DataFrame({"consent_marketing": True, "consent_personalization": True}, index=ids)
    return frame.assign(**dict.fromkeys(CATALOGUE.features(), np.nan))  # conditions unmet


def _no_history(n: int) -> ContactHistory:
    k = len(CATALOGUE.ids)
    return ContactHistory(np.full((n, k), np.inf), np.zeros((n, k), int), np.zeros(n, int))


def test_register_entry_overrides_the_snapshot_flags() -> None:
    """Issue 17: the register's entry replaces the snapshot's flags; others keep theirs."""
    features = effective_consent(_snapshot(3), _register(("m1", True, False, "sms")))

    assert features["consent_personalization"].tolist() == [True, False, True]
    assert features["channels_opted_out"].tolist() == ["", "sms", ""]
    assert effective_consent(_snapshot(2), None)["channels_opted_out"].tolist() == ["", ""]


def test_blocks_follow_the_effective_consent() -> None:
    """Issue 17: personalisation off blocks personalised actions only; marketing withdrawn
    blocks every marketing action; all channels of an action refused blocks it."""
    register = _register(
        ("m0", True, False, ""), ("m1", False, True, ""), ("m2", True, True, "email,app,push")
    )
    features = effective_consent(_snapshot(3), register)

    blocks = guardrail_blocks(features, CATALOGUE, _no_history(3), POLICY)

    recs, points = CATALOGUE.ids.index("onboarding_recs"), CATALOGUE.ids.index("double_points")
    assert (blocks[0, recs], blocks[0, points]) == (NO_PERSONALIZATION, OK)
    assert (blocks[1, recs], blocks[1, points]) == (NO_MARKETING, NO_MARKETING)
    assert blocks[2, points] == NO_CHANNEL, "double_points goes by email, app or push only"


def test_first_channel_not_refused_is_used() -> None:
    """Issue 17: the engine sends on the first of the action's channels the member allows
    (before: always the first channel)."""
    features = effective_consent(_snapshot(2), _register(("m1", True, True, "email")))
    channels = action_channels(features, CATALOGUE)
    points = CATALOGUE.ids.index("double_points")  # channels email, app, push

    assert channels[:, points].tolist() == ["email", "app"]
    assert channels[:, CATALOGUE.ids.index("no_action")].tolist() == [None, None]

    stages = pd.DataFrame({"stage": "new", "rule": "r"}, index=features.index)
    uplift = prior_only_model(CATALOGUE).predict_arrays(features)
    batch = next_best_actions(features, stages, CATALOGUE, uplift, _no_history(2), POLICY)
    frame = batch.to_frame()
    chosen = frame.loc["m1"]
    assert chosen["channel"] != "email", f"m1 refused email: {chosen.to_dict()}"
    assert batch.explain("m1").action.channel == chosen["channel"]


def test_channels_of_missing_repeated_and_nullable_opt_out_texts() -> None:
    """Members sharing an opt-out text get the same channels; a missing text refuses none,
    with plain and nullable text columns alike."""
    texts = ["email", None, "", "email", "email,app,push", "app,email"]
    points = CATALOGUE.ids.index("double_points")  # channels email, app, push
    expected = ["app", "email", "email", "app", None, "push"]
    for column in (pd.Series(texts, dtype=object), pd.Series(texts, dtype="string")):
        features = _snapshot(len(texts)).assign(channels_opted_out=column.to_numpy())

        channels = action_channels(features, CATALOGUE)

        assert channels.shape == (len(texts), len(CATALOGUE.ids))
        assert channels[:, points].tolist() == expected


def test_register_entry_without_a_flag_counts_as_no_consent() -> None:
    """An entry whose consent flag or opt-out text is missing: no consent of that kind (it
    blocks, never fails the decision) and no channel refused."""
    register = _register(("m0", True, True, "sms")).astype(object)
    register.loc[0, ["consent_personalization", "channels_opted_out"]] = None

    features = effective_consent(_snapshot(2), register)
    blocks = guardrail_blocks(features, CATALOGUE, _no_history(2), POLICY)

    recs, points = CATALOGUE.ids.index("onboarding_recs"), CATALOGUE.ids.index("double_points")
    assert features["consent_personalization"].isna().tolist() == [True, False]
    assert features["channels_opted_out"].tolist() == ["", ""]
    assert (blocks[0, recs], blocks[0, points]) == (NO_PERSONALIZATION, OK)
    assert blocks[1, recs] == OK


def test_recheck_drops_and_reroutes_earlier_decisions() -> None:
    """Issue 17: decisions made before a change (a batch run) are checked again: withdrawn
    consent drops the row, a refused channel is replaced by the next allowed one."""
    chosen = pd.DataFrame(
        {
            "member_id": ["m0", "m1", "m2", "m3"],
            "action_id": ["onboarding_recs", "double_points", "double_points", "benefit_reminder"],
            "channel": ["email", "email", "email", "email"],
        }
    )
    register = _register(
        ("m0", True, False, ""), ("m1", True, True, "email"), ("m2", False, True, "")
    )

    kept = recheck_consent(chosen, register, CATALOGUE)

    assert kept["member_id"].tolist() == ["m1", "m3"], "m0 personalised, m2 no marketing"
    assert kept["channel"].tolist() == ["app", "email"]
