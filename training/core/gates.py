"""Data-sufficiency gates before training and the quality grade after the backtest (pure).

Like the predictive features of commercial CRM suites, a model is not trained on too little:
`check_data` refuses (NotEnoughData, saying what is missing and what to do) when the history
is shorter than `min_history_days`, the population at the latest training cutoff is smaller
than `min_population`, or a class (churned / stayed, bought / did not) has fewer than
`min_class_rows` training rows. After the backtest, `grade` gives every version a letter:

- D: does not beat the naive baseline on the primary metric — never promoted;
- A: beats the baseline and (LightGBM) the BTYD forecast, ≥ 3 folds, calibrated (churn ECE
  ≤ 0.03, spend p10–p90 coverage within 0.05 of 0.80) and ≥ 10 × `min_class_rows` rows in its
  smaller class;
- B: beats the baseline and meets at least two of the other four; C: beats the baseline only.

The notes say which conditions failed, so `/v1/models` and the batch report can show why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from memberscore.errors import MemberscoreError
from training.core.tasks import Task

MAX_ECE = 0.03
NOMINAL_COVERAGE = 0.80
COVERAGE_TOLERANCE = 0.05
WANTED_FOLDS = 3
NO_SKILL = {"binary": 0.5, "spend": 0.0}  # ROC AUC / normalized Gini of a constant score


class NotEnoughData(MemberscoreError):
    """The data is too small to train or trust a model; the message says what is missing."""


@dataclass(frozen=True)
class Gates:
    """The minimums `check_data` enforces (from settings)."""

    min_history_days: int
    min_population: int
    min_class_rows: int


@dataclass(frozen=True)
class Grade:
    """A version's quality grade (A–D), whether it may be promoted and why not higher."""

    letter: str
    notes: tuple[str, ...]

    @property
    def promotable(self) -> bool:
        """Only a model that beats the naive baseline may become champion."""
        return self.letter != "D"

    def describe(self) -> str:
        """One line: the letter and its notes."""
        return f"quality grade {self.letter}" + (f": {'; '.join(self.notes)}" if self.notes else "")


def class_sizes(task: Task, values: np.ndarray) -> dict[str, int]:
    """Rows per class: churned / stayed, activated / not, or bought / did not (spend > 0)."""
    positive = values > 0 if task.kind == "spend" else values == 1
    names = {"churn": ("churned", "stayed"), "activation": ("activated", "not activated")}
    yes, no = names.get(task.name, ("bought", "did not buy"))
    return {yes: int(positive.sum()), no: int((~positive).sum())}


def check_data(
    task: Task,
    gates: Gates,
    *,
    history_days: int,
    population: int,
    training_labels: np.ndarray,
) -> None:
    """Raise NotEnoughData listing every minimum the data misses."""
    missing = []
    if history_days < gates.min_history_days:
        missing.append(f"{history_days} days of order history (at least {gates.min_history_days})")
    if population < gates.min_population:
        missing.append(
            f"{population:,} members in the {task.name} population at the latest cutoff "
            f"(at least {gates.min_population:,})"
        )
    for name, rows in class_sizes(task, np.asarray(training_labels, dtype=float)).items():
        if rows < gates.min_class_rows:
            missing.append(f"{rows:,} training rows {name} (at least {gates.min_class_rows:,})")
    if missing:
        raise NotEnoughData(
            f"not enough data to train {task.name}: " + "; ".join(missing) + ". Add history or "
            "members, build snapshots further back, or lower the minimums in settings "
            "(min_history_days, min_population, min_class_rows) knowing the model will be weak"
        )


def grade(
    task: Task,
    families: pd.Series,
    mean: pd.Series,
    *,
    folds: int,
    smallest_class: int,
    gates: Gates,
    chosen: str = "lightgbm",
) -> Grade:
    """The grade of a backtest: `families` is the mean primary metric per family (lightgbm,
    btyd, baseline), `chosen` the family registered and `mean` the LightGBM folds' metrics
    (their calibration is checked only when LightGBM is chosen)."""
    model = float(families[chosen])
    baseline = float(families.get("baseline", NO_SKILL[task.kind]))
    notes = []
    if not model > baseline:
        notes.append(f"{task.primary_metric} {model:.4f} does not beat the baseline {baseline:.4f}")
        return Grade("D", tuple(notes))
    checks = {
        "btyd": chosen == "btyd" or "btyd" not in families or model > float(families["btyd"]),
        "folds": folds >= WANTED_FOLDS,
        "calibration": chosen == "lightgbm" and calibrated(task, mean),
        "rows": smallest_class >= 10 * gates.min_class_rows,
    }
    if not checks["btyd"]:
        notes.append(f"does not beat the BTYD forecast ({float(families['btyd']):.4f})")
    if not checks["folds"]:
        notes.append(f"{folds} backtest fold(s), {WANTED_FOLDS} wanted")
    if not checks["calibration"]:
        notes.append(
            calibration_note(task, mean) if chosen == "lightgbm" else "calibration not backtested"
        )
    if not checks["rows"]:
        notes.append(f"{smallest_class:,} rows in the smaller class")
    passed = sum(checks.values())
    letter = "A" if passed == len(checks) else "B" if passed >= 2 else "C"
    return Grade(letter, tuple(notes))


def calibrated(task: Task, mean: pd.Series) -> bool:
    """Churn/activation ECE ≤ 0.03; spend p10–p90 coverage within 0.80 ± 0.05."""
    if task.kind == "binary":
        return bool(mean["ece"] <= MAX_ECE)
    return bool(abs(mean["coverage_p10_p90"] - NOMINAL_COVERAGE) <= COVERAGE_TOLERANCE)


def calibration_note(task: Task, mean: pd.Series) -> str:
    """What the calibration check measured."""
    if task.kind == "binary":
        return f"ECE {mean['ece']:.3f} above {MAX_ECE}"
    return f"p10–p90 coverage {mean['coverage_p10_p90']:.2f}, not {NOMINAL_COVERAGE} ± 0.05"
