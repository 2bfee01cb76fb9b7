"""Offline policy evaluation: estimates cover known policy values; learned beats baselines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from decisions.catalogue import Catalogue
from decisions.evaluation import (
    baseline_policies,
    evaluate_policies,
    greedy_choices,
    logged_data,
    most_popular,
    one_hot_policy,
    qini,
    reward_model,
    true_effects,
)
from decisions.uplift import UpliftModel, catalogue_priors

TREATMENTS = ["coupon", "reminder", "no_action"]
COSTS = {"coupon": 3.0, "reminder": 1.0, "no_action": 0.0}


def oracle(log: pd.DataFrame) -> list[str]:
    return np.where(log["segment"] == "A", "coupon", "reminder").tolist()


def test_estimates_cover_the_true_values(campaign: Callable[..., Any]) -> None:
    # two waves holding out different shares: propensities must be read per wave
    test = campaign(30_000, seed=7, control_share=(0.6, 0.2))
    data = logged_data(test.log, TREATMENTS, COSTS, "no_action")
    policies = {
        "oracle": one_hot_policy(oracle(test.log), TREATMENTS),
        **baseline_policies(len(test.log), TREATMENTS, "no_action", "coupon"),
    }
    noisy_q = test.true_reward + np.random.default_rng(0).normal(0, 2, test.true_reward.shape)

    table = evaluate_policies(data, policies, "no_action", q_hat=noisy_q, truth=test.true_reward)

    truth = table[table["estimator"] == "true"].set_index("policy")
    for row in table[table["estimator"] != "true"].itertuples():
        true_value, true_lift = truth.loc[row.policy, ["value", "lift"]]
        assert row.ci_low <= true_value <= row.ci_high, (
            f"{row.estimator} of {row.policy}: {row.value:.2f} [{row.ci_low:.2f}, "
            f"{row.ci_high:.2f}] misses the true {true_value:.2f}"
        )
        assert row.lift_low <= true_lift <= row.lift_high, f"{row.estimator} lift of {row.policy}"
    assert truth.loc["oracle", "value"] == pytest.approx(6.25 + 0.5 * 4.5 + 0.5 * 4.0, abs=0.2)


def test_simulator_style_truth_of_the_assigned_action_only(campaign: Callable[..., Any]) -> None:
    test = campaign(30_000, seed=11)
    rows = np.arange(len(test.log))
    assigned = pd.Index(TREATMENTS).get_indexer(test.log["action_id"])
    log = test.log.assign(true_value=test.true_reward[rows, assigned] - test.true_reward[:, 2])
    policy = {"oracle": one_hot_policy(oracle(log), TREATMENTS)}

    table = evaluate_policies(
        logged_data(log, TREATMENTS, COSTS, "no_action"),
        policy,
        "no_action",
        truth=true_effects(log, TREATMENTS, "true_value"),
    ).set_index("estimator")

    exact = 0.5 * 4.5 + 0.5 * 4.0
    assert table.loc["true", "lift_low"] < exact < table.loc["true", "lift_high"]
    assert table.loc["true", "lift_high"] - table.loc["true", "lift_low"] < 0.3, "tight"
    assert table.loc["ips", "lift_low"] < exact < table.loc["ips", "lift_high"]


def test_doubly_robust_is_tighter_than_ips(campaign: Callable[..., Any]) -> None:
    test = campaign(20_000, seed=3)
    data = logged_data(test.log, TREATMENTS, COSTS, "no_action")
    policy = {"oracle": one_hot_policy(oracle(test.log), TREATMENTS)}

    table = evaluate_policies(data, policy, "no_action", q_hat=test.true_reward).set_index(
        "estimator"
    )
    width = table["ci_high"] - table["ci_low"]

    assert width["dr"] < width["ips"]


def test_learned_policy_beats_the_baselines(
    campaign: Callable[..., Any], catalogue: Catalogue
) -> None:
    train, test = campaign(8000, seed=1), campaign(12_000, seed=2)
    model = UpliftModel(["segment", "x"], n_estimators=80)
    model.fit(train.log, catalogue_priors(catalogue))
    q_hat = reward_model(model.predict_arrays(test.log), TREATMENTS, COSTS, "no_action")
    popular = most_popular(train.log)
    policies = {
        "learned": one_hot_policy(greedy_choices(q_hat, TREATMENTS), TREATMENTS),
        **baseline_policies(len(test.log), TREATMENTS, "no_action", popular),
    }
    data = logged_data(test.log, TREATMENTS, COSTS, "no_action")

    table = evaluate_policies(data, policies, "no_action", q_hat, test.true_reward)

    for estimator in ("dr", "true"):
        values = table[table["estimator"] == estimator].set_index("policy")["value"]
        best_baseline = values.drop("learned").max()
        assert values["learned"] > best_baseline + 1.0, f"{estimator}: {values.to_dict()}"


def test_propensities_are_shares_within_each_wave() -> None:
    log = pd.DataFrame(
        {
            "action_id": ["coupon", "coupon", "reminder", "coupon"],
            "group": ["treatment", "control", "treatment", "treatment"],
            "response_value": [50.0, np.nan, np.nan, np.nan],
            "wave": [1, 1, 1, 2],
        }
    )

    data = logged_data(log, TREATMENTS, COSTS, "no_action")

    assert data.propensity.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])
    assert data.reward.tolist() == [47.0, 0.0, -1.0, -3.0], "response value minus unit cost"


def test_qini_rewards_a_score_that_ranks_responders_first() -> None:
    rng = np.random.default_rng(0)
    treated = rng.random(4000) < 0.5
    helped = rng.random(4000) < 0.5
    outcome = (rng.random(4000) < 0.1 + 0.2 * (treated & helped)).astype(float)

    good, _ = qini(helped.astype(float), treated, outcome)
    bad, _ = qini(-helped.astype(float), treated, outcome)

    assert good > 0.02 > -0.02 > bad
