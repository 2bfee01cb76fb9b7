"""Model metrics (pure numpy): classifiers and spend. Higher is better unless stated.

Classifiers take 0/1 outcomes and probabilities; spend metrics take actual and predicted spend
in the dataset currency over the horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

TOP_SHARE = 0.10


def _arrays(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float arrays of equal, non-zero length."""
    y, score = np.asarray(y, dtype=float), np.asarray(score, dtype=float)
    if y.shape != score.shape or y.size == 0:
        raise ValueError(f"need two non-empty arrays of one length, got {y.shape}, {score.shape}")
    return y, score


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney, ties count one half); NaN with one class."""
    y, score = _arrays(y, score)
    positives = y == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision: Σ (recall_k − recall_{k−1}) × precision_k over distinct thresholds."""
    y, score = _arrays(y, score)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    y_sorted, s_sorted = y[order], score[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), y.size - 1]
    tp = np.cumsum(y_sorted)[last]
    precision = tp / (last + 1)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def brier(y: np.ndarray, probability: np.ndarray) -> float:
    """Mean squared error of probabilities (lower is better)."""
    y, p = _arrays(y, probability)
    return float(np.mean((p - y) ** 2))


def expected_calibration_error(y: np.ndarray, probability: np.ndarray, bins: int = 10) -> float:
    """Σ_b (n_b / n) |mean p_b − mean y_b| over `bins` equal-mass bins of sorted probabilities
    (lower is better)."""
    y, p = _arrays(y, probability)
    order = np.argsort(p, kind="mergesort")
    groups = np.array_split(order, min(bins, y.size))
    return float(sum(len(g) * abs(p[g].mean() - y[g].mean()) for g in groups) / y.size)


def lift_and_capture(
    y: np.ndarray, score: np.ndarray, share: float = TOP_SHARE
) -> tuple[float, float]:
    """(lift, capture) of the top `share` of rows by score: their positive rate over the base
    rate, and their share of all positives. Top k = ceil(share × n)."""
    y, score = _arrays(y, score)
    k = int(np.ceil(share * y.size))
    top = np.argsort(-score, kind="mergesort")[:k]
    total = y.sum()
    if total == 0:
        return float("nan"), float("nan")
    return float(y[top].mean() / y.mean()), float(y[top].sum() / total)


def binary_report(y: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """Every classifier metric, by name; `base_rate` is the share of positives."""
    lift, capture = lift_and_capture(y, probability)
    return {
        "roc_auc": roc_auc(y, probability),
        "pr_auc": pr_auc(y, probability),
        "brier": brier(y, probability),
        "ece": expected_calibration_error(y, probability),
        "lift_top10": lift,
        "capture_top10": capture,
        "base_rate": float(np.mean(y)),
        "rows": float(len(y)),
    }


def gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of `actual` ordered by `predicted` (descending; ties keep input order)."""
    actual, predicted = _arrays(actual, predicted)
    order = np.argsort(-predicted, kind="mergesort")
    cumulative = np.cumsum(actual[order]) / actual.sum()
    n = actual.size
    return float(cumulative.sum() / n - (n + 1) / (2 * n))


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of the prediction over the Gini of a perfect ordering (1 = perfect, 0 = random)."""
    actual, predicted = _arrays(actual, predicted)
    if actual.sum() == 0:
        return float("nan")
    return gini(actual, predicted) / gini(actual, actual)


def decile_table(actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Ten equal-mass groups by predicted spend (decile 1 = highest): rows, mean predicted,
    mean actual and share of total actual spend."""
    actual, predicted = _arrays(actual, predicted)
    order = np.argsort(-predicted, kind="mergesort")
    groups = np.array_split(order, min(10, actual.size))
    total = actual.sum()
    return pd.DataFrame(
        {
            "decile": np.arange(1, len(groups) + 1),
            "rows": [len(g) for g in groups],
            "mean_predicted": [predicted[g].mean() for g in groups],
            "mean_actual": [actual[g].mean() for g in groups],
            "share_actual": [actual[g].sum() / total if total else np.nan for g in groups],
        }
    )


def spend_report(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Spend metrics by name: mae, rmse (currency), spearman, normalized_gini, bias_pct
    ((Σ predicted − Σ actual) / Σ actual × 100)."""
    actual, predicted = _arrays(actual, predicted)
    total = actual.sum()
    return {
        "mae": float(np.mean(np.abs(predicted - actual))),
        "rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "spearman": float(spearmanr(actual, predicted).statistic),
        "normalized_gini": normalized_gini(actual, predicted),
        "bias_pct": float((predicted.sum() - total) / total * 100) if total else float("nan"),
        "rows": float(actual.size),
    }


def interval_coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of rows with low <= actual <= high."""
    actual = np.asarray(actual, dtype=float)
    return float(np.mean((actual >= low) & (actual <= high)))


def count_report(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Purchase-count metrics by name: orders_mae, orders_rmse, orders_pearson (Pearson
    correlation of predicted and actual counts; higher is better) and orders_bias_pct."""
    actual, predicted = _arrays(actual, predicted)
    total = actual.sum()
    constant = np.std(actual) == 0 or np.std(predicted) == 0
    pearson = float("nan") if constant else float(np.corrcoef(actual, predicted)[0, 1])
    return {
        "orders_mae": float(np.mean(np.abs(predicted - actual))),
        "orders_rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "orders_pearson": pearson,
        "orders_bias_pct": float((predicted.sum() - total) / total * 100) if total else np.nan,
    }
