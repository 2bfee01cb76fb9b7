"""CalibratedClassifier: calibration on held-out rows, the scikit-learn estimator contract
(clone, cross-validation, labels vs probabilities) and determinism."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier
from sklearn.model_selection import TimeSeriesSplit, cross_validate

from tests.training.models.synthetic import FAST, draw, drifting
from training.core import metrics
from training.models.boosting import Validation, fit_encoding, train_booster
from training.models.classifier import CalibratedClassifier, fit_calibrator


def test_calibration_on_held_out_rows_improves_brier() -> None:
    """Given training rows with a 50 % base rate and natural held-out rows (~15 %), the
    calibrated probabilities have a lower Brier score than the raw booster's."""
    X, y = draw(3000, seed=1, positive_share=0.5)
    X_cal, y_cal = draw(3000, seed=2)
    X_test, y_test = draw(3000, seed=3)
    model = CalibratedClassifier(FAST).fit(X, y, X_calib=X_cal, y_calib=y_cal)
    raw = model.predict_raw(model.encoding_.matrix(X_test))
    calibrated = model.predict_proba(X_test)[:, 1]
    assert metrics.brier(y_test, calibrated) < 0.8 * metrics.brier(y_test, raw), (
        "calibration on the held-out cutoff should remove most of the base-rate bias"
    )
    assert calibrated.min() >= 0 and calibrated.max() <= 1


def test_platt_calibration_keeps_the_ranking() -> None:
    """Platt scaling is monotone: ROC AUC is unchanged."""
    X, y = draw(2000, seed=1, positive_share=0.5)
    X_cal, y_cal = draw(2000, seed=2)
    model = CalibratedClassifier(FAST, calibration="platt").fit(X, y, X_calib=X_cal, y_calib=y_cal)
    raw = model.predict_raw(model.encoding_.matrix(X_cal))
    assert metrics.roc_auc(y_cal, model.predict_proba(X_cal)[:, 1]) == pytest.approx(
        metrics.roc_auc(y_cal, raw)
    )


def test_platt_with_the_expected_purchases_learns_their_weight() -> None:
    """Given held-out rows whose outcome depends on the BTYD log expected purchases
    (`orders_log`) beside the raw probability, when Platt is fitted with them, then it gives
    them a negative weight (more expected purchases, less churn), ranks better than Platt on
    the raw probability alone, and the classifier's predictions use the weight."""
    rng = np.random.default_rng(5)
    n = 4000
    raw = 1 / (1 + np.exp(-rng.normal(size=n)))
    orders_log = rng.normal(size=n)
    z = np.log(raw / (1 - raw)) - 1.5 * orders_log
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)

    both = fit_calibrator(raw, y, "platt", orders_log)
    alone = fit_calibrator(raw, y, "platt")

    assert both.count_slope < -1.0 and alone.count_slope == 0.0
    assert metrics.roc_auc(y, both(raw, orders_log)) > metrics.roc_auc(y, alone(raw)) + 0.05
    with pytest.raises(ValueError, match="orders_log"):
        both(raw)


def test_a_classifier_with_btyd_offsets_calibrates_on_the_expected_purchases() -> None:
    """Given offsets with `orders_log` on the calibration rows, the fitted Platt calibrator
    reads them (non-zero `count_slope`) and `predict_proba` applies it to the offsets given."""
    X, y = draw(3000, seed=1)
    X_cal, y_cal = draw(3000, seed=2)
    rng = np.random.default_rng(2)

    def offsets(n: int) -> pd.DataFrame:
        return pd.DataFrame({"no_purchase_logit": np.zeros(n), "orders_log": rng.normal(size=n)})

    model = CalibratedClassifier(FAST, calibration="platt").fit(
        X, y, offset=offsets(len(X)), X_calib=X_cal, y_calib=y_cal, offset_calib=offsets(len(X_cal))
    )
    assert model.calibrator_ is not None and model.calibrator_.count_slope != 0.0
    start = offsets(len(X_cal))
    shifted = start.assign(orders_log=start["orders_log"] + 1.0)
    moved = model.predict_proba(X_cal, shifted)[:, 1] - model.predict_proba(X_cal, start)[:, 1]
    assert np.all(np.sign(moved) == np.sign(model.calibrator_.count_slope))


def test_explicit_calibration_set_gives_the_lower_level_prediction() -> None:
    """With X_calib given, the probabilities are exactly booster (stopped early on the
    calibration rows) → isotonic calibrator fitted by hand with the same seed: the estimator
    wrapper changes no number."""
    X, y = draw(1500, seed=6)
    X_cal, y_cal = draw(1500, seed=7)
    encoding = fit_encoding(X)
    held = Validation(encoding.frame(X_cal), y_cal.astype(float))
    booster = train_booster(encoding.frame(X), y.astype(float), FAST, "binary", valid=held)
    raw_cal = np.asarray(booster.predict(encoding.matrix(X_cal), num_threads=1))
    calibrator = fit_calibrator(raw_cal, y_cal, "isotonic")
    by_hand = calibrator(np.asarray(booster.predict(encoding.matrix(X), num_threads=1)))
    model = CalibratedClassifier(FAST).fit(X, y, X_calib=X_cal, y_calib=y_cal)
    assert np.array_equal(model.predict_proba(X)[:, 1], by_hand)
    assert np.array_equal(model.predict_matrix(encoding.matrix(X)), by_hand)


def test_training_is_deterministic_for_a_seed() -> None:
    """Two fits with the same seed give identical predictions."""
    X, y = draw(1500, seed=6)
    X_cal, y_cal = draw(1500, seed=7)
    first = CalibratedClassifier(FAST).fit(X, y, X_calib=X_cal, y_calib=y_cal)
    second = CalibratedClassifier(FAST).fit(X, y, X_calib=X_cal, y_calib=y_cal)
    assert np.array_equal(first.predict_proba(X), second.predict_proba(X))


def test_default_calibration_set_is_the_last_rows() -> None:
    """Given rows in time order whose base rate drifts, a fit without X_calib equals training
    on all but the last 20 % and calibrating on those, and not on the first 20 %."""
    X, y = drifting(2400, 600)
    cut = len(X) - 600
    model = CalibratedClassifier(FAST).fit(X, y)
    last = CalibratedClassifier(FAST).fit(
        X.iloc[:cut], y[:cut], X_calib=X.iloc[cut:], y_calib=y[cut:]
    )
    first = CalibratedClassifier(FAST).fit(
        X.iloc[600:], y[600:], X_calib=X.iloc[:600], y_calib=y[:600]
    )
    assert np.array_equal(model.predict_proba(X), last.predict_proba(X)), "the last rows"
    p = model.predict_proba(X)[:, 1]
    assert abs(p.mean() - y[cut:].mean()) < abs(
        first.predict_proba(X)[:, 1].mean() - y[cut:].mean()
    ), "calibrated on the late rows, the mean probability follows their base rate"


def test_predict_gives_labels_and_predict_proba_two_columns() -> None:
    """sklearn meanings: predict → 0/1 labels from P(1) > 0.5, predict_proba → (n, 2) rows
    summing to 1, classes_ [0, 1]."""
    X, y = draw(1500, seed=8)
    model = CalibratedClassifier(FAST).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert model.classes_.tolist() == [0, 1] and is_classifier(model)
    assert np.array_equal(model.predict(X), (proba[:, 1] > 0.5).astype(int))


def test_clone_gives_an_unfitted_copy_with_the_same_params() -> None:
    """clone copies the hyperparameters and none of the learned state."""
    model = CalibratedClassifier(FAST, calibration="platt", calibration_share=0.3)
    model.fit(*draw(1000, seed=9))
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert copy.get_params() == {"params": FAST, "calibration": "platt", "calibration_share": 0.3}
    assert not hasattr(copy, "booster_") and not hasattr(copy, "encoding_"), "unfitted"


def test_cross_validate_runs_on_time_ordered_splits() -> None:
    """cross_validate with TimeSeriesSplit fits a clone per split and scores calibrated
    probabilities (ROC AUC) and labels (accuracy)."""
    X, y = draw(1200, seed=10)
    model = CalibratedClassifier(replace(FAST, num_boost_round=15))
    scores = cross_validate(
        model, X, y, cv=TimeSeriesSplit(n_splits=3), scoring=("roc_auc", "accuracy"),
        error_score="raise",
    )  # fmt: skip
    assert len(scores["test_roc_auc"]) == 3
    assert (scores["test_roc_auc"] > 0.7).all(), "x predicts y in every split"
    assert ((scores["test_accuracy"] >= 0) & (scores["test_accuracy"] <= 1)).all()


def test_labels_other_than_zero_and_one_are_refused() -> None:
    """A spend-like target is not silently trained as a binary label."""
    X, _ = draw(200, seed=1)
    with pytest.raises(ValueError, match="0/1"):
        CalibratedClassifier(FAST).fit(X, np.arange(len(X), dtype=float))
