"""The MLflow pyfunc wrapper: raw feature columns in, probabilities or spend out.

The wrapper holds no state of its own: `load_context` reads the native model folder logged as
the `native` artifact (boosters + model.json), so pyfunc and fast native serving use the same
files. Loading needs the `memberscore` package installed (it provides `training.models`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from training.models.persistence import load
from training.models.spend import SpendModel

# The models-from-code file MLflow runs when it logs or loads this pyfunc.
ENTRY_POINT = Path(__file__).with_name("pyfunc_model.py")


class MemberModel(PythonModel):
    """Predicts calibrated probabilities (column `probability`) for churn and activation, or
    orders_mean, spend_mean, p10, p50, p90 (orders and currency over the horizon) for clv."""

    def load_context(self, context: Any) -> None:
        """Load the native model from the `native` artifact folder."""
        self.model = load(Path(context.artifacts["native"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Predictions for a DataFrame of raw feature columns, one row per member."""
        frame = pd.DataFrame(model_input)
        if isinstance(self.model, SpendModel):
            return self.model.predict_frame(frame).reset_index(drop=True)
        return pd.DataFrame({"probability": self.model.predict_proba(frame)[:, 1]})
