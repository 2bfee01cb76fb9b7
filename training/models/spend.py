"""The spend model (CLV): expected orders and expected spend over the horizon, and a
p10/p50/p90 spend interval widened by split-conformal on held-out rows.

Boosters: `count` (Poisson, expected purchase orders), `spend` (Tweedie, expected net spend)
and three quantile boosters (interval). Each starts from the BTYD forecast of the same window
(`training.models.prior`: offsets `orders_log`, `spend_log`) and learns a correction of it; the
quantile boosters model spend relative to the BTYD expected spend, so an interval learned on a
short window scales with the forecast of a longer one. A fitted model carries its prior
(`prior_`), which computes the offsets from the scored rows' rfm features.

Keeps its native `lightgbm.Booster`s so serving can call `predict_matrix` / `contributions` on
an encoded matrix (`Encoding.matrix`) with `num_threads=1`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin

from training.models.boosting import (
    BoostParams,
    Validation,
    calibration_split,
    fit_encoding,
    sample_rows,
    split_offset,
    train_booster,
)
from training.models.prior import BtydPrior

QUANTILES = (0.1, 0.5, 0.9)
QUANTILE_STEMS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)
OUTPUTS = ("orders_mean", "spend_mean", "p10", "p50", "p90")
TWEEDIE_POWER = 1.5
SCALE_FLOOR = 0.05  # the interval's scale is at least this share of the median BTYD spend


class SpendModel(RegressorMixin, BaseEstimator):
    """Spend over the horizon (dataset currency): expected orders, expected spend and a
    p10/p50/p90 interval. Net spend below zero (refunds) is trained as zero.

    Parameters: `params` (LightGBM hyperparameters, `BoostParams()` when None), `coverage` (the
    share of held-out rows [p10, p90] should cover) and `calibration_share` (the share of the
    last rows that calibrate the interval when `fit` gets no calibration set). Learned:
    `encoding_`, `count_`, `spend_`, `quantile_` (p10, p50, p90 boosters), `levels_` (the
    balancing factors of expected orders and spend, `balance`), `margin_` (in units of the
    interval scale), `scale_floor_` (currency) and `prior_`.
    """

    outputs = OUTPUTS

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
        orders: ArrayLike | None = None,
        offset: pd.DataFrame | None = None,
        X_calib: pd.DataFrame | None = None,
        y_calib: ArrayLike | None = None,
        offset_calib: pd.DataFrame | None = None,
        orders_calib: ArrayLike | None = None,
    ) -> Self:
        """Train on (X, y), y in currency and `orders` the purchase orders of each row (when
        None, 1 for rows with spend), stop boosting and widen the interval on (X_calib,
        y_calib), the later held-out cutoff; without it, on the last `calibration_share` of
        the rows of X (rows in time order), which then do not train. `offset` (columns
        `orders_log`, `spend_log`) is the BTYD forecast of each row of X; `offset_calib` and
        `orders_calib` those of X_calib."""
        held = X_calib is not None
        X, target, X_calib, y_held = calibration_split(
            X, y, X_calib, y_calib, self.calibration_share
        )
        offset, offset_calib = split_offset(offset, offset_calib, len(X), held)
        target, y_held = np.clip(target, 0, None), np.clip(y_held, 0, None)
        counts = _counts(orders, target, 0, len(X))
        counts_held = (
            _counts(orders, y_held, len(X), None)
            if not held
            else _counts(orders_calib, y_held, 0, None)
        )
        self.prior_: BtydPrior | None = None
        self.scale_floor_ = 0.0
        if offset is not None:
            self.scale_floor_ = SCALE_FLOOR * float(np.median(np.exp(offset["spend_log"])))
        self.encoding_ = fit_encoding(X)
        params = self.params or BoostParams()
        train = _Rows(self.encoding_.frame(X), target, counts, offset)
        calib = _Rows(self.encoding_.frame(X_calib), y_held, counts_held, offset_calib)
        self._train(train, calib, params)
        self.margin_ = 0.0
        matrix = self.encoding_.matrix(X_calib)
        scale = self._scale(matrix, offset_calib)
        interval = self.predict_matrix(matrix, offset_calib)[:, 2:] / scale[:, None]
        self.margin_ = conformal_margin(y_held / scale, interval, self.coverage)
        return self

    def _train(self, train: _Rows, calib: _Rows, params: BoostParams) -> None:
        """The count, spend and quantile (row sample) boosters, each stopped early on the
        calibration rows."""
        if (train.spend > 0).sum() < 2 or (train.spend <= 0).sum() < 2:
            raise ValueError("spend training rows need both buyers and non-buyers")
        self.count_ = train_booster(
            train.frame,
            train.orders,
            params,
            "poisson",
            init_score=train.start("orders_log"),
            valid=Validation(calib.frame, calib.orders, calib.start("orders_log")),
        )
        self.spend_ = train_booster(
            train.frame,
            train.spend,
            params,
            "tweedie",
            init_score=train.start("spend_log"),
            valid=Validation(calib.frame, calib.spend, calib.start("spend_log")),
            tweedie_variance_power=TWEEDIE_POWER,
        )
        self.levels_ = (1.0, 1.0)
        matrix = self.encoding_.matrix(train.frame)
        means = self.predict_means(matrix, train.offset)
        self.levels_ = balance(train.orders, means[:, 0]), balance(train.spend, means[:, 1])
        scaled = train.spend / train.scale(self.scale_floor_)
        held = calib.spend / calib.scale(self.scale_floor_)
        sample = sample_rows(len(train.frame), params.quantile_rows, params.seed)
        self.quantile_ = [
            train_booster(
                train.frame.iloc[sample],
                scaled[sample],
                params,
                "quantile",
                valid=Validation(calib.frame, held),
                alpha=q,
            )
            for q in QUANTILES
        ]

    def with_prior(self, prior: BtydPrior | None) -> Self:
        """Use `prior` for the offsets of rows scored without explicit ones (serving)."""
        self.prior_ = prior
        return self

    def offset(self, matrix: np.ndarray, offset: pd.DataFrame | None = None) -> pd.DataFrame:
        """`offset` when given, else the prior's offsets of the rows, else zeros."""
        if offset is not None:
            return offset.reset_index(drop=True)
        if self.prior_ is not None:
            return self.prior_.offsets_matrix(matrix, self.encoding_.feature_names)
        return pd.DataFrame({"orders_log": np.zeros(len(matrix)), "spend_log": 0.0})

    def _scale(self, matrix: np.ndarray, offset: pd.DataFrame | None) -> np.ndarray:
        """The interval's unit per row: the BTYD expected spend (at least `scale_floor_`), or
        1 for a model without a prior."""
        if offset is None and self.prior_ is None:
            return np.ones(len(matrix))
        return interval_scale(self.offset(matrix, offset), self.scale_floor_)

    def predict_matrix(self, matrix: np.ndarray, offset: pd.DataFrame | None = None) -> np.ndarray:
        """An (n, 5) array: orders_mean, spend_mean, p10, p50, p90 (`OUTPUTS`); the interval
        sorted per row and floored at 0. The prior's offsets are computed once for both."""
        if offset is None and self.prior_ is not None:
            offset = self.offset(matrix)
        q = np.column_stack([b.predict(matrix, num_threads=1) for b in self.quantile_])
        q[:, 0] -= self.margin_
        q[:, 2] += self.margin_
        interval = np.clip(np.sort(q, axis=1), 0.0, None) * self._scale(matrix, offset)[:, None]
        return np.column_stack([self.predict_means(matrix, offset), interval])

    def predict_means(self, matrix: np.ndarray, offset: pd.DataFrame | None = None) -> np.ndarray:
        """An (n, 2) array: expected orders and expected spend, each exp(offset + booster
        score) times its balancing level `levels_`."""
        start = self.offset(matrix, offset)
        orders = self.count_.predict(matrix, raw_score=True, num_threads=1)
        spend = self.spend_.predict(matrix, raw_score=True, num_threads=1)
        return np.column_stack(
            [
                np.exp(start["orders_log"].to_numpy() + orders) * self.levels_[0],
                np.exp(start["spend_log"].to_numpy() + spend) * self.levels_[1],
            ]
        )

    def predict(self, X: pd.DataFrame, offset: pd.DataFrame | None = None) -> np.ndarray:
        """Expected spend (currency over the horizon) for raw feature columns."""
        return self.predict_matrix(self.encoding_.matrix(X), offset)[:, 1]

    def predict_frame(self, X: pd.DataFrame, offset: pd.DataFrame | None = None) -> pd.DataFrame:
        """The `OUTPUTS` columns for raw feature columns, on the index of X."""
        values = self.predict_matrix(self.encoding_.matrix(X), offset)
        return pd.DataFrame(values, columns=list(OUTPUTS), index=X.index)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP contributions of the spend booster (log scale, the correction of the BTYD
        forecast), bias last."""
        return np.asarray(self.spend_.predict(matrix, pred_contrib=True, num_threads=1))

    @property
    def boosters(self) -> dict[str, lgb.Booster]:
        """Boosters by file stem."""
        names = ("count", "spend", *QUANTILE_STEMS)
        return dict(zip(names, [self.count_, self.spend_, *self.quantile_], strict=True))


@dataclass(frozen=True)
class _Rows:
    """Encoded rows with their spend, order counts and offsets (training or calibration)."""

    frame: pd.DataFrame
    spend: np.ndarray
    orders: np.ndarray
    offset: pd.DataFrame | None

    def start(self, column: str) -> np.ndarray | None:
        """The offset column the booster of `column` starts from, or None without offsets."""
        return None if self.offset is None else self.offset[column].to_numpy()

    def scale(self, floor: float) -> np.ndarray:
        """The interval unit of each row (`interval_scale`; 1 without offsets)."""
        if self.offset is None:
            return np.ones(len(self.frame))
        return interval_scale(self.offset, floor)


def interval_scale(offset: pd.DataFrame, floor: float) -> np.ndarray:
    """The BTYD expected spend of each row, at least `floor` (currency): the unit in which the
    quantile boosters and the conformal margin measure spend."""
    return np.maximum(np.exp(offset["spend_log"].to_numpy()), floor)


def _counts(
    orders: ArrayLike | None, spend: np.ndarray, start: int, stop: int | None
) -> np.ndarray:
    """Order counts of rows [start, stop) of `orders`, or 1 per row with spend when None."""
    if orders is None:
        return (spend > 0).astype(float)
    return np.asarray(orders, dtype=float)[start:stop]


def balance(actual: np.ndarray, predicted: np.ndarray) -> float:
    """The factor that makes the training rows' predicted total equal their actual total.

    A log-link Tweedie booster does not keep totals (only the Poisson's canonical link does,
    and only at convergence; early stopping and shrinkage leave it short): measured on
    synthetic rows, the unbalanced expected spend summed to 0.93 of the training total.
    """
    total = float(np.sum(predicted))
    return float(np.sum(actual)) / total if total > 0 else 1.0


def conformal_margin(actual: np.ndarray, interval: np.ndarray, coverage: float) -> float:
    """Split-conformal (CQR) widening (currency) of [p10, p90] so that it covers `coverage` of
    the held-out rows; negative when the raw interval covers more than that."""
    scores = np.maximum(interval[:, 0] - actual, actual - interval[:, 2])
    n = len(scores)
    level = min(1.0, np.ceil((n + 1) * coverage) / n)
    return float(np.quantile(scores, level, method="higher"))
