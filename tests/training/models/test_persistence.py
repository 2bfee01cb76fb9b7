"""The native model folder: save/load round trips and unfitted models by task kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.training.models.synthetic import FAST, draw, spend_rows
from training.models.classifier import CalibratedClassifier
from training.models.persistence import load, new_model, read_meta, save
from training.models.spend import SpendModel


def test_classifier_save_load_round_trip(tmp_path: Path) -> None:
    """A loaded classifier predicts exactly what the trained one did (native boosters) and
    keeps its hyperparameters."""
    X, y = draw(1500, seed=8)
    X_cal, y_cal = draw(1500, seed=9)
    model = CalibratedClassifier(FAST, calibration="platt").fit(X, y, X_calib=X_cal, y_calib=y_cal)
    loaded = load(save(model, tmp_path / "m"))
    assert isinstance(loaded, CalibratedClassifier)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params() == model.get_params()


def test_classifier_calibrated_on_expected_purchases_round_trips(tmp_path: Path) -> None:
    """A Platt calibrator that reads the BTYD expected purchases keeps its weight through
    model.json: the loaded model gives the same probabilities for the same offsets."""
    X, y = draw(1500, seed=8)
    X_cal, y_cal = draw(1500, seed=9)
    rng = np.random.default_rng(4)
    start = pd.DataFrame(
        {"no_purchase_logit": rng.normal(size=1500), "orders_log": y_cal + rng.normal(size=1500)}
    )
    model = CalibratedClassifier(FAST, calibration="platt").fit(
        X, y, offset=start, X_calib=X_cal, y_calib=y_cal, offset_calib=start
    )
    loaded = load(save(model, tmp_path / "m"))
    assert isinstance(loaded, CalibratedClassifier) and loaded.calibrator_ == model.calibrator_
    assert model.calibrator_ is not None and model.calibrator_.count_slope > 0
    assert np.array_equal(loaded.predict_proba(X_cal, start), model.predict_proba(X_cal, start))


def test_spend_save_load_round_trip(tmp_path: Path) -> None:
    """A loaded spend model gives the same mean and interval; `extra` lands in model.json."""
    X, y = spend_rows(1500, 1)
    model = SpendModel(FAST).fit(
        X, y, X_calib=spend_rows(1500, 2)[0], y_calib=spend_rows(1500, 2)[1]
    )
    loaded = load(save(model, tmp_path / "native", horizon_days=90))
    assert isinstance(loaded, SpendModel)
    pd.testing.assert_frame_equal(loaded.predict_frame(X), model.predict_frame(X))
    assert read_meta(tmp_path / "native")["horizon_days"] == 90
    assert loaded.get_params() == model.get_params()


def test_new_model_by_task_kind() -> None:
    """'binary' → classifier, 'spend' → spend model, both unfitted with the given params."""
    assert isinstance(new_model("binary", FAST), CalibratedClassifier)
    spend = new_model("spend", FAST)
    assert isinstance(spend, SpendModel) and spend.params == FAST and not hasattr(spend, "spend_")
    with pytest.raises(ValueError, match="unknown model kind 'survival'"):
        new_model("survival", FAST)
