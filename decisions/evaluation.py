"""Offline evaluation of decision policies on logged randomized campaigns, and uplift metrics.

A logged row is one contact: the delivered treatment is its action if group=treatment, else
no_action. Its reward is the response value net of the delivered treatment's unit cost
(currency per member). The logging propensity of a row is the share of its delivered treatment
among all rows of the same campaign wave. A policy is a matrix of action probabilities per row
(columns = treatments, rows sum to 1), so deterministic and random policies look alike.

Estimators of a policy's value V = E[reward if everyone followed the policy]:
- IPS: mean of w·r with w = pi(d|x) / p(d|wave); unbiased, noisy.
- SNIPS: sum(w·r) / sum(w); a little biased, less noisy.
- DR: mean of sum_a pi(a|x)·q(x,a) + w·(r - q(x,d)); unbiased if either the propensities or
  the reward model q is right, and usually the tightest.
Intervals are analytic 95 % normal intervals from per-row influence terms (delta method for
SNIPS). Each estimate also comes as a lift over sending nothing, computed on the same rows
(paired), so its interval is much narrower than the difference of two intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from decisions.uplift import UpliftArrays

Z95 = 1.959963984540054


@dataclass(frozen=True)
class LoggedData:
    """Logged rows: delivered treatment index (into `treatments`), reward and propensity."""

    treatments: list[str]
    delivered: np.ndarray
    reward: np.ndarray
    propensity: np.ndarray


def logged_data(
    log: pd.DataFrame, treatments: Sequence[str], costs: Mapping[str, float], no_action: str
) -> LoggedData:
    """Delivered treatments, rewards and propensities from a contact log.

    `log` needs action_id, group, response_value (NaN = no response) and wave (any label of a
    campaign wave, e.g. the send day). `costs` gives each treatment's unit cost (currency).
    """
    delivered_id = np.where(log["group"] == "treatment", log["action_id"], no_action)
    index = pd.Index(list(treatments)).get_indexer(pd.Index(delivered_id))
    if (index < 0).any():
        unknown = sorted(set(delivered_id[index < 0]))
        raise ValueError(f"logged actions not among the treatments: {', '.join(unknown)}")
    cost = np.array([costs[t] for t in treatments])[index]
    reward = log["response_value"].fillna(0.0).to_numpy(dtype="float64") - cost
    cells = pd.DataFrame({"wave": log["wave"].to_numpy(), "delivered": index})
    per_cell = cells.groupby(["wave", "delivered"])["delivered"].transform("size")
    per_wave = cells.groupby("wave")["delivered"].transform("size")
    share = (per_cell / per_wave).to_numpy(dtype="float64")
    return LoggedData(list(treatments), index, reward, share)


@dataclass(frozen=True)
class TrueEffects:
    """Simulator truth for logged rows: the action each row was assigned (treatments index, for
    control rows too), its true incremental value if sent (currency, net of cost) and the share
    of that action among its wave's rows (the assignment propensity)."""

    assigned: np.ndarray
    value: np.ndarray
    propensity: np.ndarray


def influence(
    data: LoggedData, policy: np.ndarray, q_hat: np.ndarray | None = None
) -> dict[str, tuple[float, np.ndarray]]:
    """IPS, SNIPS and (given the reward model `q_hat`, rows × treatments) DR estimates of the
    policy's value (currency per member), each with its per-row influence terms (mean 0)."""
    rows = np.arange(len(data.reward))
    w = policy[rows, data.delivered] / data.propensity
    ips = float(np.mean(w * data.reward))
    snips = float(np.sum(w * data.reward) / np.sum(w))
    out = {
        "ips": (ips, w * data.reward - ips),
        "snips": (snips, w * (data.reward - snips) / np.mean(w)),
    }
    if q_hat is not None:
        terms = np.sum(policy * q_hat, axis=1) + w * (data.reward - q_hat[rows, data.delivered])
        out["dr"] = (float(np.mean(terms)), terms - np.mean(terms))
    return out


def interval(value: float, terms: np.ndarray) -> tuple[float, float]:
    """95 % normal interval of an estimate from its influence terms."""
    half = Z95 * float(np.std(terms, ddof=1)) / np.sqrt(len(terms))
    return value - half, value + half


def evaluate_policies(
    data: LoggedData,
    policies: Mapping[str, np.ndarray],
    no_action: str,
    q_hat: np.ndarray | None = None,
    truth: np.ndarray | TrueEffects | None = None,
) -> pd.DataFrame:
    """Tidy table, one row per (policy, estimator): value, ci_low, ci_high (currency per member)
    and lift, lift_low, lift_high (the same versus sending nothing, from paired rows).

    `truth` adds estimator "true": a rows × treatments matrix of expected net rewards (exact,
    no interval) or simulator `TrueEffects` (lift only, with the interval of its sampling).
    """
    nothing = one_hot_policy([no_action] * len(data.reward), data.treatments)
    base = influence(data, nothing, q_hat)
    records: list[tuple[Any, ...]] = []
    for name, policy in policies.items():
        _check_policy(name, policy, data)
        for estimator, (value, terms) in influence(data, policy, q_hat).items():
            lift, lift_terms = value - base[estimator][0], terms - base[estimator][1]
            records.append(
                (name, estimator, value, *interval(value, terms), lift, *interval(lift, lift_terms))
            )
        if truth is not None:
            records.append((name, "true", *_truth(policy, truth, data.treatments.index(no_action))))
    columns = ["value", "ci_low", "ci_high", "lift", "lift_low", "lift_high"]
    table = pd.DataFrame(records, columns=["policy", "estimator", *columns])
    table["rows"] = len(data.reward)
    return table


def _truth(policy: np.ndarray, truth: np.ndarray | TrueEffects, none: int) -> tuple[float, ...]:
    if isinstance(truth, TrueEffects):
        rows = np.arange(len(truth.value))
        terms = policy[rows, truth.assigned] / truth.propensity * truth.value
        lift = float(np.mean(terms))
        return (np.nan, np.nan, np.nan, lift, *interval(lift, terms - lift))
    value = float(np.mean(np.sum(policy * truth, axis=1)))
    lift = value - float(np.mean(truth[:, none]))
    return (value, value, value, lift, lift, lift)


def one_hot_policy(choices: Sequence[str], treatments: Sequence[str]) -> np.ndarray:
    """The deterministic policy choosing `choices[i]` for row i."""
    index = pd.Index(list(treatments)).get_indexer(pd.Index(list(choices)))
    if (index < 0).any():
        raise ValueError("a policy chose an action that is not among the treatments")
    policy = np.zeros((len(index), len(treatments)))
    policy[np.arange(len(index)), index] = 1.0
    return policy


def baseline_policies(
    rows: int, treatments: Sequence[str], no_action: str, popular: str
) -> dict[str, np.ndarray]:
    """The three yardsticks: no action, everyone gets `popular`, a uniformly random action."""
    random = np.array([0.0 if t == no_action else 1.0 for t in treatments])
    return {
        "no action": one_hot_policy([no_action] * rows, treatments),
        f"everyone: {popular}": one_hot_policy([popular] * rows, treatments),
        "random action": np.tile(random / random.sum(), (rows, 1)),
    }


def most_popular(log: pd.DataFrame) -> str:
    """The action with the most responses among treated contacts of `log`."""
    treated = log[(log["group"] == "treatment") & log["response_value"].notna()]
    if treated.empty:
        raise ValueError("no treated contact responded: cannot name the most popular action")
    return str(treated["action_id"].value_counts().idxmax())


def qini(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray) -> tuple[float, float]:
    """Qini coefficient and AUUC of an uplift `score` on randomized rows, per treated member.

    Q(k) = Y_T(k) - Y_C(k) N_T(k) / N_C(k) over the k highest scores (Y: summed outcome, N:
    count). AUUC is the mean of Q(k) / N_T; the Qini coefficient the mean of
    (Q(k) - k/n Q(n)) / N_T, i.e. the gain over random targeting. Units: those of `outcome`.
    """
    order = np.argsort(-score, kind="stable")
    t = treated[order].astype(bool)
    y = outcome[order].astype("float64")
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * ~t)
    ratio = np.divide(n_t, n_c, out=np.zeros(len(y)), where=n_c > 0)
    q = y_t - y_c * ratio
    total_t = max(int(n_t[-1]), 1)
    random_line = np.arange(1, len(y) + 1) / len(y) * q[-1]
    return float(np.mean(q - random_line) / total_t), float(np.mean(q) / total_t)


def reward_model(
    uplift: UpliftArrays, treatments: Sequence[str], costs: Mapping[str, float], no_action: str
) -> np.ndarray:
    """Expected net reward of every treatment per row (rows × treatments, currency) from an
    uplift model: base value + uplift value - unit cost; no_action is the base value."""
    q = np.empty((len(uplift.base_value), len(treatments)))
    for k, treatment in enumerate(treatments):
        if treatment == no_action:
            q[:, k] = uplift.base_value
            continue
        j = uplift.actions.index(treatment)
        q[:, k] = uplift.base_value + uplift.value[:, j] - costs[treatment]
    return q


def greedy_choices(q_hat: np.ndarray, treatments: Sequence[str]) -> list[str]:
    """Per row, the treatment of highest expected net reward (ties go to the first listed)."""
    return [treatments[k] for k in np.argmax(q_hat, axis=1)]


def true_effects(log: pd.DataFrame, treatments: Sequence[str], value: str) -> TrueEffects:
    """Simulator truth of logged rows from `log[value]` (true incremental net value of the
    row's action if sent), with each action's share of its wave as the propensity."""
    assigned = pd.Index(list(treatments)).get_indexer(pd.Index(log["action_id"]))
    if (assigned < 0).any():
        raise ValueError("truth names actions that are not among the treatments")
    cells = pd.DataFrame({"wave": log["wave"].to_numpy(), "action": assigned})
    share = cells.groupby(["wave", "action"])["action"].transform("size") / cells.groupby("wave")[
        "action"
    ].transform("size")
    return TrueEffects(assigned, log[value].to_numpy(dtype="float64"), share.to_numpy("float64"))


def _check_policy(name: str, policy: np.ndarray, data: LoggedData) -> None:
    expected = (len(data.reward), len(data.treatments))
    if policy.shape != expected:
        raise ValueError(f"policy {name!r} has shape {policy.shape}, expected {expected}")
    if not np.allclose(policy.sum(axis=1), 1.0):
        raise ValueError(f"policy {name!r}: action probabilities must sum to 1 per row")


def policy_text(table: pd.DataFrame) -> str:
    """The policy-value table as printed: 3 decimals, "–" where an estimator has no value (the
    simulator's true effect is known as a lift only)."""
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        return table.round(3).to_string(index=False, na_rep="–")
