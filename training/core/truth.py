"""Backtest predictions against the simulator's ground truth (pure; evaluation only).

The simulator knows each member's true purchase and dropout rates (`settings.truth_dir`), so
`simulator.truth` gives the true P(alive), expected purchases and expected spend of
every member for any cutoff and horizon. Comparing with them separates model error from the
noise of the realised labels:

- churn: the ROC AUC of the true churn probability (Poisson approximation: 1 − P(alive)·
  (1 − e^−Λ), Λ the true expected purchases if alive) on the backtest rows pooled over folds
  (`truth_best_roc_auc`) beside the model's pooled AUC (`truth_model_roc_auc`): a reference
  ceiling, not a strict bound (the approximation ignores dropout inside the horizon, seasonal
  timing and later win-backs); the model's probabilities are compared with the true ones
  (Pearson, Spearman, mean absolute difference, mean of each);
- clv: predicted spend against the true expected spend (gross: before discounts and refunds):
  Spearman, Pearson, total bias % and the normalized Gini the truth reaches
  (`truth_best_normalized_gini`) beside the model's (`truth_model_normalized_gini`);
- any task whose frame has `btyd_p_alive`: that feature against the true P(alive) (Pearson,
  mean absolute difference) and its ROC AUC for the true alive state.
Activation has no probabilistic truth here (the simulator fixes each activation time): none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from simulator import truth as sim
from training.core import metrics
from training.core.labels import CUTOFF, MEMBER_ID
from training.core.tasks import Task


def true_churn_probability(
    members: pd.DataFrame, orders: pd.DataFrame, cutoff: pd.Timestamp, horizon_days: int
) -> pd.Series:
    """P(no purchase in [cutoff, cutoff + horizon_days)) knowing the true rates, by member."""
    alive = sim.p_alive(members, orders, cutoff)
    expected = sim.expected_purchases(members, orders, cutoff, horizon_days)
    p, mean = alive.to_numpy(dtype=float), expected.to_numpy(dtype=float)
    given_alive = np.divide(mean, p, out=np.zeros(len(p)), where=p > 0)
    return pd.Series(1.0 - p * -np.expm1(-given_alive), index=alive.index)


def truth_frame(
    task: Task,
    members: pd.DataFrame,
    orders: pd.DataFrame,
    cutoffs: list[pd.Timestamp],
    horizon_days: int,
) -> pd.DataFrame:
    """member_id, cutoff, true_p_alive, alive and the task's truth (true_churn or true_spend)."""
    parts = []
    for cutoff in cutoffs:
        part = pd.DataFrame(
            {
                "true_p_alive": sim.p_alive(members, orders, cutoff),
                "alive": sim.alive_at(members, cutoff),
            }
        )
        if task.name == "churn":
            part["true_churn"] = true_churn_probability(members, orders, cutoff, horizon_days)
        elif task.kind == "spend":
            part["true_spend"] = sim.expected_spend(members, orders, cutoff, horizon_days)
        parts.append(part.rename_axis(MEMBER_ID).reset_index().assign(**{CUTOFF: cutoff}))
    return pd.concat(parts, ignore_index=True)


def compare(task: Task, scored: pd.DataFrame) -> dict[str, float]:
    """Model vs truth on backtest rows joined with `truth_frame` (columns actual, prediction,
    the truth columns and optionally btyd_p_alive)."""
    out: dict[str, float] = {}
    predicted = scored["prediction"].to_numpy(dtype=float)
    actual = scored["actual"].to_numpy(dtype=float)
    if "true_churn" in scored:
        true = scored["true_churn"].to_numpy(dtype=float)
        out |= {
            "truth_best_roc_auc": metrics.roc_auc(actual, true),
            "truth_model_roc_auc": metrics.roc_auc(actual, predicted),
            "truth_pearson": float(stats.pearsonr(predicted, true)[0]),
            "truth_spearman": float(stats.spearmanr(predicted, true)[0]),
            "truth_mean_abs_diff": float(np.mean(np.abs(predicted - true))),
            "truth_mean_true": float(true.mean()),
            "truth_mean_predicted": float(predicted.mean()),
        }
    if "true_spend" in scored:
        true = scored["true_spend"].to_numpy(dtype=float)
        out |= {
            "truth_best_normalized_gini": metrics.normalized_gini(actual, true),
            "truth_model_normalized_gini": metrics.normalized_gini(actual, predicted),
            "truth_pearson": float(stats.pearsonr(predicted, true)[0]),
            "truth_spearman": float(stats.spearmanr(predicted, true)[0]),
            "truth_total_bias_pct": float(100.0 * (predicted.sum() - true.sum()) / true.sum()),
        }
    if "btyd_p_alive" in scored:
        known = scored["btyd_p_alive"].notna().to_numpy()
        p = scored["btyd_p_alive"].to_numpy(dtype=float)[known]
        true = scored["true_p_alive"].to_numpy(dtype=float)[known]
        out |= {
            "truth_p_alive_pearson": float(stats.pearsonr(p, true)[0]),
            "truth_p_alive_mean_abs_diff": float(np.mean(np.abs(p - true))),
            "truth_p_alive_roc_auc": metrics.roc_auc(
                scored["alive"].to_numpy(dtype=float)[known], p
            ),
        }
    return out


def join_truth(
    scored: pd.DataFrame, truth: pd.DataFrame, features: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Backtest predictions with their truth rows (and `btyd_p_alive` from `features`)."""
    scored = scored.assign(**{MEMBER_ID: scored[MEMBER_ID].astype(str)})
    truth = truth.assign(**{MEMBER_ID: truth[MEMBER_ID].astype(str)})
    joined = scored.merge(truth, on=[MEMBER_ID, CUTOFF], how="left", validate="1:1")
    if features is not None and "btyd_p_alive" in features:
        keys = features[[MEMBER_ID, CUTOFF, "btyd_p_alive"]]
        keys = keys.assign(**{MEMBER_ID: keys[MEMBER_ID].astype(str)})
        joined = joined.merge(keys, on=[MEMBER_ID, CUTOFF], how="left", validate="1:1")
    missing = joined["true_p_alive"].isna()
    if missing.any():
        raise ValueError(f"{int(missing.sum())} backtest rows have no truth row")
    return joined
