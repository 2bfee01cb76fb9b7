"""The next-best-action engine: the eligible action of highest expected value, or no_action.

Expected value (EV) of sending action a to member m, in the catalogue currency, per contact:

    EV(m, a) = uplift_value(m, a) - unit_cost(a)

where uplift_value is the incremental response value per contact (treated minus control
expectation, which already equals uplift in response probability times value per response),
learned by `decisions.uplift` or taken from the catalogue prior. no_action has EV 0: the engine
sends something only when its EV is strictly positive (above `min_expected_value`). Everything is
computed on (members × actions) arrays; words are produced only by `DecisionBatch.explain`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from decisions.catalogue import (
    CONDITION_SCORES,
    NO_ACTION,
    Catalogue,
    condition_mask,
    eligibility_mask,
    with_scores,
)
from decisions.guardrails import (
    ACTION_CAP,
    BLOCK_TEXT,
    CONDITION,
    CONTROL,
    COOLDOWN,
    NOT_IN_STAGE,
    OK,
    ContactHistory,
    action_channels,
    contact_history,
    effective_consent,
    guardrail_blocks,
)
from decisions.stages import assign_stages
from decisions.uplift import PRIOR, UpliftArrays, UpliftModel
from memberscore.decision_settings import DecisionSettings, GuardrailPolicy
from memberscore.errors import MemberNotFound


@dataclass(frozen=True)
class Option:
    """One action considered for one member; money in the catalogue currency per contact."""

    action_id: str
    channel: str | None
    expected_value: float
    uplift_prob: float
    uplift_value: float
    unit_cost: float
    source: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """The engine's answer for one member: `action` is no_action when nothing is worth it."""

    member_id: str
    action: Option
    alternatives: tuple[Option, ...]
    stage: str
    stage_rule: str
    control_group: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class DecisionBatch:
    """Decisions for many members as arrays over (members × catalogue actions).

    `expected_value` (currency per contact, no_action = 0), `uplift_prob`, `uplift_value` and
    `blocks` (guardrail codes, `OK` = allowed) have one column per catalogue action;
    `chosen` is the catalogue column chosen per member.
    """

    member_ids: pd.Index
    catalogue: Catalogue
    features: pd.DataFrame
    stages: pd.DataFrame
    uplift: UpliftArrays
    history: ContactHistory
    expected_value: np.ndarray
    uplift_prob: np.ndarray
    uplift_value: np.ndarray
    source: list[str]
    blocks: np.ndarray
    chosen: np.ndarray
    control: np.ndarray
    drivers: pd.Series | None
    channels: np.ndarray  # per member and action: the first channel not opted out, or None

    def to_frame(self) -> pd.DataFrame:
        """One row per member: action_id, channel, expected_value, stage, source, control_group."""
        ids = np.array(self.catalogue.ids, dtype=object)
        rows = np.arange(len(self.chosen))
        return pd.DataFrame(
            {
                "action_id": ids[self.chosen],
                "channel": self.channels[rows, self.chosen],
                "expected_value": self.expected_value[rows, self.chosen],
                "stage": self.stages["stage"].to_numpy(),
                "source": np.array(self.source, dtype=object)[self.chosen],
                "control_group": self.control,
            },
            index=self.member_ids,
        )

    def explain(self, member_id: str, max_alternatives: int = 3) -> Decision:
        """The decision of one member with ranked alternatives and reasons in words."""
        i = self._rows.get(member_id, -1)
        if i < 0:
            raise MemberNotFound(f"member {member_id} is not in this batch of decisions")
        j = int(self.chosen[i])
        allowed = np.flatnonzero(self.blocks[i] == OK)
        ranked = allowed[np.argsort(-self.expected_value[i, allowed], kind="stable")]
        options = [self._option(i, int(k)) for k in ranked if k != j][:max_alternatives]
        stage, rule = str(self._stages[i]), str(self._rules[i])
        reasons = [f"stage {stage}: {rule}"]
        if self.drivers is not None and pd.notna(self.drivers.iloc[i]):
            reasons.append(f"drivers: {self.drivers.iloc[i]}")
        if self.catalogue.ids[j] == NO_ACTION:
            reasons.append(self._why_nothing(i))
        return Decision(
            member_id=str(member_id),
            action=self._option(i, j),
            alternatives=tuple(options),
            stage=stage,
            stage_rule=rule,
            control_group=bool(self.control[i]),
            reasons=tuple(reasons),
        )

    @cached_property
    def _rows(self) -> dict[object, int]:
        """Row of each member id, computed once for all `explain` calls of the batch."""
        if not self.member_ids.is_unique:
            raise ValueError("decisions need unique member ids; drop the repeated rows first")
        return {m: i for i, m in enumerate(self.member_ids)}

    @cached_property
    def _stages(self) -> np.ndarray:
        return self.stages["stage"].to_numpy(dtype=object)

    @cached_property
    def _rules(self) -> np.ndarray:
        return self.stages["rule"].to_numpy(dtype=object)

    @cached_property
    def _conditions_met(self) -> dict[int, list[np.ndarray]]:
        """Per catalogue column with conditions: each condition's mask over the members."""
        return {
            j: [condition_mask(self.features, c) for c in action.conditions]
            for j, action in enumerate(self.catalogue.actions)
            if action.conditions
        }

    @cached_property
    def _condition_values(self) -> dict[str, np.ndarray]:
        """The values of the features conditions read, as a row of `features` holds them (in
        the frame's common dtype: 5.0 in an all-number frame, 5 beside text)."""
        common = self.features.iloc[:0].to_numpy().dtype
        names = {c.feature for a in self.catalogue.actions for c in a.conditions}
        return {n: self.features[n].to_numpy(dtype=common) for n in names}

    def _option(self, i: int, j: int) -> Option:
        action = self.catalogue.actions[j]
        return Option(
            action_id=action.id,
            channel=self.channels[i, j],
            expected_value=float(self.expected_value[i, j]),
            uplift_prob=float(self.uplift_prob[i, j]),
            uplift_value=float(self.uplift_value[i, j]),
            unit_cost=action.unit_cost,
            source=self.source[j],
            reasons=tuple(self._action_reasons(i, j)),
        )

    def _action_reasons(self, i: int, j: int) -> list[str]:
        """EV arithmetic, eligibility and history of action j for member i."""
        action, cur = self.catalogue.actions[j], self.catalogue.currency
        if action.id == NO_ACTION:
            return ["do not disturb: expected value 0 by definition"]
        ev, value, prob = (
            float(a[i, j]) for a in (self.expected_value, self.uplift_value, self.uplift_prob)
        )
        reasons = [
            f"expected value {ev:+.2f} {cur} = incremental value {value:.2f} - cost "
            f"{action.unit_cost:.2f} (response probability {100 * prob:+.1f} points vs no contact)"
        ]
        if self.blocks[i, j] != OK:
            reasons.append(f"blocked: {self._block_text(i, j)}")
        else:
            reasons.append(self._eligibility_text(i, j))
        if self.source[j] == PRIOR:
            reasons.append(self._prior_text(action.id))
        return reasons

    def _eligibility_text(self, i: int, j: int) -> str:
        action = self.catalogue.actions[j]
        text = f"eligible: meant for {', '.join(action.stages)}"
        if action.conditions:
            value = self._condition_values
            rules = [f"{c.describe()} (member: {value[c.feature][i]})" for c in action.conditions]
            text += "; " + "; ".join(rules)
        if action.requires_consent:
            text += f"; consent given: {', '.join(action.requires_consent)}"
        return text

    def _prior_text(self, action_id: str) -> str:
        u = self.uplift
        if action_id not in u.actions:
            return "prior used: the uplift model does not know this action"
        k = u.actions.index(action_id)
        return (
            f"prior used: too little history ({u.treated[k]} treated, {u.control[k]} control "
            f"contacts; needs {u.min_treated} and {u.min_control})"
        )

    def _block_text(self, i: int, j: int) -> str:
        code, action = int(self.blocks[i, j]), self.catalogue.actions[j]
        if code == COOLDOWN:
            days = self.history.days_since[i, j]
            return f"in cooldown (sent {days:.0f} days ago, cooldown {action.cooldown_days} days)"
        if code == ACTION_CAP and action.cap is not None:
            count = self.history.in_cap_window[i, j]
            return f"cap reached ({count} contacts in {action.cap.period_days} days)"
        if code == NOT_IN_STAGE:
            return f"meant for {', '.join(action.stages)}, not {self._stages[i]}"
        if code == CONDITION:
            value, met = self._condition_values, self._conditions_met[j]
            failed = [c for c, mask in zip(action.conditions, met, strict=True) if not mask[i]]
            return "; ".join(
                f"{c.describe()} fails (member: {value[c.feature][i]})" for c in failed
            )
        return BLOCK_TEXT[code]

    def _why_nothing(self, i: int) -> str:
        if self.control[i]:
            return "held out: persistent control group, recorded for measurement"
        sendable = [j for j, a in enumerate(self.catalogue.actions) if a.id != NO_ACTION]
        allowed = [j for j in sendable if self.blocks[i, j] == OK]
        blocked = "; ".join(
            f"{self.catalogue.ids[j]} {self._block_text(i, j)}"
            for j in sendable
            if self.blocks[i, j] != OK
        )
        if not allowed:
            return f"no action allowed: {blocked}"
        best = max(allowed, key=lambda j: self.expected_value[i, j])
        text = (
            f"no eligible action has positive expected value (best: {self.catalogue.ids[best]} "
            f"at {self.expected_value[i, best]:+.2f} {self.catalogue.currency})"
        )
        return f"{text}; blocked: {blocked}" if blocked else text


def next_best_actions(
    features: pd.DataFrame,
    stages: pd.DataFrame,
    catalogue: Catalogue,
    uplift: UpliftArrays,
    history: ContactHistory,
    policy: GuardrailPolicy,
    drivers: pd.Series | None = None,
    min_expected_value: float = 0.0,
    blocks: np.ndarray | None = None,
    channels: np.ndarray | None = None,
) -> DecisionBatch:
    """Choose an action for every member (rows of `features`, indexed by member id).

    `stages` comes from `assign_stages`, `uplift` from `UpliftModel.predict_arrays` on the same
    rows, `history` from `contact_history`. `drivers` is optional text per member (e.g. the churn
    model's top reasons). A sendable action wins only if its EV exceeds `min_expected_value`
    (currency per contact); otherwise the member gets no_action. `blocks` reuses the codes of
    `action_blocks` on the same rows when the caller already has them, `channels` those of
    `action_channels`.
    """
    prob, value, source = _uplift_matrix(catalogue, uplift)
    costs = np.array([a.unit_cost for a in catalogue.actions])
    ev = value - costs
    if channels is None:
        channels = action_channels(features, catalogue)
    if blocks is None:
        blocks = action_blocks(features, stages, catalogue, history, policy, channels)
    is_none = np.array([a.id == NO_ACTION for a in catalogue.actions])
    candidate = np.where((blocks == OK) & ~is_none, ev, -np.inf)
    best = np.argmax(candidate, axis=1)
    best_ev = candidate[np.arange(len(best)), best]
    chosen = np.where(best_ev > min_expected_value, best, int(np.flatnonzero(is_none)[0]))
    return DecisionBatch(
        member_ids=features.index,
        catalogue=catalogue,
        features=features,
        stages=stages,
        uplift=uplift,
        history=history,
        expected_value=ev,
        uplift_prob=prob,
        uplift_value=value,
        source=source,
        blocks=blocks,
        chosen=chosen,
        control=(blocks == CONTROL).any(axis=1),
        drivers=drivers,
        channels=channels,
    )


def _uplift_matrix(
    catalogue: Catalogue, uplift: UpliftArrays
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Uplift in catalogue column order; actions the model lacks take their prior."""
    n = len(uplift.base_prob)
    prob, value = np.zeros((n, len(catalogue.ids))), np.zeros((n, len(catalogue.ids)))
    source: list[str] = []
    for j, action in enumerate(catalogue.actions):
        if action.id == NO_ACTION:
            source.append("none")
        elif action.id in uplift.actions:
            k = uplift.actions.index(action.id)
            prob[:, j], value[:, j] = uplift.prob[:, k], uplift.value[:, k]
            source.append(uplift.source[k])
        else:
            prob[:, j], value[:, j] = action.prior.response_prob, action.prior.value
            source.append(PRIOR)
    return prob, value, source


def action_blocks(
    features: pd.DataFrame,
    stages: pd.DataFrame,
    catalogue: Catalogue,
    history: ContactHistory,
    policy: GuardrailPolicy,
    channels: np.ndarray | None = None,
) -> np.ndarray:
    """Block code per member and catalogue action (`OK`: may be sent), as `next_best_actions`
    decides them; lets a batch skip uplift predictions of blocked pairs. Guardrail codes, with
    the catalogue's stage and condition rules ahead of consent. `channels` reuses
    `action_channels` of the same rows."""
    codes = guardrail_blocks(features, catalogue, history, policy, channels)
    # Stages as codes into their distinct values; a missing stage (code -1) is in none.
    stage, names = pd.factorize(stages["stage"].to_numpy(dtype=object))
    meant = np.array(  # per distinct stage (and a last row for a missing one) and action
        [[name in a.stages for a in catalogue.actions] for name in [*names, None]], dtype=bool
    ).reshape(len(names) + 1, len(catalogue.actions))
    for j, action in enumerate(catalogue.actions):
        if action.id == NO_ACTION:
            continue
        rule = np.where(meant[stage, j], OK, NOT_IN_STAGE)
        rule = np.where(
            (rule == OK) & ~eligibility_mask(features, action.conditions), CONDITION, rule
        )
        codes[:, j] = np.where((codes[:, j] != CONTROL) & (rule != OK), rule, codes[:, j])
    return codes


def decide(
    features: pd.DataFrame,
    stages: pd.DataFrame,
    catalogue: Catalogue,
    uplift: UpliftModel,
    contacts: pd.DataFrame,
    now: pd.Timestamp,
    policy: GuardrailPolicy,
    consents: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
) -> DecisionBatch:
    """Next-best action of every member at `now` (UTC): the one path of batch scoring and the
    score API, so both give the same answers for the same inputs.

    `features` are rows indexed by member id, as of their cutoff; `stages` come from
    `assign_stages` on the same rows; `contacts` is the contact log (member_id, action_id,
    sent_at, group) and `consents` the consent register's entries (`REGISTER_COLUMNS`; None:
    no member changed consent), which override the features' flags (`effective_consent`);
    `scores` the members' scores, of which conditions read `CONDITION_SCORES`.
    Guardrails run first, so the uplift model predicts only the pairs that may be sent.
    """
    frame = effective_consent(with_scores(features, scores), consents)  # opt-outs count now
    history = contact_history(contacts, frame.index, catalogue, now, policy)
    channels = action_channels(frame, catalogue)
    blocks = action_blocks(frame, stages, catalogue, history, policy, channels)
    columns = pd.Index(catalogue.ids).get_indexer(pd.Index(list(uplift.counts_.index)))
    allowed = np.where(columns >= 0, blocks[:, columns] == OK, False)
    arrays = uplift.predict_arrays(frame, allowed)  # blocked pairs are never chosen
    return next_best_actions(
        frame, stages, catalogue, arrays, history, policy, blocks=blocks, channels=channels
    )


def next_best_action(
    member_id: str,
    *,
    features: Mapping[str, Any],
    scores: Mapping[str, float | None],
    contacts: pd.DataFrame,
    now: pd.Timestamp,
    catalogue: Catalogue,
    uplift: UpliftModel,
    settings: DecisionSettings,
) -> Decision:
    """The decision of one member from plain mappings (`decide` on one row).

    `features` are the member's features as of their cutoff, `scores` the model outputs by
    name (`churn` and `CONDITION_SCORES` are read; an absent one is missing), `contacts` the
    member's contact log, `now` the decision time (UTC), `uplift` the fitted uplift model
    (`decisions.uplift.prior_only_model` when none is learned).
    """
    frame = pd.DataFrame([dict(features)], index=pd.Index([member_id], name="member_id"))
    named = {**dict.fromkeys(CONDITION_SCORES), **scores}  # an absent score is a missing one
    score_frame = pd.DataFrame([named], index=frame.index, dtype="float64")
    stages = assign_stages(frame, score_frame, settings.stages)
    policy = settings.guardrails
    batch = decide(frame, stages, catalogue, uplift, contacts, now, policy, scores=score_frame)
    return batch.explain(member_id)
