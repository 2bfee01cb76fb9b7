"""Evaluation figures (matplotlib, Agg canvas, no pyplot state): returned for MLflow to log.

Figures are built with `matplotlib.figure.Figure` directly, so nothing opens a window and no
global figure list grows; callers log them (`mlflow.log_figure`) and drop them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from training.core import metrics


def _figure(title: str) -> tuple[Figure, Axes]:
    """A 5×4 inch figure on an Agg canvas with one titled axes."""
    figure = Figure(figsize=(5, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def roc_figure(y: np.ndarray, probability: np.ndarray) -> Figure:
    """ROC curve with its AUC."""
    y, p = np.asarray(y, dtype=float), np.asarray(probability, dtype=float)
    order = np.argsort(-p, kind="mergesort")
    tpr = np.r_[0.0, np.cumsum(y[order]) / max(y.sum(), 1)]
    fpr = np.r_[0.0, np.cumsum(1 - y[order]) / max((1 - y).sum(), 1)]
    figure, axes = _figure(f"ROC (AUC {metrics.roc_auc(y, p):.3f})")
    axes.plot(fpr, tpr)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set(xlabel="false positive rate", ylabel="true positive rate")
    return figure


def calibration_figure(y: np.ndarray, probability: np.ndarray, bins: int = 10) -> Figure:
    """Mean outcome against mean probability in equal-mass bins."""
    y, p = np.asarray(y, dtype=float), np.asarray(probability, dtype=float)
    groups = np.array_split(np.argsort(p, kind="mergesort"), min(bins, len(p)))
    ece = metrics.expected_calibration_error(y, p, bins)
    figure, axes = _figure(f"Calibration (ECE {ece:.3f})")
    axes.plot([p[g].mean() for g in groups], [y[g].mean() for g in groups], marker="o")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set(xlabel="mean predicted probability", ylabel="observed rate")
    return figure


def gains_figure(y: np.ndarray, score: np.ndarray) -> Figure:
    """Cumulative gains: share of positives (or spend) captured by the top share of rows."""
    y, s = np.asarray(y, dtype=float), np.asarray(score, dtype=float)
    captured = np.r_[0.0, np.cumsum(y[np.argsort(-s, kind="mergesort")]) / max(y.sum(), 1e-12)]
    share = np.linspace(0, 1, len(captured))
    lift, _ = metrics.lift_and_capture(y, s)
    figure, axes = _figure(f"Gains (lift at top 10 %: {lift:.2f})")
    axes.plot(share, captured)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set(xlabel="share of members, highest score first", ylabel="share captured")
    return figure


def decile_figure(table: pd.DataFrame) -> Figure:
    """Mean predicted and mean actual spend per decile of predicted spend (1 = highest)."""
    figure, axes = _figure("Spend by predicted decile")
    x = table["decile"].to_numpy()
    axes.bar(x - 0.2, table["mean_predicted"], width=0.4, label="predicted")
    axes.bar(x + 0.2, table["mean_actual"], width=0.4, label="actual")
    axes.set(xlabel="decile of predicted spend", ylabel="mean spend (currency)", xticks=x)
    axes.legend()
    return figure


def importance_figure(names: Sequence[str], gains: np.ndarray, top: int = 20) -> Figure:
    """Horizontal bars of the `top` features by total split gain."""
    order = np.argsort(gains)[-top:]
    figure, axes = _figure("Feature importance (gain)")
    axes.barh([names[i] for i in order], np.asarray(gains)[order])
    axes.set(xlabel="total gain")
    return figure
