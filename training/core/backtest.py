"""Rolling-origin backtests (pure): temporal splits only, no label window crosses a test cutoff.

For an evaluation cutoff e with horizon H, a cutoff t is usable when its label window
[t, t + H) ends at or before e (t + H <= e). The latest usable cutoff calibrates; the earlier
usable ones train; e is scored. The production model (`final_split`) is built the same way
with the latest labelable cutoff calibrating.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from memberscore.errors import MemberscoreError
from training.core import metrics
from training.core.dataset import feature_columns
from training.core.labels import CUTOFF, MEMBER_ID, as_cutoff
from training.core.tasks import Task
from training.models.boosting import BoostParams
from training.models.persistence import Model, new_model
from training.models.spend import SpendModel

Progress = Callable[[str], None]


class NotEnoughHistory(MemberscoreError):
    """Too few labelable cutoffs to train, calibrate and evaluate without leakage."""


@dataclass(frozen=True)
class Fold:
    """One split: train on `train`, calibrate on `calibrate`, evaluate on `evaluate`."""

    train: tuple[pd.Timestamp, ...]
    calibrate: pd.Timestamp
    evaluate: pd.Timestamp | None = None


@dataclass(frozen=True)
class BacktestResult:
    """Per-fold metrics (one row per evaluation cutoff), their mean and every prediction."""

    folds: pd.DataFrame
    predictions: pd.DataFrame

    @property
    def mean(self) -> pd.Series:
        """Mean of each metric over the folds."""
        return self.folds.drop(columns=["evaluate", "calibrate", "train_cutoffs"]).mean()


def usable(cutoffs: Sequence[pd.Timestamp], before: pd.Timestamp, horizon_days: int) -> list:
    """Cutoffs whose label window [t, t + horizon) ends at or before `before`, oldest first."""
    window = pd.Timedelta(days=horizon_days)
    return sorted(t for t in map(as_cutoff, cutoffs) if t + window <= before)


def final_split(cutoffs: Sequence[pd.Timestamp]) -> Fold:
    """Production split: the latest cutoff calibrates, all earlier ones train."""
    ordered = sorted(map(as_cutoff, cutoffs))
    if len(ordered) < 2:
        raise NotEnoughHistory(
            "training needs at least two labelable cutoffs: one to train, one to calibrate"
        )
    return Fold(tuple(ordered[:-1]), ordered[-1])


def plan_folds(
    cutoffs: Sequence[pd.Timestamp], horizon_days: int, folds: int = 3, min_train: int = 1
) -> list[Fold]:
    """Up to `folds` splits on the latest cutoffs that have `min_train` training cutoffs and one
    calibration cutoff whose label windows end before them; oldest evaluation first."""
    plans = []
    for evaluate in sorted(map(as_cutoff, cutoffs), reverse=True):
        before = usable(cutoffs, evaluate, horizon_days)
        if len(before) >= min_train + 1:
            plans.append(Fold(tuple(before[:-1]), before[-1], evaluate))
        if len(plans) == folds:
            break
    if not plans:
        raise NotEnoughHistory(
            f"no evaluation cutoff has {min_train + 1} earlier cutoffs whose {horizon_days}-day "
            "label windows end before it; add earlier cutoffs or use a shorter horizon"
        )
    return plans[::-1]


def rows(frame: pd.DataFrame, cutoffs: Sequence[pd.Timestamp]) -> pd.DataFrame:
    """Rows of `frame` at the given cutoffs."""
    return frame.loc[frame[CUTOFF].isin(list(cutoffs))]


def target(task: Task, frame: pd.DataFrame) -> np.ndarray:
    """The task's label as floats (0/1 or spend in currency)."""
    return frame[task.label].to_numpy(dtype=float)


def fit(task: Task, frame: pd.DataFrame, fold: Fold, params: BoostParams) -> Model:
    """A model of `task` trained on the fold's training cutoffs and calibrated on its
    calibration cutoff."""
    features = feature_columns(frame)
    train, calib = rows(frame, fold.train), rows(frame, [fold.calibrate])
    model = new_model(task.kind, params)
    return model.fit(
        train[features],
        target(task, train),
        X_calib=calib[features],
        y_calib=target(task, calib),
    )


def score(task: Task, model: Model, frame: pd.DataFrame) -> pd.DataFrame:
    """member_id, cutoff, actual and prediction (plus p10/p50/p90 for spend) per row."""
    out = frame[[MEMBER_ID, CUTOFF]].copy()
    out["actual"] = target(task, frame)
    features = frame[list(model.encoding_.feature_names)]
    if isinstance(model, SpendModel):
        predicted = model.predict_interval(features)
        out["prediction"] = predicted["expected_spend"].to_numpy()
        return out.join(predicted[["p10", "p50", "p90"]])
    out["prediction"] = model.predict_proba(features)[:, 1]
    return out


def evaluate(task: Task, scored: pd.DataFrame) -> dict[str, float]:
    """The task's metrics on scored rows."""
    actual, predicted = scored["actual"].to_numpy(), scored["prediction"].to_numpy()
    if task.kind == "binary":
        return metrics.binary_report(actual, predicted)
    report = metrics.spend_report(actual, predicted)
    report["coverage_p10_p90"] = metrics.interval_coverage(
        actual, scored["p10"].to_numpy(), scored["p90"].to_numpy()
    )
    return report


def run(
    task: Task,
    frame: pd.DataFrame,
    folds: Sequence[Fold],
    params: BoostParams,
    progress: Progress | None = None,
) -> BacktestResult:
    """Train, calibrate and evaluate every fold; metrics per fold and all predictions."""
    records, scored_parts = [], []
    for i, fold in enumerate(folds, start=1):
        if fold.evaluate is None:
            raise ValueError("a backtest fold needs an evaluation cutoff")
        if progress is not None:
            progress(
                f"fold {i}/{len(folds)}: evaluate {fold.evaluate:%Y-%m-%d}, "
                f"calibrate {fold.calibrate:%Y-%m-%d}, train on {len(fold.train)} cutoffs"
            )
        model = fit(task, frame, fold, params)
        scored = score(task, model, rows(frame, [fold.evaluate]))
        records.append(
            {
                "evaluate": fold.evaluate,
                "calibrate": fold.calibrate,
                "train_cutoffs": len(fold.train),
                **evaluate(task, scored),
            }
        )
        scored_parts.append(scored)
    return BacktestResult(pd.DataFrame(records), pd.concat(scored_parts, ignore_index=True))
