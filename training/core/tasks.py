"""The three supervised tasks: what each predicts, over which population, with which features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from memberscore.settings import Settings

Kind = Literal["binary", "spend"]


@dataclass(frozen=True)
class Task:
    """One model: its registry name, label column, Feast feature service and primary metric.

    `primary_metric` decides promotion (higher is better). ROC AUC rather than PR AUC for the
    classifiers: it does not move with the base rate, which changes from one backtest window to
    the next, so a champion and a challenger evaluated on different windows stay comparable.
    """

    name: str
    kind: Kind
    label: str
    feature_service: str
    primary_metric: str


TASKS: dict[str, Task] = {
    "churn": Task("churn", "binary", "churned", "churn_v1", "roc_auc"),
    "activation": Task("activation", "binary", "activated", "activation_v1", "roc_auc"),
    "clv": Task("clv", "spend", "spend", "clv_v1", "normalized_gini"),
}


def get_task(name: str) -> Task:
    """The task called `name`, or ValueError listing the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None


def default_horizon(settings: Settings, task: Task) -> int:
    """The task's default horizon from settings (days)."""
    return {
        "churn": settings.churn_horizon_days,
        "activation": settings.activation_horizon_days,
        "clv": settings.clv_horizon_days,
    }[task.name]
