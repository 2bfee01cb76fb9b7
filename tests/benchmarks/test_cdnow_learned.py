"""CDNOW learned rows: no training label window may reach the holdout; the median count
forecast is the hurdle median."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.cdnow.data import CALIBRATION_END
from benchmarks.cdnow.learned import LABEL_WEEKS, ORIGINS, median_count, training_set


def test_configured_origins_label_only_calibration_data() -> None:
    for origin in ORIGINS:
        end = origin + pd.Timedelta(weeks=LABEL_WEEKS)
        assert end <= CALIBRATION_END, f"labels of {origin.date()} end after the calibration"


def test_an_origin_whose_labels_reach_the_holdout_is_refused() -> None:
    with pytest.raises(ValueError, match="holdout"):
        training_set(pd.DataFrame(), [pd.Timestamp("1997-08-01")], LABEL_WEEKS)


def test_median_count_is_zero_when_no_purchase_is_likelier_than_not() -> None:
    p_none = np.array([0.9, 0.5, 0.1, 0.1])
    mean = np.array([0.2, 0.8, 0.9, 4.5])
    # given a purchase the means are 1 and 5: the medians of Poisson(1) and Poisson(5)
    assert median_count(p_none, mean).tolist() == [0.0, 0.0, 1.0, 5.0]
