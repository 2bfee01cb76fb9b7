"""Drift tables and findings: a drift injected into one feature is flagged, an undisturbed
repeat draw of the same population is not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memberscore.settings import MonitorSettings
from training.monitoring.drift import drift_table, references
from training.monitoring.verdict import drift_findings

COLUMNS = ["recency_days", "orders_365d", "spend_365d", "tier"]


def population(seed: int, rows: int = 20_000) -> pd.DataFrame:
    """Members with three numeric features (5 % missing) and a tier, one draw of `seed`."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "recency_days": rng.exponential(60, rows).round(),
            "orders_365d": rng.poisson(3, rows).astype(float),
            "spend_365d": rng.gamma(2.0, 150.0, rows),
            "tier": rng.choice(["basic", "silver", "gold"], rows, p=[0.6, 0.3, 0.1]),
        }
    )
    for name in ("recency_days", "spend_365d"):
        frame.loc[rng.random(rows) < 0.05, name] = np.nan
    return frame


def test_an_injected_drift_is_flagged_and_only_that_feature() -> None:
    limits = MonitorSettings()
    refs = references(population(1), COLUMNS, limits.bins, text=["tier"])
    drifted = population(2)
    drifted["spend_365d"] *= 1.8  # prices rose: spend moved, nothing else did
    table = drift_table(refs, drifted)
    found = drift_findings("clv", table, limits)
    assert [f.subject for f in found] == ["spend_365d"], table.to_string()
    assert found[0].cause == "drift" and "PSI" in found[0].text


def test_an_undisturbed_repeat_stays_quiet() -> None:
    limits = MonitorSettings()
    refs = references(population(1), COLUMNS, limits.bins, text=["tier"])
    table = drift_table(refs, population(3))
    assert drift_findings("clv", table, limits) == [], table.to_string()
    assert table["psi"].max() < 0.01, "two draws of one population barely differ"


def test_a_feature_going_missing_is_flagged() -> None:
    limits = MonitorSettings()
    refs = references(population(1), COLUMNS, limits.bins, text=["tier"])
    current = population(4)
    current.loc[current.index[:6_000], "orders_365d"] = np.nan  # 30 % lost upstream
    found = drift_findings("churn", drift_table(refs, current), limits)
    missing = [f for f in found if f.cause == "missing"]
    assert [f.subject for f in missing] == ["orders_365d"]
    assert missing[0].value > 0.25
