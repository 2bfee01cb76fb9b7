"""Tiny synthetic rows for the model tests, built in code."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.models.boosting import BoostParams

FAST = BoostParams(seed=3, num_boost_round=60, min_data_in_leaf=20)


def draw(n: int, seed: int, positive_share: float | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows where P(y=1) = sigmoid(2x − 3) + a region effect; optionally resampled so a share
    `positive_share` of rows are positive (a base-rate shift that miscalibrates a model)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n * 4)
    region = rng.choice(["north", "south"], n * 4)
    p = 1 / (1 + np.exp(-(2 * x - 3 + (region == "south"))))
    y = (rng.random(n * 4) < p).astype(int)
    frame = pd.DataFrame({"x": x, "region": pd.array(region, dtype="string")})
    if positive_share is None:
        keep = np.arange(n)
    else:
        pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        k = int(n * positive_share)
        keep = np.r_[pos[:k], neg[: n - k]]
    return frame.iloc[keep].reset_index(drop=True), y[keep]


def drifting(n_early: int, n_late: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows in time order whose base rate drifts: early rows 50 % positive, the late rows
    natural (~15 %). A hold-out of the first rows and one of the last calibrate differently."""
    X_early, y_early = draw(n_early, seed=11, positive_share=0.5)
    order = np.random.default_rng(11).permutation(n_early)  # `draw` puts positives first
    X_late, y_late = draw(n_late, seed=12)
    X = pd.concat([X_early.iloc[order], X_late], ignore_index=True)
    return X, np.r_[y_early[order], y_late]


def spend_rows(n: int, seed: int, level: float = 3.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Zero-inflated spend: buy with P = sigmoid(x), amount ~ lognormal with log-mean
    `level` + 0.5 z."""
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.normal(size=n)
    buy = rng.random(n) < 1 / (1 + np.exp(-x))
    spend = np.where(buy, rng.lognormal(level + 0.5 * z, 0.5), 0.0)
    return pd.DataFrame({"x": x, "z": z}), spend
