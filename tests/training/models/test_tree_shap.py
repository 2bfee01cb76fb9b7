"""Exact TreeSHAP from tables: LightGBM's `pred_contrib` values, the same top reasons, a row's
values independent of the rows beside it."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from training.core.reasons import top_positive
from training.models.boosting import BoostParams
from training.models.classifier import CalibratedClassifier
from training.models.tree_shap import TreeShap


def _members(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Churn-like rows: recency and frequency drive the label, with missing values, zeros, a
    categorical tier, a flag and pure noise."""
    rng = np.random.default_rng(seed)
    recency = rng.integers(0, 300, n).astype(float)
    frequency = rng.poisson(3, n).astype(float)  # many zeros
    logins = rng.poisson(2, n).astype(float)
    logins[rng.random(n) < 0.2] = np.nan
    tier = rng.choice(["bronze", "silver", "gold", "platinum"], n).astype(object)
    tier[rng.random(n) < 0.1] = None
    logit = recency / 60 - frequency / 2 - np.nan_to_num(logins, nan=-1) / 3 - 2
    logit += np.where(tier == "gold", -1.0, 0.0)
    frame = pd.DataFrame(
        {
            "recency_days": recency,
            "frequency": frequency,
            "logins_30d": logins,
            "tier": tier,
            "has_app": rng.random(n) < 0.5,
            "noise": rng.normal(size=n),
        }
    )
    return frame, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


@pytest.fixture(scope="module")
def model() -> CalibratedClassifier:
    frame, y = _members(4000, 0)
    params = BoostParams(num_boost_round=60, min_data_in_leaf=40, stopping_rounds=60)
    return CalibratedClassifier(params).fit(frame, y)


@pytest.fixture(scope="module")
def matrix(model: CalibratedClassifier) -> np.ndarray:
    frame, _ = _members(1500, 1)
    return model.encoding_.matrix(frame)


def test_values_are_lightgbm_treeshap_and_add_up_to_the_raw_score(
    model: CalibratedClassifier, matrix: np.ndarray
) -> None:
    """Given a classifier with categorical, missing and zero-heavy features, its contributions
    are LightGBM's exact SHAP values (bias last) and each row sums to the raw score."""
    splits = str(model.booster_.dump_model())
    assert "'decision_type': '=='" in splits and "'missing_type': 'NaN'" in splits, "the cases"
    exact = model.booster_.predict(matrix, pred_contrib=True)
    found = model.contributions(matrix)
    assert found.shape == exact.shape
    assert np.abs(found - exact).max() < 1e-9, "every value is LightGBM's TreeSHAP value"
    raw = model.booster_.predict(matrix, raw_score=True)
    assert np.abs(found.sum(axis=1) - raw).max() < 1e-9, "values + bias = raw score"


def test_top_three_reasons_agree_with_exact_shap_for_every_member(
    model: CalibratedClassifier, matrix: np.ndarray
) -> None:
    """The reason codes need the top three positive drivers only: they are those of
    LightGBM's exact SHAP for 100 % of 1,500 members (top 1, the set of three and their order)."""
    exact = top_positive(model.booster_.predict(matrix, pred_contrib=True)[:, :-1])
    found = top_positive(model.contributions(matrix)[:, :-1])
    top1 = np.mean(exact[:, 0] == found[:, 0])
    ordered = np.mean((exact == found).all(axis=1))
    assert (exact[:, 0] >= 0).mean() > 0.5, "most members have a positive driver to name"
    assert top1 == 1.0 and ordered == 1.0, f"top 1 agrees {top1:.1%}, top 3 in order {ordered:.1%}"


def test_a_row_gets_the_same_bits_alone_or_among_others(
    model: CalibratedClassifier, matrix: np.ndarray
) -> None:
    """The API explains one member, a published chunk thousands: same values to the bit."""
    together = model.contributions(matrix[:600])
    alone = np.vstack([model.contributions(matrix[i : i + 1]) for i in range(600)])
    assert np.array_equal(together, alone)


def test_zero_as_missing_and_single_leaf_trees_follow_lightgbm() -> None:
    """Missing type Zero (zeros and NaN go the default way) and trees that never split (bias
    only) give LightGBM's values too."""
    rng = np.random.default_rng(3)
    x = rng.poisson(1.0, (2000, 3)).astype(float)
    x[rng.random(x.shape) < 0.1] = np.nan
    y = (np.nan_to_num(x[:, 0]) + rng.normal(0, 1, 2000) > 1).astype(int)
    params = {"objective": "binary", "zero_as_missing": True, "verbosity": -1, "seed": 3}
    booster = lgb.train({**params, "num_leaves": 7}, lgb.Dataset(x, y), 40)
    assert "'missing_type': 'Zero'" in str(booster.dump_model()), "the case under test"
    exact = booster.predict(x, pred_contrib=True)
    assert np.abs(TreeShap.of(booster).contributions(x) - exact).max() < 1e-9
    stump = lgb.train({**params, "min_data_in_leaf": 3000}, lgb.Dataset(x, y), 5)
    only_bias = TreeShap.of(stump).contributions(x[:10])
    assert np.allclose(only_bias, stump.predict(x[:10], pred_contrib=True))
    assert not only_bias[:, :-1].any(), "a tree that never splits credits no feature"


def test_a_matrix_of_other_width_is_refused(model: CalibratedClassifier) -> None:
    with pytest.raises(ValueError, match="encode the features with the model's encoding"):
        model.contributions(np.zeros((2, 3)))
