"""Reason codes: the top driver is named, in plain words with the member's values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.core import reasons
from training.models.boosting import BoostParams
from training.models.classifier import CalibratedClassifier


def test_top_reasons_take_the_largest_positive_contributions_in_order() -> None:
    """Positive drivers only, largest first, at most k."""
    names = ["recency_days", "logins_30d", "tier", "frequency_90d"]
    values = {
        "recency_days": 62,
        "mean_gap_days": 21.0,
        "logins_30d": 0,
        "tier": "gold",
        "frequency_90d": 1,
    }
    found = reasons.top_reasons(np.array([0.9, 0.4, -0.5, 0.1]), names, values, k=2)
    assert [r.code for r in found] == ["recency_days", "logins_30d"]
    assert found[0].text == "62 days since last order; typical gap 21 days"
    assert found[1].text == "0 logins in the last 30 days"
    assert found[0].impact == 0.9


def test_phrases_fall_back_to_patterns_then_catalog_descriptions() -> None:
    """Windowed names follow a pattern; unknown ones use the description and the value."""
    values = {
        "monetary_365d": 1234.5,
        "activity_trend": 0.5,
        "gap": None,
        "days_since_last_login": 45,
    }
    words = {"activity_trend": "Engagement trend; 0 = flat."}
    assert reasons.phrase("monetary_365d", values, words) == "1,234 spent in the last 365 days"
    assert reasons.phrase("activity_trend", values, words) == "Engagement trend: 0.50"
    assert reasons.phrase("gap", values, words) == "gap: none"
    assert reasons.phrase("days_since_last_login", values, words) == "no login in 45 days"
    assert reasons.phrase("recency_days", {"recency_days": 5}, {}) == "5 days since last order"


def test_explain_names_the_feature_that_drives_a_real_model() -> None:
    """Given churn driven by recency only, recency_days is every high-risk member's top reason."""
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame(
        {"recency_days": rng.integers(0, 200, n).astype(float), "noise": rng.normal(size=n)}
    )
    y = (frame["recency_days"] + rng.normal(0, 20, n) > 100).astype(int).to_numpy()
    params = BoostParams(num_boost_round=40, min_data_in_leaf=20)
    model = CalibratedClassifier(params).fit(frame, y, X_calib=frame, y_calib=y)
    risky = frame.loc[frame["recency_days"] > 150].head(20)
    explained = reasons.explain(model, risky)
    assert all(r[0].code == "recency_days" for r in explained), "recency drives the score"
    assert explained[0][0].text.endswith("days since last order")
