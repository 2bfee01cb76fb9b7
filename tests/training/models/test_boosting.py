"""Shared boosting helpers: fixed categories, the serving matrix, row samples and the
calibration hold-out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.training.models.synthetic import FAST, draw
from training.models.boosting import calibration_split, fit_encoding, sample_rows, train_booster


def test_categories_are_fixed_and_matrix_matches_frame() -> None:
    """Levels come from training rows; an unseen level is missing; the numeric-matrix path
    (serving) equals LightGBM's own pandas path."""
    X, y = draw(1500, seed=4)
    encoding = fit_encoding(X)
    assert encoding.categories == {"region": ("north", "south")}
    new = pd.DataFrame({"x": [0.5, 0.5], "region": pd.array(["south", "west"], dtype="string")})
    matrix = encoding.matrix(new)
    assert matrix[0, 1] == 1.0 and np.isnan(matrix[1, 1]), "south → 1, unseen west → NaN"
    booster = train_booster(encoding.frame(X), y.astype(float), FAST, "binary")
    from_frame = booster.predict(encoding.frame(X.head(50)), num_threads=1)
    from_matrix = booster.predict(encoding.matrix(X.head(50)), num_threads=1)
    assert np.allclose(from_frame, from_matrix)


def test_encoding_names_the_missing_column() -> None:
    """Predicting on rows without a training feature fails with the column's name."""
    encoding = fit_encoding(draw(10, seed=1)[0])
    with pytest.raises(ValueError, match="region"):
        encoding.frame(pd.DataFrame({"x": [1.0]}))


def test_sample_rows_is_seeded_sorted_and_capped() -> None:
    """A cap below n draws that many distinct positions in row order, the same for a seed;
    a cap at or above n keeps every row."""
    drawn = sample_rows(1000, 100, seed=1)
    assert len(np.unique(drawn)) == 100 and np.all(np.diff(drawn) > 0), "distinct, in order"
    assert np.array_equal(drawn, sample_rows(1000, 100, seed=1))
    assert not np.array_equal(drawn, sample_rows(1000, 100, seed=2))
    assert np.array_equal(sample_rows(50, 100, seed=1), np.arange(50))


def test_calibration_split_holds_out_the_last_rows() -> None:
    """Without a calibration set, the last `share` of the rows (the latest, rows being in
    time order) calibrate and the others train, in their order."""
    X = pd.DataFrame({"t": np.arange(10.0)}, index=np.arange(100, 110))
    y = np.arange(10) % 2
    X_fit, y_fit, X_cal, y_cal = calibration_split(X, y, None, None, 0.2)
    assert X_fit["t"].tolist() == list(range(8)) and X_cal["t"].tolist() == [8.0, 9.0]
    assert y_fit.tolist() == [0, 1] * 4 and y_cal.tolist() == [0.0, 1.0]
    assert y_fit.dtype == float


def test_calibration_split_passes_a_given_set_through() -> None:
    """A given calibration set is used as it is; every training row trains."""
    X, y = draw(20, seed=1)
    X_cal, y_cal = draw(5, seed=2)
    X_fit, y_fit, X_held, y_held = calibration_split(X, y, X_cal, y_cal, 0.2)
    assert X_fit is X and X_held is X_cal
    assert np.array_equal(y_fit, y) and np.array_equal(y_held, y_cal)


@pytest.mark.parametrize(
    ("calib", "share", "message"),
    [
        ("X only", 0.2, "both X_calib and y_calib"),
        (None, 0.0, "strictly between 0 and 1"),
        (None, 1.0, "strictly between 0 and 1"),
        (None, 0.01, "leaves no training or calibration rows"),
    ],
)
def test_calibration_split_refuses_a_half_or_empty_calibration_set(
    calib: str | None, share: float, message: str
) -> None:
    """Half a calibration set, or a share leaving no rows on one side, is an error."""
    X, y = draw(20, seed=1)
    X_calib = X if calib else None
    with pytest.raises(ValueError, match=message):
        calibration_split(X, y, X_calib, None, share)


def test_calibration_split_checks_row_counts() -> None:
    """X and y of different lengths are refused with both counts."""
    X, y = draw(20, seed=1)
    with pytest.raises(ValueError, match="20 rows but y has 19"):
        calibration_split(X, y[:-1], None, None, 0.2)
