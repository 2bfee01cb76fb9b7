"""The bundle holder: SHAP tables of the reason models are built when a bundle loads."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from serving.scoring.bundle import ModelBundle, ModelHolder, ModelRef, ServedModel


class Recording:
    """A predictor that records the matrices it is asked to explain."""

    def __init__(self) -> None:
        self.explained: list[np.ndarray] = []

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return np.zeros(len(matrix))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        self.explained.append(matrix)
        return np.zeros((len(matrix), matrix.shape[1] + 1))


def served(name: str, predictor: Recording) -> ServedModel:
    return ServedModel(
        ref=ModelRef(name, "1", "champion", "run"),
        feature_names=("frequency", "tier"),
        predictor=predictor,
        loaded_at=datetime(2026, 1, 1, tzinfo=UTC),
        horizon_days=90,
        feature_service=name,
    )


class Source:
    """A bundle source serving churn, churn_30d and clv (no activation: it is optional)."""

    def __init__(self) -> None:
        self.predictors = {name: Recording() for name in ("churn", "churn_30d", "clv")}

    def fingerprint(self) -> dict[str, str]:
        return {name: "1" for name in self.predictors}

    def load(self) -> ModelBundle:
        return ModelBundle({name: served(name, p) for name, p in self.predictors.items()})


def test_a_load_explains_one_row_with_each_reason_model_before_any_request() -> None:
    """Given a source, when the holder loads its bundle, then the churn model (whose
    contributions give reasons) has explained one row of missing values; the other models
    have not been asked (their SHAP tables would only take memory)."""
    source = Source()

    assert ModelHolder(source).refresh()

    (row,) = source.predictors["churn"].explained
    assert row.shape == (1, 2) and np.isnan(row).all(), "one row, every feature missing"
    assert source.predictors["churn_30d"].explained == [], "churn_30d gives no reasons"
    assert source.predictors["clv"].explained == [], "clv gives no reasons"
