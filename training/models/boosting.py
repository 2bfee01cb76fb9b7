"""What every LightGBM model here shares: hyperparameters, the feature encoding, booster
training, seeded row samples and the split of a calibration set from the training rows.

Matrices: one float column per feature in `Encoding.feature_names` order; a categorical value
is the index of its level in `Encoding.categories` (unseen levels and missing values NaN),
booleans are 0/1. Training uses pandas category dtype with the same fixed levels, so LightGBM
stores them (`pandas_categorical`) and both paths give the same codes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class BoostParams:
    """LightGBM hyperparameters. `seed` comes from settings; `num_threads` is fixed so that
    runs are reproducible (with `deterministic` and row-wise histograms). `quantile_rows` caps
    the training rows of the spend model's quantile boosters (a seeded sample);
    `stopping_rounds` is the patience of early stopping on a held-out cutoff.

    The trees correct a BTYD forecast (`training.models.prior`), so they are kept small and
    slow (15 leaves, 200 rows per leaf, L2 10, learning rate 0.03, early stopping): on the
    CDNOW backtest folds (not its holdout) this raised the churn ROC AUC from 0.674 to 0.693
    and the spend Gini from 0.611 to 0.621 over 31 leaves / 50 rows / L2 1 / rate 0.05."""

    seed: int = 42
    num_boost_round: int = 500
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_data_in_leaf: int = 200
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 10.0
    num_threads: int = 1
    quantile_rows: int = 100_000
    stopping_rounds: int = 30

    def lightgbm(self, objective: str, **extra: Any) -> dict[str, Any]:
        """The parameter dict for `lightgbm.train`."""
        params = asdict(self)
        params.pop("num_boost_round")
        params.pop("quantile_rows")
        params.pop("stopping_rounds")
        return {
            **params,
            "objective": objective,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
            **extra,
        }


@dataclass(frozen=True)
class Encoding:
    """Feature order and the fixed levels of each categorical feature."""

    feature_names: tuple[str, ...]
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """Features as LightGBM training input: floats, and category dtype with fixed levels."""
        missing = [c for c in self.feature_names if c not in features.columns]
        if missing:
            raise ValueError(f"features lack column(s) {', '.join(missing)}")
        out: dict[str, Any] = {}
        for name in self.feature_names:
            column = features[name]
            if name in self.categories:
                levels = list(self.categories[name])
                out[name] = pd.Categorical(column.astype("string"), categories=levels)
            else:
                out[name] = pd.to_numeric(column.astype("Float64"), errors="raise").astype(float)
        return pd.DataFrame(out, index=features.index)

    def matrix(self, features: pd.DataFrame) -> np.ndarray:
        """Features as the float matrix serving uses (category → level index, missing NaN)."""
        frame = self.frame(features)
        columns = [
            _codes(frame[n]) if n in self.categories else frame[n].to_numpy(dtype=float)
            for n in self.feature_names
        ]
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def _codes(column: pd.Series) -> np.ndarray:
    """Category codes as floats, NaN for missing or unseen values."""
    codes = column.cat.codes.to_numpy(dtype=float)
    codes[codes < 0] = np.nan
    return codes


def fit_encoding(features: pd.DataFrame) -> Encoding:
    """Every column of `features` in order; text and category columns become categorical with
    their sorted training levels."""
    categories = {}
    for name in features.columns:
        column = features[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(
            column.dtype
        ):
            levels = column.dropna().astype(str).unique()
            categories[str(name)] = tuple(sorted(levels))
    return Encoding(tuple(map(str, features.columns)), categories)


@dataclass(frozen=True)
class Validation:
    """Held-out rows (a later cutoff) that stop boosting once they stop improving."""

    frame: pd.DataFrame
    target: np.ndarray
    init_score: np.ndarray | None = None


def train_booster(
    frame: pd.DataFrame,
    target: np.ndarray,
    params: BoostParams,
    objective: str,
    init_score: np.ndarray | None = None,
    valid: Validation | None = None,
    **extra: Any,
) -> lgb.Booster:
    """Train one booster on encoded features (`Encoding.frame`), its raw score starting at
    `init_score` when given (an offset the trees correct; the booster does not store it).

    With `valid`, boosting stops after `params.stopping_rounds` rounds without improvement of
    the objective's loss on those rows and the booster keeps the best round only: a later
    cutoff decides how far the trees may move away from the start score.
    """
    data = lgb.Dataset(
        frame, label=target, init_score=init_score, categorical_feature="auto", free_raw_data=True
    )
    if valid is None:
        return lgb.train(
            params.lightgbm(objective, **extra), data, num_boost_round=params.num_boost_round
        )
    held = data.create_valid(valid.frame, label=valid.target, init_score=valid.init_score)
    booster = lgb.train(
        params.lightgbm(objective, **extra),
        data,
        num_boost_round=params.num_boost_round,
        valid_sets=[held],
        callbacks=[lgb.early_stopping(params.stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def prior_only(params: BoostParams) -> BoostParams:
    """Parameters under which a booster cannot split: one leaf, so the model is its offset
    (the BTYD forecast) and what its calibration adds (the `btyd` family)."""
    return replace(params, num_boost_round=1, min_data_in_leaf=2**31 - 1)


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of `size` of `n` rows drawn without replacement with `seed`; all rows
    when `size >= n`."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def calibration_split(
    X: pd.DataFrame,
    y: ArrayLike,
    X_calib: pd.DataFrame | None,
    y_calib: ArrayLike | None,
    share: float,
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """(training rows, their targets, calibration rows, their targets), targets as floats.

    The calibration set is (X_calib, y_calib) when given (the training jobs pass the later,
    held-out cutoff). Otherwise it is the last `share` of the rows of X: training rows are in
    time order, so those are the latest, as a held-out cutoff would be, and a model fitted
    without one (`sklearn.base.clone`, `cross_validate`) still calibrates out of sample.
    """
    target = np.asarray(y, dtype=float)
    if len(target) != len(X):
        raise ValueError(f"X has {len(X)} rows but y has {len(target)} values")
    if X_calib is not None and y_calib is not None:
        return X, target, X_calib, np.asarray(y_calib, dtype=float)
    if X_calib is not None or y_calib is not None:
        raise ValueError("pass both X_calib and y_calib, or neither")
    if not 0 < share < 1:
        raise ValueError(f"calibration_share must lie strictly between 0 and 1, got {share}")
    held = round(len(X) * share)
    if not 0 < held < len(X):
        raise ValueError(
            f"calibration_share {share} of {len(X)} rows leaves no training or calibration rows"
        )
    cut = len(X) - held
    return X.iloc[:cut], target[:cut], X.iloc[cut:], target[cut:]


def split_offset(
    offset: pd.DataFrame | None, offset_calib: pd.DataFrame | None, n_fit: int, held: bool
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(training, calibration) offsets matching `calibration_split`: `offset_calib` when the
    calibration rows were given (`held`), else the rows of `offset` after the first `n_fit`."""
    if offset is None:
        if offset_calib is not None:
            raise ValueError("offset_calib needs offset: pass both or neither")
        return None, None
    offset = offset.reset_index(drop=True)
    if held:
        if offset_calib is None:
            raise ValueError("with X_calib and an offset, pass offset_calib too")
        return offset, offset_calib.reset_index(drop=True)
    return offset.iloc[:n_fit].reset_index(drop=True), offset.iloc[n_fit:].reset_index(drop=True)
