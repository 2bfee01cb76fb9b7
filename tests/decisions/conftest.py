"""Synthetic randomized campaigns with a planted heterogeneous effect, built in code.

Two actions. `coupon` lifts the response probability by 0.15 in segment A and not at all in B;
`reminder` lifts it by 0.10 in B and not in A. A response is worth 50 (currency), so with unit
costs 3 and 1 the best policy sends the coupon to A and the reminder to B.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from decisions.catalogue import Catalogue, parse_catalogue

ACTIONS = ("coupon", "reminder")
TREATMENTS = ("coupon", "reminder", "no_action")
COSTS = {"coupon": 3.0, "reminder": 1.0, "no_action": 0.0}
RESPONSE_VALUE = 50.0
UPLIFT = {
    ("coupon", "A"): 0.15,
    ("coupon", "B"): 0.0,
    ("reminder", "A"): 0.0,
    ("reminder", "B"): 0.10,
}

CATALOGUE = """
currency: USD
actions:
  - id: coupon
    description: A coupon.
    channels: [email]
    unit_cost: 3.0
    stages: [registered, new, growing, mature, declining, dormant, churned, won_back]
    requires_consent: [marketing]
    cooldown_days: 14
    cap: {count: 2, period_days: 60}
    prior: {response_prob: 0.05, value_per_response: 50.0}
  - id: reminder
    description: A personalised reminder.
    channels: [push]
    unit_cost: 1.0
    stages: [growing, mature]
    conditions:
      - {feature: x, op: ">", value: -5}
    requires_consent: [marketing, personalization]
    cooldown_days: 7
    prior: {response_prob: 0.01, value_per_response: 50.0}
  - id: no_action
    description: Nothing.
    unit_cost: 0.0
    stages: [registered, new, growing, mature, declining, dormant, churned, won_back]
    cooldown_days: 0
    prior: {response_prob: 0.0, value_per_response: 0.0}
"""


@dataclass(frozen=True)
class Campaign:
    """Logged contacts (features, action_id, group, responded, response_value, wave) and the
    true expected net reward of every treatment per row (rows × TREATMENTS)."""

    log: pd.DataFrame
    true_reward: np.ndarray


def simulate(rows: int, seed: int, control_share: tuple[float, ...] = (0.5,)) -> Campaign:
    """Waves of equal size; wave w holds out `control_share[w]` of its rows, the rest get an
    action uniformly at random."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["A", "B"], size=rows)
    x = rng.normal(size=rows)
    wave = np.arange(rows) * len(control_share) // rows
    control = rng.random(rows) < np.asarray(control_share)[wave]
    action = rng.choice(ACTIONS, size=rows)
    base = 0.10 + 0.05 * (x > 0)
    lift = {a: np.array([UPLIFT[(a, s)] for s in segment]) for a in ACTIONS}
    p = base + np.select([action == a for a in ACTIONS], [lift[a] for a in ACTIONS])
    p = np.where(control, base, p)
    responded = rng.random(rows) < p
    log = pd.DataFrame(
        {
            "segment": segment,
            "x": x,
            "action_id": action,
            "group": np.where(control, "control", "treatment"),
            "responded": responded,
            "response_value": np.where(responded, RESPONSE_VALUE, np.nan),
            "wave": wave,
        },
        index=pd.Index([f"m{i:06d}" for i in range(rows)], name="member_id"),
    )
    true = np.column_stack(
        [base * RESPONSE_VALUE + lift[a] * RESPONSE_VALUE - COSTS[a] for a in ACTIONS]
        + [base * RESPONSE_VALUE]
    )
    return Campaign(log=log, true_reward=true)


@pytest.fixture
def campaign() -> Callable[..., Campaign]:
    return simulate


@pytest.fixture
def catalogue() -> Catalogue:
    return parse_catalogue(CATALOGUE)
