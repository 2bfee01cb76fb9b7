"""The MLflow pyfunc of the uplift model: member features in, one row per (member, action) out.

The wrapper is rebuilt from the model's JSON state artifact (boosters as LightGBM text), so no
pickled Python object is stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from decisions.uplift import UpliftModel

STATE = "state"
# The models-from-code file MLflow runs when it logs or loads this pyfunc.
ENTRY_POINT = Path(__file__).with_name("uplift_pyfunc_model.py")


class UpliftPyfunc(PythonModel):
    """MLflow pyfunc around `UpliftModel`: predict returns one row per (member, action) with
    uplift_prob, uplift_value (currency per contact) and source."""

    def load_context(self, context: Any) -> None:
        """Rebuild the model from its JSON state (no pickle of boosters)."""
        state = json.loads(Path(context.artifacts[STATE]).read_text(encoding="utf-8"))
        self.model = UpliftModel.from_state(state)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """Tidy uplift predictions of the members in `model_input` (keyed by its `member_id`
        column, else by its index)."""
        if "member_id" in model_input.columns:
            model_input = model_input.set_index("member_id")
        return self.model.predict(model_input)
