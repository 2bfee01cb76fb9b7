"""SpendModel: the hurdle mean, the conformal interval, the scikit-learn regressor contract
(clone, cross-validation) and determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.base import clone, is_regressor
from sklearn.model_selection import TimeSeriesSplit, cross_validate

from tests.training.models.synthetic import FAST, spend_rows
from training.core import metrics
from training.models.boosting import BoostParams, fit_encoding, sample_rows, train_booster
from training.models.spend import QUANTILES, SpendModel, conformal_margin


def test_spend_model_interval_is_ordered_and_covers_held_out_rows() -> None:
    """p10 <= p50 <= p90, non-negative, ~80 % coverage on new rows; the hurdle mean keeps the
    training total."""
    X, y = spend_rows(3000, 1)
    X_cal, y_cal = spend_rows(3000, 2)
    model = SpendModel(FAST).fit(X, y, X_calib=X_cal, y_calib=y_cal)
    X_test, y_test = spend_rows(3000, 3)
    out = model.predict_interval(X_test)
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    assert (out[["expected_spend", "p10"]] >= 0).all().all()
    coverage = metrics.interval_coverage(y_test, out["p10"].to_numpy(), out["p90"].to_numpy())
    assert 0.72 <= coverage <= 0.88, f"split-conformal p10–p90 should cover ~80 %, got {coverage}"
    in_sample = metrics.spend_report(y, model.predict(X))
    assert abs(in_sample["bias_pct"]) < 5, "the hurdle mean keeps the training total"


def test_predict_is_the_expected_spend_of_predict_interval() -> None:
    """Regressor meaning: predict → 1-D expected spend, the expected_spend column of
    predict_interval (which keeps the index of X)."""
    X, y = spend_rows(1000, 4)
    X.index = X.index + 500
    model = SpendModel(FAST).fit(X, y)
    interval = model.predict_interval(X)
    assert is_regressor(model) and model.predict(X).shape == (len(X),)
    assert np.array_equal(model.predict(X), interval["expected_spend"].to_numpy())
    assert interval.index.equals(X.index)
    assert list(interval.columns) == ["expected_spend", "p10", "p50", "p90"]


def test_explicit_calibration_set_gives_the_lower_level_prediction() -> None:
    """With X_calib given, mean and interval are exactly those of the boosters and conformal
    margin built by hand with the same seed: the estimator wrapper changes no number."""
    X, y = spend_rows(1500, 4)
    X_cal, y_cal = spend_rows(1500, 5)
    params = replace(FAST, quantile_rows=800)
    encoding = fit_encoding(X)
    frame, buy = encoding.frame(X), y > 0
    p_buy = train_booster(frame, buy.astype(float), params, "binary")
    amount = train_booster(frame.loc[buy], y[buy], params, "gamma")
    sample = sample_rows(len(frame), 800, params.seed)
    quantile = [
        train_booster(frame.iloc[sample], y[sample], params, "quantile", alpha=q) for q in QUANTILES
    ]

    def raw_interval(rows: pd.DataFrame) -> np.ndarray:
        return np.column_stack([b.predict(encoding.matrix(rows), num_threads=1) for b in quantile])

    margin = conformal_margin(y_cal, np.clip(np.sort(raw_interval(X_cal), axis=1), 0, None), 0.8)
    model = SpendModel(params).fit(X, y, X_calib=X_cal, y_calib=y_cal)
    matrix = encoding.matrix(X)
    assert model.margin_ == margin
    expected = np.asarray(p_buy.predict(matrix, num_threads=1)) * np.asarray(
        amount.predict(matrix, num_threads=1)
    )
    assert np.array_equal(model.predict(X), expected)
    interval = raw_interval(X) + np.array([-margin, 0.0, margin])
    assert np.array_equal(model.predict_matrix(matrix), np.clip(np.sort(interval, axis=1), 0, None))


def test_spend_model_is_deterministic_for_a_seed() -> None:
    """Two fits with the same seed give identical outputs, although the quantile boosters train
    on a sample of rows; another seed draws another sample and other boosters."""
    X, y = spend_rows(2000, 4)
    X_cal, y_cal = spend_rows(2000, 5)
    sampled = replace(FAST, quantile_rows=800)

    def fitted(params: BoostParams) -> pd.DataFrame:
        model = SpendModel(params).fit(X, y, X_calib=X_cal, y_calib=y_cal)
        return model.predict_interval(X)

    first, second = fitted(sampled), fitted(sampled)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    other = fitted(replace(sampled, seed=4))
    assert not np.array_equal(other["p90"], first["p90"]), "the seed should reach the sample"


def test_default_calibration_set_is_the_last_rows() -> None:
    """Given rows in time order whose spend level drifts, a fit without X_calib equals
    training on all but the last 20 % and widening the interval on those, not the first."""
    early, y_early = spend_rows(1600, 6, level=2.0)
    late, y_late = spend_rows(400, 7, level=4.0)
    X, y = pd.concat([early, late], ignore_index=True), np.r_[y_early, y_late]
    cut = len(X) - 400
    model = SpendModel(FAST).fit(X, y)
    last = SpendModel(FAST).fit(X.iloc[:cut], y[:cut], X_calib=X.iloc[cut:], y_calib=y[cut:])
    first = SpendModel(FAST).fit(X.iloc[400:], y[400:], X_calib=X.iloc[:400], y_calib=y[:400])
    pd.testing.assert_frame_equal(model.predict_interval(X), last.predict_interval(X))
    assert model.margin_ == last.margin_ and model.margin_ != first.margin_
    assert model.margin_ > first.margin_, "the costlier late rows need a wider interval"


def test_clone_gives_an_unfitted_copy_with_the_same_params() -> None:
    """clone copies the hyperparameters and none of the learned state."""
    model = SpendModel(FAST, coverage=0.9, calibration_share=0.25).fit(*spend_rows(800, 8))
    copy = clone(model)
    assert copy.get_params() == {"params": FAST, "coverage": 0.9, "calibration_share": 0.25}
    assert not hasattr(copy, "buy_") and not hasattr(copy, "margin_"), "unfitted"


def test_cross_validate_runs_on_time_ordered_splits() -> None:
    """cross_validate with TimeSeriesSplit fits a clone per split and scores expected spend."""
    X, y = spend_rows(1200, 9)
    model = SpendModel(replace(FAST, num_boost_round=15))
    scores = cross_validate(
        model, X, y, cv=TimeSeriesSplit(n_splits=3), scoring=("r2", "neg_mean_absolute_error"),
        error_score="raise",
    )  # fmt: skip
    assert len(scores["test_r2"]) == 3 and np.isfinite(scores["test_r2"]).all()
    assert (scores["test_neg_mean_absolute_error"] < 0).all()
