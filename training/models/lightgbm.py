"""LightGBM models: calibrated classifiers (churn, activation) and a hurdle spend model (CLV).

No I/O except `save`/`load` of a model folder. Models follow the scikit-learn contract
(hyperparameters in `__init__`, learned state ends in `_`, `fit` returns self) and keep native
`lightgbm.Booster`s so serving can call `Booster.predict(matrix, num_threads=1)`.

Matrices: one float column per feature in `Encoding.feature_names` order; a categorical value
is the index of its level in `Encoding.categories` (unseen levels and missing values NaN),
booleans are 0/1. Training uses pandas category dtype with the same fixed levels, so LightGBM
stores them (`pandas_categorical`) and both paths give the same codes.

Calibration and intervals are fitted on a later, held-out cutoff (`X_calib`), never on the
training rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

META_FILE = "model.json"
QUANTILES = (0.1, 0.5, 0.9)
CalibrationMethod = Literal["isotonic", "platt"]


@dataclass(frozen=True)
class BoostParams:
    """LightGBM hyperparameters. `seed` comes from settings; `num_threads` is fixed so that
    runs are reproducible (with `deterministic` and row-wise histograms). `quantile_rows` caps
    the training rows of the spend model's quantile boosters (a seeded sample)."""

    seed: int = 42
    num_boost_round: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.9
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    num_threads: int = 1
    quantile_rows: int = 100_000

    def lightgbm(self, objective: str, **extra: Any) -> dict[str, Any]:
        """The parameter dict for `lightgbm.train`."""
        params = asdict(self)
        params.pop("num_boost_round")
        params.pop("quantile_rows")
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


def train_booster(
    frame: pd.DataFrame, target: np.ndarray, params: BoostParams, objective: str, **extra: Any
) -> lgb.Booster:
    """Train one booster on encoded features (`Encoding.frame`)."""
    data = lgb.Dataset(frame, label=target, categorical_feature="auto", free_raw_data=True)
    return lgb.train(
        params.lightgbm(objective, **extra), data, num_boost_round=params.num_boost_round
    )


@dataclass(frozen=True)
class Calibrator:
    """Maps raw booster probabilities to calibrated ones.

    isotonic: piecewise-linear through (x, y); platt: expit(slope * logit(p) + intercept).
    """

    method: CalibrationMethod
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    slope: float = 1.0
    intercept: float = 0.0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities in [0, 1]."""
        raw = np.asarray(raw, dtype=float)
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        z = logit(np.clip(raw, 1e-6, 1 - 1e-6))
        return expit(self.slope * z + self.intercept)


def fit_calibrator(raw: np.ndarray, y: np.ndarray, method: CalibrationMethod) -> Calibrator:
    """Fit a calibrator on held-out raw probabilities and 0/1 outcomes."""
    y = np.asarray(y, dtype=float)
    if len(np.unique(y)) < 2:
        raise ValueError("the calibration cutoff holds one class only; use another cutoff")
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return Calibrator("isotonic", tuple(iso.X_thresholds_), tuple(iso.y_thresholds_))
    z = logit(np.clip(np.asarray(raw, dtype=float), 1e-6, 1 - 1e-6)).reshape(-1, 1)
    lr = LogisticRegression(C=1e6).fit(z, y)
    return Calibrator("platt", slope=float(lr.coef_[0, 0]), intercept=float(lr.intercept_[0]))


class CalibratedClassifier:
    """A LightGBM binary classifier followed by a calibrator fitted on a held-out cutoff."""

    outputs = ("probability",)

    def __init__(
        self, params: BoostParams | None = None, calibration: CalibrationMethod = "isotonic"
    ) -> None:
        self.params = params
        self.calibration = calibration

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, X_calib: pd.DataFrame, y_calib: np.ndarray
    ) -> Self:
        """Train on (X, y) and calibrate on the later cutoff (X_calib, y_calib); y is 0/1."""
        params = self.params or BoostParams()
        self.encoding_ = fit_encoding(X)
        target = np.asarray(y, dtype=float)
        self.booster_ = train_booster(self.encoding_.frame(X), target, params, "binary")
        raw = np.asarray(self.booster_.predict(self.encoding_.matrix(X_calib), num_threads=1))
        self.calibrator_: Calibrator | None = fit_calibrator(raw, y_calib, self.calibration)
        return self

    def predict_raw(self, matrix: np.ndarray) -> np.ndarray:
        """Uncalibrated booster probabilities for an encoded matrix."""
        return np.asarray(self.booster_.predict(matrix, num_threads=1), dtype=float)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for an encoded matrix (the serving path)."""
        raw = self.predict_raw(matrix)
        return raw if self.calibrator_ is None else self.calibrator_(raw)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities for raw feature columns."""
        return self.predict_matrix(self.encoding_.matrix(X))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP contributions (log-odds scale), one column per feature plus the bias last."""
        return np.asarray(self.booster_.predict(matrix, pred_contrib=True, num_threads=1))

    @property
    def boosters(self) -> dict[str, lgb.Booster]:
        """Boosters by file stem."""
        return {"booster": self.booster_}


class SpendModel:
    """Spend over the horizon (dataset currency): hurdle mean P(buy) × E[spend | buy], and a
    p10/p50/p90 interval from quantile boosters widened by split-conformal on the held-out
    cutoff. Net spend below zero (refunds) is trained as zero.

    The mean is not rescaled to the held-out cutoff's total: measured on the simulator, such a
    level factor chased that one period's season and raised the total bias from +2 % to +38 %.
    """

    outputs = ("p10", "p50", "p90")

    def __init__(self, params: BoostParams | None = None, coverage: float = 0.8) -> None:
        self.params = params
        self.coverage = coverage

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, X_calib: pd.DataFrame, y_calib: np.ndarray
    ) -> Self:
        """Train on (X, y) and calibrate the interval on (X_calib, y_calib); y in currency."""
        params = self.params or BoostParams()
        self.encoding_ = fit_encoding(X)
        frame, target = self.encoding_.frame(X), np.clip(np.asarray(y, dtype=float), 0, None)
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
        self.margin_ = 0.0
        matrix, y_calib = self.encoding_.matrix(X_calib), np.clip(y_calib, 0, None)
        self.margin_ = _conformal_margin(y_calib, self.predict_matrix(matrix), self.coverage)
        return self

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

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """expected_spend, p10, p50, p90 for raw feature columns."""
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
        names = ("buy", "amount", *(f"q{round(q * 100):02d}" for q in QUANTILES))
        return dict(zip(names, [self.buy_, self.amount_, *self.quantile_], strict=True))


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of `size` of `n` rows drawn without replacement with `seed`; all rows
    when `size >= n`."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _conformal_margin(actual: np.ndarray, interval: np.ndarray, coverage: float) -> float:
    """Split-conformal (CQR) widening of [p10, p90] so it covers `coverage` of held-out rows."""
    scores = np.maximum(interval[:, 0] - actual, actual - interval[:, 2])
    n = len(scores)
    level = min(1.0, np.ceil((n + 1) * coverage) / n)
    return float(np.quantile(scores, level, method="higher"))


Model = CalibratedClassifier | SpendModel


def save(model: Model, folder: Path, **extra: Any) -> Path:
    """Write the boosters (`<stem>.txt`) and `model.json` (encoding, calibration, `extra` such
    as horizon_days and feature_service) to `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, booster in model.boosters.items():
        booster.save_model(str(folder / f"{stem}.txt"))
    meta: dict[str, Any] = {
        "kind": "binary" if isinstance(model, CalibratedClassifier) else "spend",
        "feature_names": list(model.encoding_.feature_names),
        "categories": {k: list(v) for k, v in model.encoding_.categories.items()},
        "outputs": list(model.outputs),
        "params": asdict(model.params or BoostParams()),
        **extra,
    }
    if isinstance(model, CalibratedClassifier):
        meta["calibrator"] = None if model.calibrator_ is None else asdict(model.calibrator_)
    else:
        meta.update(margin=model.margin_, coverage=model.coverage)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def read_meta(folder: Path) -> dict[str, Any]:
    """The `model.json` of a saved model folder."""
    return json.loads((folder / META_FILE).read_text())


def load(folder: Path) -> Model:
    """A model saved by `save`, with its native boosters (no pyfunc)."""
    meta = read_meta(folder)
    params = BoostParams(**meta["params"])
    encoding = Encoding(
        tuple(meta["feature_names"]), {k: tuple(v) for k, v in meta["categories"].items()}
    )

    def booster(stem: str) -> lgb.Booster:
        return lgb.Booster(model_file=str(folder / f"{stem}.txt"))

    if meta["kind"] == "binary":
        classifier = CalibratedClassifier(params)
        cal = meta["calibrator"]
        classifier.calibrator_ = (
            None
            if cal is None
            else Calibrator(
                cal["method"], tuple(cal["x"]), tuple(cal["y"]), cal["slope"], cal["intercept"]
            )
        )
        classifier.booster_ = booster("booster")
        classifier.encoding_ = encoding
        return classifier
    spend = SpendModel(params, coverage=meta["coverage"])
    spend.buy_, spend.amount_ = booster("buy"), booster("amount")
    spend.quantile_ = [booster(f"q{round(q * 100):02d}") for q in QUANTILES]
    spend.margin_ = meta["margin"]
    spend.encoding_ = encoding
    return spend


def new_model(kind: str, params: BoostParams) -> Model:
    """An unfitted model for a task kind ('binary' or 'spend')."""
    if kind == "binary":
        return CalibratedClassifier(params)
    if kind == "spend":
        return SpendModel(params)
    raise ValueError(f"unknown model kind {kind!r}; expected 'binary' or 'spend'")
