"""SpendModel: expected orders and spend, the conformal interval, the BTYD offset, the
scikit-learn regressor contract (clone, cross-validation) and determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.base import clone, is_regressor
from sklearn.model_selection import TimeSeriesSplit, cross_validate

from tests.training.models.synthetic import FAST, spend_rows
from training.core import metrics
from training.models.boosting import (
    BoostParams,
    Validation,
    fit_encoding,
    sample_rows,
    train_booster,
)
from training.models.spend import (
    OUTPUTS,
    QUANTILES,
    TWEEDIE_POWER,
    SpendModel,
    conformal_margin,
)


def test_spend_model_interval_is_ordered_and_covers_held_out_rows() -> None:
    """p10 <= p50 <= p90, non-negative, ~80 % coverage on new rows; the Tweedie mean keeps the
    training total."""
    X, y = spend_rows(3000, 1)
    X_cal, y_cal = spend_rows(3000, 2)
    model = SpendModel(FAST).fit(X, y, X_calib=X_cal, y_calib=y_cal)
    X_test, y_test = spend_rows(3000, 3)
    out = model.predict_frame(X_test)
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    assert (out[["spend_mean", "orders_mean", "p10"]] >= 0).all().all()
    coverage = metrics.interval_coverage(y_test, out["p10"].to_numpy(), out["p90"].to_numpy())
    assert 0.72 <= coverage <= 0.88, f"split-conformal p10–p90 should cover ~80 %, got {coverage}"
    in_sample = metrics.spend_report(y, model.predict(X))
    assert abs(in_sample["bias_pct"]) < 5, "the Tweedie mean keeps the training total"


def test_predict_is_the_expected_spend_of_predict_frame() -> None:
    """Regressor meaning: predict → 1-D expected spend, the spend_mean column of predict_frame
    (which keeps the index of X)."""
    X, y = spend_rows(1000, 4)
    X.index = X.index + 500
    model = SpendModel(FAST).fit(X, y)
    out = model.predict_frame(X)
    assert is_regressor(model) and model.predict(X).shape == (len(X),)
    assert np.array_equal(model.predict(X), out["spend_mean"].to_numpy())
    assert out.index.equals(X.index)
    assert list(out.columns) == list(OUTPUTS) == ["orders_mean", "spend_mean", "p10", "p50", "p90"]


def test_explicit_calibration_set_gives_the_lower_level_prediction() -> None:
    """With X_calib given, means and interval are exactly those of the boosters (stopped early
    on the calibration rows) and the conformal margin built by hand with the same seed."""
    X, y = spend_rows(1500, 4)
    X_cal, y_cal = spend_rows(1500, 5)
    params = replace(FAST, quantile_rows=800)
    encoding = fit_encoding(X)
    frame, held = encoding.frame(X), encoding.frame(X_cal)
    buys, buys_cal = (y > 0).astype(float), (y_cal > 0).astype(float)
    count = train_booster(frame, buys, params, "poisson", valid=Validation(held, buys_cal))
    spend = train_booster(
        frame, y, params, "tweedie", valid=Validation(held, y_cal),
        tweedie_variance_power=TWEEDIE_POWER,
    )  # fmt: skip
    sample = sample_rows(len(frame), 800, params.seed)
    quantile = [
        train_booster(
            frame.iloc[sample],
            y[sample],
            params,
            "quantile",
            valid=Validation(held, y_cal),
            alpha=q,
        )
        for q in QUANTILES
    ]

    def raw_interval(rows: pd.DataFrame) -> np.ndarray:
        return np.column_stack([b.predict(encoding.matrix(rows), num_threads=1) for b in quantile])

    margin = conformal_margin(y_cal, np.clip(np.sort(raw_interval(X_cal), axis=1), 0, None), 0.8)
    model = SpendModel(params).fit(X, y, X_calib=X_cal, y_calib=y_cal)
    matrix = encoding.matrix(X)
    assert model.margin_ == margin
    by_hand = spend.predict(matrix, num_threads=1)
    by_hand = by_hand * y.sum() / by_hand.sum()
    assert np.allclose(model.predict(X), by_hand, rtol=1e-12), "balanced to the training total"
    orders = count.predict(matrix, num_threads=1)
    orders = orders * buys.sum() / orders.sum()
    assert np.allclose(model.predict_frame(X)["orders_mean"].to_numpy(), orders, rtol=1e-12)
    interval = raw_interval(X) + np.array([-margin, 0.0, margin])
    assert np.array_equal(
        model.predict_matrix(matrix)[:, 2:], np.clip(np.sort(interval, axis=1), 0, None)
    )


def test_offsets_are_the_start_the_boosters_correct() -> None:
    """Given a BTYD offset, a model whose trees cannot split (too few rows per leaf) predicts
    the offset's own forecast times one fitted level; the interval scales with the offset."""
    X, y = spend_rows(1500, 4)
    X_cal, y_cal = spend_rows(1500, 5)
    rng = np.random.default_rng(3)
    expected = rng.uniform(5, 50, size=len(X))
    expected_cal = rng.uniform(5, 50, size=len(X_cal))

    def offset(spend: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"orders_log": np.log(spend / 20), "spend_log": np.log(spend)})

    stumps = replace(FAST, min_data_in_leaf=100_000)
    model = SpendModel(stumps).fit(
        X, y, offset=offset(expected), X_calib=X_cal, y_calib=y_cal,
        offset_calib=offset(expected_cal),
    )  # fmt: skip
    out = model.predict_frame(X, offset(expected))
    ratio = out["spend_mean"].to_numpy() / expected
    assert np.allclose(ratio, ratio[0]), "a constant correction of the offset"
    assert np.allclose(out["orders_mean"].to_numpy() / (expected / 20), ratio[0] * 0 + out[
        "orders_mean"].to_numpy()[0] / (expected[0] / 20))  # fmt: skip
    width = (out["p90"] - out["p10"]).to_numpy()
    assert np.corrcoef(width, expected)[0, 1] > 0.99, "the interval is in units of the offset"


def test_spend_model_is_deterministic_for_a_seed() -> None:
    """Two fits with the same seed give identical outputs, although the quantile boosters train
    on a sample of rows; another seed draws another sample and other boosters."""
    X, y = spend_rows(2000, 4)
    X_cal, y_cal = spend_rows(2000, 5)
    sampled = replace(FAST, quantile_rows=800)

    def fitted(params: BoostParams) -> pd.DataFrame:
        model = SpendModel(params).fit(X, y, X_calib=X_cal, y_calib=y_cal)
        return model.predict_frame(X)

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
    pd.testing.assert_frame_equal(model.predict_frame(X), last.predict_frame(X))
    assert model.margin_ == last.margin_ and model.margin_ != first.margin_
    assert model.margin_ > first.margin_, "the costlier late rows need a wider interval"


def test_clone_gives_an_unfitted_copy_with_the_same_params() -> None:
    """clone copies the hyperparameters and none of the learned state."""
    model = SpendModel(FAST, coverage=0.9, calibration_share=0.25).fit(*spend_rows(800, 8))
    copy = clone(model)
    assert copy.get_params() == {"params": FAST, "coverage": 0.9, "calibration_share": 0.25}
    assert not hasattr(copy, "spend_") and not hasattr(copy, "margin_"), "unfitted"


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
