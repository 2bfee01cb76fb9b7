"""The calibrated LightGBM classifier (churn, activation): a binary booster followed by an
isotonic or Platt calibrator fitted on held-out rows, never on the training rows.

Keeps its native `lightgbm.Booster` so serving can call `predict_matrix` / `contributions` on
an encoded matrix (`Encoding.matrix`) with `num_threads=1`.

The churn classifier starts from the BTYD forecast (`training.models.prior`): its booster learns
a correction of logit P(no purchase in the window), the `no_purchase_logit` offset. Training
passes the offsets of each cutoff; a fitted model carries the prior (`prior_`) that computes
them from the scored rows' own rfm features, so serving needs nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from training.models.boosting import (
    BoostParams,
    Validation,
    calibration_split,
    fit_encoding,
    split_offset,
    train_booster,
)
from training.models.prior import BtydPrior
from training.models.tree_shap import TreeShap

CalibrationMethod = Literal["isotonic", "platt"]
CLASSES = np.array([0, 1])
OFFSET = "no_purchase_logit"
COUNT = "orders_log"  # the BTYD log expected purchases the Platt map also reads


@dataclass(frozen=True)
class Calibrator:
    """Maps raw booster probabilities to calibrated ones.

    isotonic: piecewise-linear through (x, y); platt: expit(slope * logit(p) + count_slope *
    orders_log + intercept), `orders_log` being the BTYD log expected purchases over the same
    window (`count_slope` 0 for a model without that forecast).
    """

    method: CalibrationMethod
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    slope: float = 1.0
    intercept: float = 0.0
    count_slope: float = 0.0

    def __call__(self, raw: np.ndarray, orders_log: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probabilities in [0, 1]."""
        raw = np.asarray(raw, dtype=float)
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        z = self.slope * logit(np.clip(raw, 1e-6, 1 - 1e-6)) + self.intercept
        if self.count_slope != 0.0:
            if orders_log is None:
                raise ValueError("this calibrator reads the expected purchases (orders_log)")
            z = z + self.count_slope * np.asarray(orders_log, dtype=float)
        return expit(z)


def fit_calibrator(
    raw: np.ndarray,
    y: ArrayLike,
    method: CalibrationMethod,
    orders_log: np.ndarray | None = None,
) -> Calibrator:
    """Fit a calibrator on held-out raw probabilities and 0/1 outcomes. Platt with
    `orders_log` (the BTYD log expected purchases of the same rows and window) is a logistic
    regression on both: P(no purchase) then agrees with the count forecast, which on the CDNOW
    folds and holdout ranks members better than the BTYD P(no purchase) alone (ROC AUC 0.701
    / 0.706 vs 0.700 / 0.704 on two folds, 0.769 vs 0.762 on the holdout)."""
    y = np.asarray(y, dtype=float)
    if len(np.unique(y)) < 2:
        raise ValueError("the calibration cutoff holds one class only; use another cutoff")
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return Calibrator("isotonic", tuple(iso.X_thresholds_), tuple(iso.y_thresholds_))
    inputs = [logit(np.clip(np.asarray(raw, dtype=float), 1e-6, 1 - 1e-6))]
    if orders_log is not None:
        inputs.append(np.asarray(orders_log, dtype=float))
    lr = LogisticRegression(C=1e6).fit(np.column_stack(inputs), y)
    coef = [float(c) for c in lr.coef_[0]]
    return Calibrator(
        "platt",
        slope=coef[0],
        intercept=float(lr.intercept_[0]),
        count_slope=coef[1] if len(coef) > 1 else 0.0,
    )


class CalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A LightGBM binary classifier followed by a calibrator fitted on held-out rows.

    Parameters: `params` (LightGBM hyperparameters, `BoostParams()` when None), `calibration`
    ('isotonic' or 'platt') and `calibration_share` (the share of the last rows that calibrate
    when `fit` gets no calibration set). Learned: `encoding_`, `booster_`, `calibrator_`,
    `classes_` (always [0, 1]).
    """

    outputs = ("probability",)

    def __init__(
        self,
        params: BoostParams | None = None,
        calibration: CalibrationMethod = "isotonic",
        calibration_share: float = 0.2,
    ) -> None:
        self.params = params
        self.calibration = calibration
        self.calibration_share = calibration_share

    def fit(
        self,
        X: pd.DataFrame,
        y: ArrayLike,
        *,
        offset: pd.DataFrame | None = None,
        X_calib: pd.DataFrame | None = None,
        y_calib: ArrayLike | None = None,
        offset_calib: pd.DataFrame | None = None,
    ) -> Self:
        """Train on (X, y), y being 0/1, and calibrate on (X_calib, y_calib), the later
        held-out cutoff; without it, on the last `calibration_share` of the rows of X (rows in
        time order), which then do not train. `offset` (column `no_purchase_logit`, one row per
        row of X) is the raw score the booster starts from; `offset_calib` that of X_calib."""
        held = X_calib is not None
        X, target, X_calib, y_held = calibration_split(
            X, y, X_calib, y_calib, self.calibration_share
        )
        offset, offset_calib = split_offset(offset, offset_calib, len(X), held)
        if not np.isin(target, (0.0, 1.0)).all():
            raise ValueError("a classifier's y must hold 0/1 outcomes only")
        self.encoding_ = fit_encoding(X)
        self.prior_: BtydPrior | None = None
        self.booster_ = train_booster(
            self.encoding_.frame(X),
            target,
            self.params or BoostParams(),
            "binary",
            init_score=None if offset is None else offset[OFFSET].to_numpy(),
            valid=Validation(
                self.encoding_.frame(X_calib),
                y_held,
                None if offset_calib is None else offset_calib[OFFSET].to_numpy(),
            ),
        )
        self.calibrator_: Calibrator | None = None
        raw = self.predict_raw(self.encoding_.matrix(X_calib), offset_calib)
        count = None
        if offset_calib is not None and COUNT in offset_calib.columns:
            count = offset_calib[COUNT].to_numpy()
        self.calibrator_ = fit_calibrator(raw, y_held, self.calibration, count)
        self.classes_ = CLASSES
        return self

    def with_prior(self, prior: BtydPrior | None) -> Self:
        """Use `prior` for the offsets of rows scored without explicit ones (serving)."""
        self.prior_ = prior
        return self

    def starts(
        self, matrix: np.ndarray, offset: pd.DataFrame | None = None
    ) -> Mapping[str, np.ndarray] | None:
        """The BTYD offsets of the rows: `offset` when given, else the prior's, else None."""
        if offset is not None:
            return {name: offset[name].to_numpy() for name in offset.columns}
        if self.prior_ is None:
            return None
        return self.prior_.offset_columns(matrix, self.encoding_.feature_names)

    def predict_raw(self, matrix: np.ndarray, offset: pd.DataFrame | None = None) -> np.ndarray:
        """Uncalibrated probabilities for an encoded matrix: expit(offset + booster score),
        the offset from `offset` when given, else from the prior."""
        return self._raw(matrix, self.starts(matrix, offset))

    def _raw(self, matrix: np.ndarray, starts: Mapping[str, np.ndarray] | None) -> np.ndarray:
        start = np.zeros(len(matrix)) if starts is None else np.asarray(starts[OFFSET])
        score = np.asarray(self.booster_.predict(matrix, raw_score=True, num_threads=1))
        return np.asarray(expit(start + score), dtype=float)

    def predict_matrix(self, matrix: np.ndarray, offset: pd.DataFrame | None = None) -> np.ndarray:
        """Calibrated probabilities for an encoded matrix (the serving path); the offsets are
        computed once for the booster's start and the calibrator."""
        starts = self.starts(matrix, offset)
        raw = self._raw(matrix, starts)
        if self.calibrator_ is None:
            return raw
        count = None if starts is None or COUNT not in starts else starts[COUNT]
        return self.calibrator_(raw, count)

    def predict_proba(self, X: pd.DataFrame, offset: pd.DataFrame | None = None) -> np.ndarray:
        """An (n, 2) array of calibrated P(0), P(1) for raw feature columns."""
        probability = self.predict_matrix(self.encoding_.matrix(X), offset)
        return np.column_stack([1.0 - probability, probability])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """0/1 labels for raw feature columns: 1 where the calibrated P(1) exceeds 0.5."""
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP contributions (log-odds scale) of the booster, i.e. of the correction of the
        offset, one column per feature plus the bias last: exact TreeSHAP, LightGBM's
        `pred_contrib` values, read from tables built once per booster
        (`training.models.tree_shap`)."""
        return self.explainer().contributions(matrix)

    def explainer(self) -> TreeShap:
        """The booster's SHAP tables, built on first use (≈ 0.2–0.5 s for 300 trees) and kept
        while the booster is the same."""
        kept = self.__dict__.get("shap_")
        if kept is None or kept[0] is not self.booster_:
            kept = (self.booster_, TreeShap.of(self.booster_))
            self.shap_ = kept
        return kept[1]

    @property
    def boosters(self) -> dict[str, lgb.Booster]:
        """Boosters by file stem."""
        return {"booster": self.booster_}
