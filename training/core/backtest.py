"""Rolling-origin backtests (pure): temporal splits only, no label window crosses a test cutoff.

A fold trains on labels over `label_days` and predicts `predict_days` ahead, as the production
model does (they differ when the forecast is carried past the labelled history with the BTYD
prior, `training.core.horizons`). For an evaluation cutoff e, a cutoff t is usable when its
training label window ends at or before e (t + label_days <= e); the latest usable cutoff
calibrates, the `train_cutoffs` before it train, and e is scored over `predict_days`. The
production model (`final_split`) is built the same way with the latest labelable cutoff
calibrating, so each fold's model is trained like it (the same number of cutoffs where the
data allows).

Every fold also scores, on the same rows, the BTYD forecast alone (`btyd`) and the naive
baseline (`baseline`, `training.models.prior.naive_forecast`): a model that does not beat them
is not worth serving.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.core import metrics
from training.core.dataset import NotEnoughHistory, TrainingData
from training.core.labels import CUTOFF, MEMBER_ID, as_cutoff
from training.core.tasks import Task
from training.models.boosting import BoostParams, prior_only
from training.models.persistence import Model, new_model
from training.models.prior import offsets_of
from training.models.spend import SpendModel

__all__ = ["NotEnoughHistory"]
Progress = Callable[[str], None]
FAMILIES = ("lightgbm", "btyd", "baseline")


@dataclass(frozen=True)
class Fold:
    """One split: train on `train`, calibrate on `calibrate` (labels over `label_days`) and
    score `evaluate` over `predict_days`."""

    train: tuple[pd.Timestamp, ...]
    calibrate: pd.Timestamp
    evaluate: pd.Timestamp | None = None
    label_days: int = 0
    predict_days: int = 0


@dataclass(frozen=True)
class BacktestResult:
    """Per-fold metrics (one row per evaluation cutoff), the families' primary metric per fold
    and every prediction."""

    folds: pd.DataFrame
    predictions: pd.DataFrame
    families: pd.DataFrame

    @property
    def mean(self) -> pd.Series:
        """Mean of each metric over the folds."""
        return self.folds.drop(columns=["evaluate", "calibrate", "train_cutoffs"]).mean()


def labelable(cutoffs: Sequence[pd.Timestamp], end: pd.Timestamp, days: int) -> list[pd.Timestamp]:
    """Cutoffs whose `days` window ends by `end` (exclusive end of the data), oldest first."""
    window = pd.Timedelta(days=days)
    return sorted(t for t in map(as_cutoff, cutoffs) if t + window <= end)


def final_split(
    cutoffs: Sequence[pd.Timestamp], end: pd.Timestamp, label_days: int, train_cutoffs: int
) -> Fold:
    """Production split: the latest labelable cutoff calibrates, up to `train_cutoffs` before
    it train."""
    ordered = labelable(cutoffs, end, label_days)
    if len(ordered) < 2:
        raise NotEnoughHistory(
            f"training needs at least two cutoffs with {label_days} days of data after them: "
            f"one to train, one to calibrate; found {len(ordered)}"
        )
    return Fold(tuple(ordered[:-1][-train_cutoffs:]), ordered[-1], None, label_days, label_days)


def plan_folds(
    cutoffs: Sequence[pd.Timestamp],
    end: pd.Timestamp,
    *,
    label_days: int,
    predict_days: int,
    folds: int,
    train_cutoffs: int,
    min_train: int = 1,
) -> list[Fold]:
    """Up to `folds` splits on the latest evaluation cutoffs whose `predict_days` window is
    observed, each with at least `min_train` (at most `train_cutoffs`) training cutoffs and
    one calibration cutoff whose `label_days` windows end by it; oldest evaluation first.
    Empty when no fold fits."""
    plans: list[Fold] = []
    for evaluate in reversed(labelable(cutoffs, end, predict_days)):
        before = labelable(cutoffs, evaluate, label_days)
        train = tuple(before[:-1][-train_cutoffs:])
        if before and len(train) >= min_train:
            plans.append(Fold(train, before[-1], evaluate, label_days, predict_days))
        if len(plans) == folds:
            break
    return plans[::-1]


def target(task: Task, frame: pd.DataFrame) -> np.ndarray:
    """The task's label as floats (0/1 or spend in currency)."""
    return frame[task.label].to_numpy(dtype=float)


def fit(task: Task, data: TrainingData, fold: Fold, params: BoostParams) -> Model:
    """A model of `task` trained on the fold's training cutoffs and calibrated on its
    calibration cutoff, each row starting from the BTYD forecast of its own cutoff.

    A classifier with a BTYD start is calibrated by Platt scaling: its raw score is already
    near-calibrated log-odds, and a two-parameter map keeps the ranking (isotonic steps tie
    members) and carries to a longer horizon. On the CDNOW backtest folds (carried 72 → 140
    days) it gave ROC AUC 0.698 and ECE 0.087 against isotonic's 0.693 and 0.117."""
    train = data.rows(fold.train, fold.label_days)
    calib = data.rows([fold.calibrate], fold.label_days)
    names = data.feature_names
    model = new_model(task.kind, params, calibration="platt" if data.priors else "isotonic")
    extra = {}
    if isinstance(model, SpendModel):
        extra = {"orders": train["orders"].to_numpy(), "orders_calib": calib["orders"].to_numpy()}
    return model.fit(
        train[names],
        target(task, train),
        offset=data.offsets(train, fold.label_days),
        X_calib=calib[names],
        y_calib=target(task, calib),
        offset_calib=data.offsets(calib, fold.label_days),
        **extra,
    )


def score(
    task: Task, model: Model, data: TrainingData, cutoff: pd.Timestamp, days: int
) -> pd.DataFrame:
    """member_id, cutoff, actual and prediction of `model` at `cutoff` over `days`, beside
    the BTYD (`btyd`) and naive (`baseline`) forecasts of the same rows; spend adds p10, p50,
    p90 and the orders (`orders`, `orders_mean`, `btyd_orders`, `baseline_orders`)."""
    rows = data.rows([cutoff], days)
    out = rows[[MEMBER_ID, CUTOFF]].copy()
    out["actual"] = target(task, rows)
    features = rows[list(model.encoding_.feature_names)]
    forecasts = data.forecasts(rows, days)
    offset = None if forecasts is None else offsets_of(forecasts["btyd"])
    if isinstance(model, SpendModel):
        predicted = model.predict_frame(features, offset)
        out["prediction"] = predicted["spend_mean"].to_numpy()
        out[["p10", "p50", "p90"]] = predicted[["p10", "p50", "p90"]].to_numpy()
        out["orders"] = rows["orders"].to_numpy(dtype=float)
        out["orders_mean"] = predicted["orders_mean"].to_numpy()
        column, orders = "expected_spend", "expected_purchases"
    else:
        out["prediction"] = model.predict_proba(features, offset)[:, 1]
        column, orders = "p_no_purchase", ""
    for family, forecast in (forecasts or {}).items():
        out[family] = forecast[column].to_numpy()
        if orders:
            out[f"{family}_orders"] = forecast[orders].to_numpy()
    return out


def calibrated_forecast(
    task: Task, data: TrainingData, fold: Fold, cutoff: pd.Timestamp, params: BoostParams
) -> np.ndarray:
    """The `btyd` family of a classifier as `train` would register it: the BTYD forecast
    through the calibrator fitted on the fold's calibration cutoff (`prior_only` boosters),
    scored at `cutoff`. Its ranking is not that of the raw P(no purchase): the Platt map also
    reads the expected purchases."""
    model = fit(task, data, fold, prior_only(params))
    return score(task, model, data, cutoff, fold.predict_days)["prediction"].to_numpy()


def evaluate(task: Task, scored: pd.DataFrame) -> dict[str, float]:
    """The task's metrics on scored rows."""
    actual, predicted = scored["actual"].to_numpy(), scored["prediction"].to_numpy()
    if task.kind == "binary":
        return metrics.binary_report(actual, predicted)
    report = metrics.spend_report(actual, predicted)
    report["coverage_p10_p90"] = metrics.interval_coverage(
        actual, scored["p10"].to_numpy(), scored["p90"].to_numpy()
    )
    report |= metrics.count_report(scored["orders"].to_numpy(), scored["orders_mean"].to_numpy())
    return report


def primary(task: Task, actual: np.ndarray, predicted: np.ndarray) -> float:
    """The task's primary metric (higher is better) of one family's predictions."""
    if task.kind == "binary":
        return metrics.roc_auc(actual, predicted)
    return metrics.normalized_gini(actual, predicted)


def family_metrics(task: Task, scored: pd.DataFrame) -> dict[str, float]:
    """The primary metric of the model, the BTYD forecast and the baseline on the same rows
    (the families a task has)."""
    actual = scored["actual"].to_numpy()
    columns = {"lightgbm": "prediction", "btyd": "btyd", "baseline": "baseline"}
    return {
        family: primary(task, actual, scored[column].to_numpy())
        for family, column in columns.items()
        if column in scored.columns
    }


def run(
    task: Task,
    data: TrainingData,
    folds: Sequence[Fold],
    params: BoostParams,
    progress: Progress | None = None,
) -> BacktestResult:
    """Train, calibrate and evaluate every fold; metrics per fold and all predictions."""
    records, scored_parts, families = [], [], []
    for i, fold in enumerate(folds, start=1):
        if fold.evaluate is None:
            raise ValueError("a backtest fold needs an evaluation cutoff")
        if progress is not None:
            progress(
                f"fold {i}/{len(folds)}: evaluate {fold.evaluate:%Y-%m-%d} over "
                f"{fold.predict_days} d, calibrate {fold.calibrate:%Y-%m-%d}, train on "
                f"{len(fold.train)} cutoffs (labels over {fold.label_days} d)"
            )
        model = fit(task, data, fold, params)
        scored = score(task, model, data, fold.evaluate, fold.predict_days)
        if task.kind == "binary" and data.priors:
            scored["btyd"] = calibrated_forecast(task, data, fold, fold.evaluate, params)
        common = {
            "evaluate": fold.evaluate,
            "calibrate": fold.calibrate,
            "train_cutoffs": len(fold.train),
        }
        records.append({**common, **evaluate(task, scored)})
        families.append({"evaluate": fold.evaluate, **family_metrics(task, scored)})
        scored_parts.append(scored)
    return BacktestResult(
        pd.DataFrame(records),
        pd.concat(scored_parts, ignore_index=True),
        pd.DataFrame(families),
    )
