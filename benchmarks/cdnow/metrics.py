"""Holdout metrics of the CDNOW benchmark (pure functions of predictions and actuals)."""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score


def gini(actual: np.ndarray, score: np.ndarray) -> float:
    """Gini of `actual` ordered by `score` descending (ties keep the input order)."""
    order = np.argsort(-score, kind="stable")
    cumulative = np.cumsum(actual[order]) / actual.sum()
    n = actual.size
    return float(cumulative.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: np.ndarray, score: np.ndarray) -> float:
    """Gini of the prediction divided by the Gini of the perfect ordering (1 = perfect)."""
    return gini(actual, score) / gini(actual, actual)


def top_share(actual: np.ndarray, score: np.ndarray, fraction: float = 0.10) -> float:
    """Share of the total `actual` held by the top `fraction` of customers by `score`."""
    top = np.argsort(-score, kind="stable")[: round(fraction * actual.size)]
    return float(actual[top].sum() / actual.sum())


def count_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, Pearson correlation and total of predicted purchase-day counts."""
    error = predicted - actual
    return {
        "count_mae": float(np.mean(np.abs(error))),
        "count_rmse": float(np.sqrt(np.mean(error**2))),
        "count_pearson": float(stats.pearsonr(actual, predicted)[0]),
        "count_pred_total": float(predicted.sum()),
        "count_actual_total": float(actual.sum()),
    }


def churn_metrics(churned: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, float]:
    """ROC AUC and PR AUC (average precision) per churn score; positive class = churn."""
    out: dict[str, float] = {"churn_share": float(churned.mean())}
    for name, score in scores.items():
        out[f"churn_roc_auc[{name}]"] = float(roc_auc_score(churned, score))
        out[f"churn_pr_auc[{name}]"] = float(average_precision_score(churned, score))
    return out


def spend_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Spend MAE ($), Spearman, normalized Gini, top-10 % share and totals ($)."""
    return {
        "spend_mae": float(np.mean(np.abs(predicted - actual))),
        "spend_spearman": float(stats.spearmanr(actual, predicted)[0]),
        "spend_norm_gini": normalized_gini(actual, predicted),
        "spend_top10_share": top_share(actual, predicted),
        "spend_pred_total": float(predicted.sum()),
        "spend_actual_total": float(actual.sum()),
    }
