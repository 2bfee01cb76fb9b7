"""Which horizon to label when the requested one does not fit the history (pure).

A model forecasts `horizon_days` (H) ahead. Training needs labels over a window after each
training cutoff, and the backtest needs, on top, evaluation cutoffs whose windows are observed
too. When H leaves too few labelable cutoffs for `folds` honest folds, the model is trained on
the longest horizon h < H (whole weeks) that does, and its forecast is carried to H with the
BTYD prior: the trees learn a correction of the BTYD forecast over h, which is then applied to
the BTYD forecast over H (`training.models.prior`). The backtest checks that carry the same
way: its folds train on labels over h·h/H and are scored over h, the same ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from training.core.backtest import Fold, labelable, plan_folds
from training.core.dataset import NotEnoughHistory

WEEK = 7


@dataclass(frozen=True)
class HorizonPlan:
    """The forecast horizon, the horizon the final model is labelled on and the folds."""

    horizon_days: int
    label_days: int
    folds: tuple[Fold, ...]

    @property
    def extended(self) -> bool:
        """True when the forecast is carried beyond the labelled horizon."""
        return self.label_days < self.horizon_days

    def describe(self) -> str:
        """One line for the run output."""
        if not self.extended:
            return f"labels over the {self.horizon_days}-day horizon itself"
        return (
            f"the data cannot label {self.horizon_days} days: trained on {self.label_days}-day "
            f"labels and carried to {self.horizon_days} days with the BTYD forecast; the "
            f"backtest checks the same carry ({self.folds[0].label_days} → "
            f"{self.label_days} days)"
        )


def fold_days(label_days: int, horizon_days: int) -> int:
    """The training horizon of a backtest fold: the final model's ratio h / H applied once
    more (h·h/H, at least a week); h itself when h = H."""
    if label_days >= horizon_days:
        return label_days
    return max(WEEK, round(label_days * label_days / horizon_days))


def candidates(horizon_days: int) -> list[int]:
    """H itself, then every whole number of weeks below it, longest first."""
    weeks = (horizon_days - 1) // WEEK
    return [horizon_days, *(WEEK * w for w in range(weeks, 0, -1))]


def plan_horizon(
    cutoffs: Sequence[pd.Timestamp],
    end: pd.Timestamp,
    horizon_days: int,
    *,
    folds: int,
    train_cutoffs: int,
    min_train: int,
) -> HorizonPlan:
    """The longest label horizon ≤ H with `folds` folds of at least `min_train` training
    cutoffs; when none has that many, the one with the most folds (the longest of those).
    NotEnoughHistory when no horizon gives a single fold."""
    best: HorizonPlan | None = None
    for label_days in candidates(horizon_days):
        if len(labelable(cutoffs, end, label_days)) < min_train + 1:
            continue
        found = plan_folds(
            cutoffs,
            end,
            label_days=fold_days(label_days, horizon_days),
            predict_days=label_days,
            folds=folds,
            train_cutoffs=train_cutoffs,
            min_train=min_train,
        )
        if found and (best is None or len(found) > len(best.folds)):
            best = HorizonPlan(horizon_days, label_days, tuple(found))
        if len(found) >= folds:
            break
    if best is None:
        span = f"{min(cutoffs):%Y-%m-%d}..{max(cutoffs):%Y-%m-%d}" if cutoffs else "none"
        raise NotEnoughHistory(
            f"no horizon up to {horizon_days} days leaves one backtest fold with {min_train} "
            f"training cutoffs, a calibration cutoff and an evaluation cutoff whose windows are "
            f"observed (cutoffs {span}, data until {end:%Y-%m-%d}); build feature snapshots "
            "further back (`memberscore features build --from ...`) or add history"
        )
    return best
