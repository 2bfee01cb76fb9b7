"""Performance of predictions whose horizon has matured, beside the figures the version was
promoted on.

A prediction at cutoff c over a horizon of H days matures at c + H: only then is its whole
label window [c, c + H) observed (`training.core.labels`). Figures: for probabilities ROC AUC,
ECE, Gini (2·AUC − 1) and total bias (Σ predicted − Σ actual over Σ actual, percent); for spend
(currency over the horizon) normalized Gini and total bias. The backtest figures are the
`backtest_*` metrics of the version's training run (`training.jobs.train`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from training.core import metrics
from training.core.tasks import Kind

BINARY = ("roc_auc", "ece", "gini", "bias_pct")
SPEND = ("normalized_gini", "bias_pct")


def matured(
    cutoffs: Sequence[pd.Timestamp], horizon_days: int, observed_until: pd.Timestamp
) -> list[pd.Timestamp]:
    """The cutoffs whose predictions over `horizon_days` have matured by `observed_until`
    (the exclusive end of the data): c + horizon <= observed_until, oldest first."""
    window = pd.Timedelta(days=horizon_days)
    return sorted(c for c in cutoffs if c + window <= observed_until)


def total_bias_pct(actual: np.ndarray, predicted: np.ndarray) -> float:
    """(Σ predicted − Σ actual) / Σ actual × 100; NaN when Σ actual is 0."""
    total = float(np.sum(actual))
    return float((np.sum(predicted) - total) / total * 100) if total else float("nan")


def matured_metrics(kind: Kind, actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The figures of `kind` ('binary': 0/1 outcomes and probabilities; 'spend': currency) of
    matured predictions, by name, plus `rows`. ValueError on empty or unequal arrays."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    if kind == "binary":
        auc = metrics.roc_auc(actual, predicted)
        out = {
            "roc_auc": auc,
            "ece": metrics.expected_calibration_error(actual, predicted),
            "gini": 2 * auc - 1,
            "bias_pct": total_bias_pct(actual, predicted),
            "base_rate": float(actual.mean()),
        }
    else:
        out = {
            "normalized_gini": metrics.normalized_gini(actual, predicted),
            "bias_pct": total_bias_pct(actual, predicted),
        }
    return {**out, "rows": float(actual.size)}


def promoted_figures(kind: Kind, run_metrics: Mapping[str, float]) -> dict[str, float]:
    """The backtest figures a version was promoted on, named as `matured_metrics` names them
    (from its run's `backtest_*` metrics; Gini from the AUC); a figure the run lacks is
    absent."""
    names = BINARY if kind == "binary" else SPEND
    out = {n: float(run_metrics[f"backtest_{n}"]) for n in names if f"backtest_{n}" in run_metrics}
    if kind == "binary" and "backtest_roc_auc" in run_metrics:
        out["gini"] = 2 * float(run_metrics["backtest_roc_auc"]) - 1
    return out
