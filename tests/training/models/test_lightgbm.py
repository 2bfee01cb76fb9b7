"""Models: calibration on held-out rows, categories, determinism, native save/load, intervals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.core import metrics
from training.models import lightgbm as models

FAST = models.BoostParams(seed=3, num_boost_round=60, min_data_in_leaf=20)


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


def test_calibration_on_held_out_rows_improves_brier() -> None:
    """Given training rows with a 50 % base rate and natural held-out rows (~15 %), the
    calibrated probabilities have a lower Brier score than the raw booster's."""
    X, y = draw(3000, seed=1, positive_share=0.5)
    X_cal, y_cal = draw(3000, seed=2)
    X_test, y_test = draw(3000, seed=3)
    model = models.CalibratedClassifier(FAST).fit(X, y, X_cal, y_cal)
    raw = model.predict_raw(model.encoding_.matrix(X_test))
    calibrated = model.predict(X_test)
    assert metrics.brier(y_test, calibrated) < 0.8 * metrics.brier(y_test, raw), (
        "calibration on the held-out cutoff should remove most of the base-rate bias"
    )
    assert calibrated.min() >= 0 and calibrated.max() <= 1


def test_platt_calibration_keeps_the_ranking() -> None:
    """Platt scaling is monotone: ROC AUC is unchanged."""
    X, y = draw(2000, seed=1, positive_share=0.5)
    X_cal, y_cal = draw(2000, seed=2)
    model = models.CalibratedClassifier(FAST, calibration="platt").fit(X, y, X_cal, y_cal)
    raw = model.predict_raw(model.encoding_.matrix(X_cal))
    assert metrics.roc_auc(y_cal, model.predict(X_cal)) == pytest.approx(
        metrics.roc_auc(y_cal, raw)
    )


def test_categories_are_fixed_and_matrix_matches_frame() -> None:
    """Levels come from training rows; an unseen level is missing; the numeric-matrix path
    (serving) equals LightGBM's own pandas path."""
    X, y = draw(1500, seed=4)
    model = models.CalibratedClassifier(FAST).fit(X, y, *draw(1500, seed=5))
    assert model.encoding_.categories == {"region": ("north", "south")}
    new = pd.DataFrame({"x": [0.5, 0.5], "region": pd.array(["south", "west"], dtype="string")})
    matrix = model.encoding_.matrix(new)
    assert matrix[0, 1] == 1.0 and np.isnan(matrix[1, 1]), "south → 1, unseen west → NaN"
    from_frame = model.booster_.predict(model.encoding_.frame(X.head(50)))
    assert np.allclose(from_frame, model.predict_raw(model.encoding_.matrix(X.head(50))))


def test_training_is_deterministic_for_a_seed() -> None:
    """Two fits with the same seed give identical predictions."""
    X, y = draw(1500, seed=6)
    cal = draw(1500, seed=7)
    first = models.CalibratedClassifier(FAST).fit(X, y, *cal).predict(X)
    second = models.CalibratedClassifier(FAST).fit(X, y, *cal).predict(X)
    assert np.array_equal(first, second)


def spend_rows(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Zero-inflated spend: buy with P = sigmoid(x), amount ~ lognormal with mean rising in z."""
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.normal(size=n)
    buy = rng.random(n) < 1 / (1 + np.exp(-x))
    spend = np.where(buy, rng.lognormal(3 + 0.5 * z, 0.5), 0.0)
    return pd.DataFrame({"x": x, "z": z}), spend


def test_spend_model_interval_is_ordered_and_covers_held_out_rows(tmp_path: Path) -> None:
    """p10 <= p50 <= p90, non-negative, ~80 % coverage on new rows; save/load keeps outputs."""
    X, y = spend_rows(3000, 1)
    X_cal, y_cal = spend_rows(3000, 2)
    model = models.SpendModel(FAST).fit(X, y, X_cal, y_cal)
    X_test, y_test = spend_rows(3000, 3)
    out = model.predict(X_test)
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    assert (out[["expected_spend", "p10"]] >= 0).all().all()
    coverage = metrics.interval_coverage(y_test, out["p10"], out["p90"])
    assert 0.72 <= coverage <= 0.88, f"split-conformal p10–p90 should cover ~80 %, got {coverage}"
    in_sample = metrics.spend_report(y, model.predict(X)["expected_spend"].to_numpy())
    assert abs(in_sample["bias_pct"]) < 5, "the hurdle mean keeps the training total"
    loaded = models.load(models.save(model, tmp_path / "native", horizon_days=90))
    pd.testing.assert_frame_equal(loaded.predict(X_test), out)
    assert models.read_meta(tmp_path / "native")["horizon_days"] == 90


def test_spend_model_is_deterministic_for_a_seed() -> None:
    """Two fits with the same seed give identical outputs, although the quantile boosters train
    on a sample of rows; another seed draws another sample and other boosters."""
    X, y = spend_rows(2000, 4)
    cal = spend_rows(2000, 5)
    sampled = replace(FAST, quantile_rows=800)
    first = models.SpendModel(sampled).fit(X, y, *cal).predict(X)
    second = models.SpendModel(sampled).fit(X, y, *cal).predict(X)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    other = models.SpendModel(replace(sampled, seed=4)).fit(X, y, *cal).predict(X)
    assert not np.array_equal(other["p90"], first["p90"]), "the seed should reach the sample"


def test_sample_rows_is_seeded_sorted_and_capped() -> None:
    """A cap below n draws that many distinct positions in row order, the same for a seed;
    a cap at or above n keeps every row."""
    drawn = models.sample_rows(1000, 100, seed=1)
    assert len(np.unique(drawn)) == 100 and np.all(np.diff(drawn) > 0), "distinct, in order"
    assert np.array_equal(drawn, models.sample_rows(1000, 100, seed=1))
    assert not np.array_equal(drawn, models.sample_rows(1000, 100, seed=2))
    assert np.array_equal(models.sample_rows(50, 100, seed=1), np.arange(50))


def test_classifier_save_load_round_trip(tmp_path: Path) -> None:
    """A loaded classifier predicts exactly what the trained one did (native boosters)."""
    X, y = draw(1500, seed=8)
    model = models.CalibratedClassifier(FAST).fit(X, y, *draw(1500, seed=9))
    loaded = models.load(models.save(model, tmp_path / "m"))
    assert np.array_equal(loaded.predict(X), model.predict(X))
