"""The hurdle spend model (CLV): expected spend P(buy) × E[spend | buy] and a p10/p50/p90
interval from quantile boosters widened by split-conformal on held-out rows.

Keeps its native `lightgbm.Booster`s so serving can call `predict_matrix` / `contributions` on
an encoded matrix (`Encoding.matrix`) with `num_threads=1`.
"""

from __future__ import annotations

from typing import Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin

from training.models.boosting import (
    BoostParams,
    calibration_split,
    fit_encoding,
    sample_rows,
    train_booster,
)

QUANTILES = (0.1, 0.5, 0.9)
QUANTILE_STEMS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)


class SpendModel(RegressorMixin, BaseEstimator):
    """Spend over the horizon (dataset currency): hurdle mean P(buy) × E[spend | buy], and a
    p10/p50/p90 interval from quantile boosters widened by split-conformal on held-out rows.
    Net spend below zero (refunds) is trained as zero.

    Parameters: `params` (LightGBM hyperparameters, `BoostParams()` when None), `coverage` (the
    share of held-out rows [p10, p90] should cover) and `calibration_share` (the share of the
    last rows that calibrate the interval when `fit` gets no calibration set). Learned:
    `encoding_`, `buy_`, `amount_`, `quantile_` (p10, p50, p90 boosters), `margin_` (currency).

    The mean is not rescaled to the held-out cutoff's total: measured on the simulator, such a
    level factor chased that one period's season and raised the total bias from +2 % to +38 %.
    """

    outputs = ("p10", "p50", "p90")

    def __init__(
        self,
        params: BoostParams | None = None,
        coverage: float = 0.8,
        calibration_share: float = 0.2,
    ) -> None:
        self.params = params
        self.coverage = coverage
        self.calibration_share = calibration_share

    def fit(
        self,
        X: pd.DataFrame,
        y: ArrayLike,
        *,
        X_calib: pd.DataFrame | None = None,
        y_calib: ArrayLike | None = None,
    ) -> Self:
        """Train on (X, y), y in currency, and widen the interval on (X_calib, y_calib), the
        later held-out cutoff; without it, on the last `calibration_share` of the rows of X
        (rows in time order), which then do not train."""
        X, target, X_calib, y_held = calibration_split(
            X, y, X_calib, y_calib, self.calibration_share
        )
        self._train(X, np.clip(target, 0, None), self.params or BoostParams())
        self.margin_ = 0.0
        interval = self.predict_matrix(self.encoding_.matrix(X_calib))
        self.margin_ = conformal_margin(np.clip(y_held, 0, None), interval, self.coverage)
        return self

    def _train(self, X: pd.DataFrame, target: np.ndarray, params: BoostParams) -> None:
        """The encoding, purchase, amount (buyers only) and quantile (row sample) boosters."""
        self.encoding_ = fit_encoding(X)
        frame = self.encoding_.frame(X)
        buy = target > 0
        if buy.sum() < 2 or (~buy).sum() < 2:
            raise ValueError("spend training rows need both buyers and non-buyers")
        self.buy_ = train_booster(frame, buy.astype(float), params, "binary")
        self.amount_ = train_booster(frame.loc[buy], target[buy], params, "gamma")
        sample = sample_rows(len(frame), params.quantile_rows, params.seed)
        self.quantile_ = [
            train_booster(frame.iloc[sample], target[sample], params, "quantile", alpha=q)
            for q in QUANTILES
        ]

    def expected_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Expected spend P(buy) × E[spend | buy], per row of an encoded matrix."""
        p_buy = np.asarray(self.buy_.predict(matrix, num_threads=1), dtype=float)
        amount = np.asarray(self.amount_.predict(matrix, num_threads=1), dtype=float)
        return p_buy * amount

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """An (n, 3) array of p10, p50, p90 spend, sorted per row and floored at 0."""
        q = np.column_stack([b.predict(matrix, num_threads=1) for b in self.quantile_])
        q[:, 0] -= self.margin_
        q[:, 2] += self.margin_
        return np.clip(np.sort(q, axis=1), 0.0, None)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected spend (currency over the horizon) for raw feature columns."""
        return self.expected_matrix(self.encoding_.matrix(X))

    def predict_interval(self, X: pd.DataFrame) -> pd.DataFrame:
        """expected_spend, p10, p50, p90 for raw feature columns, on the index of X."""
        matrix = self.encoding_.matrix(X)
        interval = self.predict_matrix(matrix)
        return pd.DataFrame(
            {
                "expected_spend": self.expected_matrix(matrix),
                "p10": interval[:, 0],
                "p50": interval[:, 1],
                "p90": interval[:, 2],
            },
            index=X.index,
        )

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP contributions of the purchase booster (log-odds of buying), bias last."""
        return np.asarray(self.buy_.predict(matrix, pred_contrib=True, num_threads=1))

    @property
    def boosters(self) -> dict[str, lgb.Booster]:
        """Boosters by file stem."""
        names = ("buy", "amount", *QUANTILE_STEMS)
        return dict(zip(names, [self.buy_, self.amount_, *self.quantile_], strict=True))


def conformal_margin(actual: np.ndarray, interval: np.ndarray, coverage: float) -> float:
    """Split-conformal (CQR) widening (currency) of [p10, p90] so that it covers `coverage` of
    the held-out rows; negative when the raw interval covers more than that."""
    scores = np.maximum(interval[:, 0] - actual, actual - interval[:, 2])
    n = len(scores)
    level = min(1.0, np.ceil((n + 1) * coverage) / n)
    return float(np.quantile(scores, level, method="higher"))
