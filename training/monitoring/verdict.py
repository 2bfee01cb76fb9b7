"""Findings past the thresholds of `settings.monitor`, and the retraining they call for."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from memberscore.settings import MonitorSettings

Cause = Literal["drift", "missing", "decay"]


@dataclass(frozen=True)
class Finding:
    """One figure past its threshold: the model, the cause, what moved and by how much."""

    model: str
    cause: Cause
    subject: str
    value: float
    limit: float
    text: str


def drift_findings(model: str, table: pd.DataFrame, limits: MonitorSettings) -> list[Finding]:
    """Variables of a drift table (`drift.drift_table`) whose PSI reaches `psi_alert` or whose
    missing share moved by at least `missing_change`, largest first."""
    found = []
    for row in table.to_dict("records"):
        name, kind = str(row["variable"]), str(row["kind"])
        value, change = float(row["psi"]), float(row["missing_change"])
        if _at_least(value, limits.psi_alert):
            text = (
                f"{model}: {kind} {name} drifted, PSI {value:.3f} (threshold {limits.psi_alert:g})"
            )
            found.append(Finding(model, "drift", name, value, limits.psi_alert, text))
        if _at_least(abs(change), limits.missing_change):
            text = (
                f"{model}: {kind} {name} missing share {float(row['missing_reference']):.1%} -> "
                f"{float(row['missing_current']):.1%} (threshold ±{limits.missing_change:.0%})"
            )
            found.append(Finding(model, "missing", name, change, limits.missing_change, text))
    return found


def decay_findings(
    model: str,
    observed: Mapping[str, float],
    promoted: Mapping[str, float],
    limits: MonitorSettings,
) -> list[Finding]:
    """Matured figures (`performance.matured_metrics`) worse than the promoted backtest ones
    by the settings' margins: AUC down `auc_drop`, ECE up `ece_rise`, normalized Gini down
    `gini_drop`, and a total bias beyond ±`bias_pct` (percent, whatever the backtest had)."""
    found = []
    checks = (
        ("roc_auc", -1, limits.auc_drop),
        ("ece", 1, limits.ece_rise),
        ("normalized_gini", -1, limits.gini_drop),
    )
    for name, worse, margin in checks:
        now, then = observed.get(name, math.nan), promoted.get(name, math.nan)
        if _at_least(worse * (now - then), margin) and margin > 0:
            found.append(
                Finding(
                    model,
                    "decay",
                    name,
                    now,
                    then - worse * margin,
                    f"{model}: matured {name} {now:.3f} against {then:.3f} at promotion "
                    f"(allowed change {margin:g})",
                )
            )
    bias = observed.get("bias_pct", math.nan)
    if _at_least(abs(bias), limits.bias_pct):
        found.append(
            Finding(
                model,
                "decay",
                "bias_pct",
                bias,
                limits.bias_pct,
                f"{model}: matured total bias {bias:+.1f}% (threshold ±{limits.bias_pct:g}%)",
            )
        )
    return found


def _at_least(value: float, limit: float) -> bool:
    """value >= limit, False for NaN."""
    return not math.isnan(value) and value >= limit


def retrain_command(task: str, horizon_days: int, default_horizon_days: int) -> str:
    """The command that trains a new version of the model `task` at its horizon (days)."""
    extra = "" if horizon_days == default_horizon_days else f" --horizon {horizon_days}"
    return f"memberscore train {task}{extra} && memberscore promote {task}"
